"""`madoguchi mail fetch|ingest|process`: the same services the worker and the web use."""

from __future__ import annotations

import sys
import time

import click
from flask import current_app
from flask.cli import with_appcontext

from consult.extensions import db
from consult.services import queue


@click.group("mail", help="メール（受信・取込）")
def mail_group() -> None:
    pass


@mail_group.command("ingest", help="標準入力のメール1通を取り込み、相談番号を表示します（MTA連携）")
@with_appcontext
def ingest_command():
    from channels.email import services, tasks
    from channels.email.models import InboundStatus

    raw = sys.stdin.buffer.read()
    if not raw.strip():
        raise click.ClickException("標準入力にメールがありません。")
    # The heartbeat keeps this process's claim on the mail while it processes it.
    with queue.heartbeat(current_app._get_current_object()):
        outcome = tasks.ingest(raw, source="stdin")
        queue.end_reads()
    inbound = outcome.inbound
    if inbound.status == InboundStatus.QUARANTINED:
        click.echo(f"隔離しました（受信番号 {inbound.id}）：{inbound.reason}", err=True)
        sys.exit(0)  # the mail is kept: the MTA must not bounce or retry it
    if outcome.ticket is not None:
        click.echo(outcome.ticket.number)
    elif services.on_relay():
        click.echo(f"受け付けました（受信番号 {inbound.id}）。LGWAN側のサーバーが取り込みます。")
    else:
        click.echo(f"相談票は作成しませんでした（受信番号 {inbound.id}）：{inbound.reason or ''}")


@mail_group.command("fetch", help="IMAPのメールボックスから新着メールを取り込みます")
@click.option("--once", is_flag=True, help="1回取り込んで終了")
@click.option("--interval", type=float, default=60.0, help="ポーリング間隔（秒）")
@with_appcontext
def fetch_command(once, interval):
    from channels.email import imap

    with queue.heartbeat(current_app._get_current_object()):
        _fetch_loop(imap, once, interval)
        queue.end_reads()


def _fetch_loop(imap, once, interval):
    while True:
        try:
            report = imap.poll()
            click.echo(
                f"取込 {report.ingested} 件、重複 {report.duplicates} 件、"
                f"隔離 {report.quarantined} 件"
            )
        except imap.ImapError as error:
            db.session.rollback()
            if once:
                raise click.ClickException(str(error)) from error
            click.echo(f"IMAPエラー：{error}（{interval:g}秒後に再試行します）", err=True)
        finally:
            db.session.remove()
        if once:
            return
        time.sleep(interval)


@mail_group.command("process", help="保存済みで未処理のメールを処理します")
@with_appcontext
def process_command():
    from channels.email import tasks

    with queue.heartbeat(current_app._get_current_object()):
        count = tasks.process_pending(limit=10000)
        queue.end_reads()
    click.echo(f"{count} 件を処理しました。")
