"""`madoguchi records`: the retention candidates, disposal of approved lists, the register."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import click
from flask.cli import with_appcontext

from consult.extensions import db
from consult.services import retention
from consult.services.actor import Actor
from consult.services.errors import DomainError


def _today(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise click.BadParameter("日付は YYYY-MM-DD で指定してください。") from error


@click.group("records", help="記録の保存期間・廃棄・個人情報ファイル簿")
def records_group() -> None:
    pass


@records_group.command("due")
@click.option("--json", "as_json", is_flag=True, help="JSONで出力する")
@click.option("--today", "today_text", default=None, help="基準日（YYYY-MM-DD、既定は今日）")
@with_appcontext
def records_due(as_json, today_text):
    """廃棄の候補（保存期間を満了した相談）を保存期間・分類ごとに件数で示す。個人情報は出さない。"""
    today = _today(today_text)
    rows = retention.due_summary(Actor.command_line(), today)
    unlinked = retention.unlinked_due(Actor.command_line(), today)
    db.session.rollback()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "today": (today or retention.tokyo_today()).isoformat(),
                    "total": sum(r.count for r in rows),
                    "rows": [r.as_dict() for r in rows],
                    "unlinked": [r.as_dict() for r in unlinked],
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    if not rows and not unlinked:
        click.echo("廃棄の候補はありません。")
        return
    if rows:
        click.echo("保存期間\t分類\t件数\t訴訟ホールド")
        for row in rows:
            click.echo(f"{row.years}年\t{row.category}\t{row.count}\t{row.held}")
        click.echo(f"合計 {sum(r.count for r in rows)}件")
    if unlinked:
        click.echo("相談に結び付かない記録（種類ごと）")
        for row in unlinked:
            click.echo(f"{row.years}年\t{row.label}\t{row.count}")


@records_group.command("dispose")
@click.option("--approved", is_flag=True, help="承認済みの廃棄予定一覧を廃棄する（必須）")
@click.option("--dry-run", is_flag=True, help="何も変えずに、廃棄されるものを数える")
@click.option("--json", "as_json", is_flag=True, help="JSONで出力する")
@click.option("--batch", "batch_size", default=200, show_default=True, help="1回の処理件数")
@click.option("--today", "today_text", default=None, help="基準日（YYYY-MM-DD、既定は今日）")
@with_appcontext
def records_dispose(approved, dry_run, as_json, batch_size, today_text):
    """センター責任者が承認した廃棄予定一覧の相談から個人情報を廃棄し、廃棄簿に記録する。"""
    from consult import tasks

    if not approved:
        raise click.ClickException(
            "廃棄は承認済みの廃棄予定一覧に限ります。--approved を付けて実行してください。"
        )
    if batch_size < 1 or batch_size > 5000:
        raise click.ClickException("--batch は1から5000の間で指定してください。")
    today = _today(today_text)
    actor = Actor.command_line()
    try:
        outcome = tasks.dispose_approved(actor, dry_run=dry_run, batch_size=batch_size, today=today)
        audit_rows = tasks.dispose_audit(actor, dry_run=dry_run, today=today)
    except DomainError as error:
        db.session.rollback()
        raise click.ClickException(error.message) from error
    result = outcome.as_dict()
    if audit_rows:
        result["removed"]["audit_event"] = audit_rows
        result["labels"]["audit_event"] = "保存期間を過ぎた監査ログ"
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    head = "（試行: 何も変更していません）" if dry_run else ""
    click.echo(f"廃棄した相談: {outcome.tickets}件{head}")
    if outcome.skipped_hold:
        click.echo(f"訴訟ホールドのため廃棄しなかった相談: {outcome.skipped_hold}件")
    if outcome.skipped_not_due:
        click.echo(f"保存期間中に戻ったため廃棄しなかった相談: {outcome.skipped_not_due}件")
    for kind, number in result["removed"].items():
        click.echo(f"  {result['labels'].get(kind, kind)}: {number}")
    for kind, number in result["unlinked"].items():
        click.echo(f"相談に結び付かない記録（{kind}）: {number}件")
    if not outcome.tickets and not audit_rows and not any(result["unlinked"].values()):
        click.echo("承認済みで廃棄できる相談はありません。")


@records_group.command("register")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="出力先")
@click.option("--json", "as_json", is_flag=True, help="JSONで出力する（既定はMarkdown）")
@with_appcontext
def records_register(out, as_json):
    """個人情報ファイル簿の記載事項（案）をスキーマと設定から作る。"""
    document = retention.register_document(Actor.command_line())
    db.session.rollback()
    path = Path(out)
    if as_json or path.suffix == ".json":
        path.write_text(json.dumps(document, ensure_ascii=False, indent=2), encoding="utf-8")
    else:
        path.write_text(retention.register_markdown(document), encoding="utf-8")
    click.echo(f"個人情報ファイル簿（案）を {path} に書き出しました。")
