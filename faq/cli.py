"""`madoguchi faq …`: import, search, redact, reindex — the same services as the web."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from consult.extensions import db
from consult.services.actor import Actor
from consult.services.errors import DomainError
from faq import services


@click.group("faq", help="よくある質問（FAQ）")
def faq_group() -> None:
    pass


@faq_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--publish", is_flag=True, help="取り込んだ項目をそのまま公開する（管理者の確認済みデータ）"
)
@with_appcontext
def import_command(path: Path, publish: bool):
    """CSV（推奨データセット「FAQ」の列：質問・回答・所管部署・カテゴリ…；UTF-8 または Shift_JIS）
    または JSON Lines（question, answer, category, keywords, visibility）を取り込みます。"""
    try:
        report = services.import_file(Actor.command_line(), path, publish=publish)
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        raise click.ClickException(error.message) from None
    services.index().sync()
    click.echo(f"{report.imported} 件を取り込みました。")
    for number, reason in report.rejected:
        click.echo(f"{number}行目：{reason}", err=True)
    if report.rejected:
        click.echo(f"{len(report.rejected)} 件を取り込めませんでした。", err=True)


@faq_group.command("search")
@click.argument("query")
@click.option("--json", "as_json", is_flag=True, help="JSON で出力")
@click.option("--limit", type=click.IntRange(1, 100), default=10, help="件数（1〜100）")
@click.option("--public", is_flag=True, help="市民向け公開の項目だけを検索")
@with_appcontext
def search_command(query: str, as_json: bool, limit: int, public: bool):
    """Web と同じ検索を行います。"""
    hits = services.search(query, actor=Actor.command_line(), public=public, limit=limit)
    if as_json:
        rows = [
            {"id": h.entry.id, "question": h.entry.question, "score": round(h.score, 4)}
            for h in hits
        ]
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    if not hits:
        click.echo("該当するFAQはありません。")
    for h in hits:
        click.echo(f"{h.entry.id}\t{h.score:.2f}\t{h.entry.question}")


@faq_group.command("reindex")
@with_appcontext
def reindex_command():
    """検索索引をデータベースから作り直します。"""
    count = current_app.extensions["faq_index"].rebuild()
    click.echo(f"検索索引を作り直しました（公開中 {count} 件）。")


def _add_redact() -> None:
    from faq.redact_cli import redact_command

    faq_group.add_command(redact_command)


_add_redact()
