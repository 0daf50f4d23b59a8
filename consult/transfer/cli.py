"""`madoguchi relay` (the internet zone's server) and `madoguchi transfer …` (the link)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from consult.transfer import services, signing


def _require(*roles: str) -> None:
    role = services.role()
    if role not in roles:
        click.echo(
            f"この操作は MADOGUCHI_ROLE={' または '.join(roles)} のサーバーで行います"
            f"（このサーバーは {role}）。",
            err=True,
        )
        sys.exit(2)


@click.command("relay", help="インターネット側の中継サーバー（予約・FAQ・LINE受信）を起動します")
@click.option("--host", default="127.0.0.1", help="待ち受けるアドレス（公開側は 0.0.0.0 など）")
@click.option("--port", default=8080, type=int, help="待ち受けるポート")
@click.option(
    "--cert",
    type=click.Path(exists=True, dir_okay=False),
    help="HTTPSで待ち受けるときのサーバー証明書（PEM）",
)
@click.option(
    "--key", "key_file", type=click.Path(exists=True, dir_okay=False), help="その秘密鍵（PEM）"
)
@with_appcontext
def relay_command(host, port, cert, key_file):
    from werkzeug.serving import run_simple

    from consult.worker import Worker

    _require("relay")
    if bool(cert) != bool(key_file):
        click.echo("--cert と --key は両方指定してください。", err=True)
        sys.exit(2)
    app = current_app._get_current_object()
    worker = Worker(app, interval=2.0)
    worker.start()
    scheme = "https" if cert else "http"
    click.echo(f"madoguchi relay: {scheme}://{host}:{port} で起動します（本番は gunicorn で）。")
    try:
        run_simple(
            host,
            port,
            app,
            threaded=True,
            use_reloader=False,
            ssl_context=(cert, key_file) if cert else None,
        )
    finally:
        worker.stop.set()


@click.group("transfer", help="中継サーバーとの受け渡し（LGWAN側から取りに行き、送り出す）")
def transfer_group() -> None:
    pass


def _report(report) -> None:
    click.echo(f"受信 {report.pulled} 件、送信 {report.pushed} 件、失敗 {report.failed} 件")
    if report.link_down:
        click.echo(f"中継サーバーに届きません：{report.link_down}（次回に持ち越します）", err=True)
        sys.exit(1)


@transfer_group.command("pull", help="中継サーバーに届いたものを取り込みます")
@with_appcontext
def pull_command():
    from consult.transfer import client

    _require("core")
    _report(client.run_round(do_push=False))


@transfer_group.command("push", help="送信するもの・空き枠・公開FAQを中継サーバーに送ります")
@with_appcontext
def push_command():
    from consult.transfer import client

    _require("core")
    _report(client.run_round(do_pull=False))


@transfer_group.command(
    "run", help="受け渡しを繰り返します（既定の間隔は MADOGUCHI_RELAY_INTERVAL_SECONDS）"
)
@click.option("--once", is_flag=True, help="一度だけ受け渡して終了")
@with_appcontext
def run_command(once):
    from consult.transfer import client
    from consult.worker import Worker

    _require("core")
    if once:
        _report(client.run_round())
        return
    click.echo("transfer: 中継サーバーとの受け渡しを開始します（Ctrl+C で終了）")
    Worker(
        current_app._get_current_object(),
        lanes={"transfer"},
        interval=services.settings().interval_seconds,
    ).run_forever()


@transfer_group.command("export", help="受け渡すものを署名付きのファイルに書き出します")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def export_command(out: Path):
    from consult.transfer import files

    _require("relay", "core")
    data, count = files.export_batch()
    out.write_bytes(data)
    click.echo(f"{count} 件を {out} に書き出しました。")


@transfer_group.command("import", help="相手側が書き出した署名付きのファイルを取り込みます")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def import_command(path: Path):
    from consult.transfer import files

    _require("relay", "core")
    try:
        result = files.import_batch(path.read_bytes())
    except signing.Refused:
        click.echo(
            "このファイルは取り込めません（署名が正しくないか、受け渡し用のファイルではありません）。",
            err=True,
        )
        sys.exit(1)
    click.echo(
        f"取り込み {result.applied} 件、取り込み済み {result.already} 件、"
        f"失敗 {result.failed} 件、相手側が受け取った分の削除 {result.acknowledged} 件"
    )
