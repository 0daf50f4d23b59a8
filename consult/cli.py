"""The `madoguchi` command line: Flask's commands plus the centre's, calling the same services."""

from __future__ import annotations

import json
import logging
import os
import sys
import time

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from consult.extensions import db
from consult.services import outbox, tickets
from consult.services import staff as staff_service
from consult.services.actor import Actor
from consult.services.errors import DomainError, NotFound
from consult.timeutil import TOKYO

log = logging.getLogger("madoguchi.cli")


def _fail(error: DomainError) -> None:
    db.session.rollback()
    raise click.ClickException(error.message)


@click.group("staff", help="職員アカウント")
def staff_group() -> None:
    pass


@staff_group.command("create")
@click.argument("login")
@click.option("--name", "full_name", required=True, help="氏名")
@click.option("--display-name", required=True, help="表示名（姓のみ「ひらがな / ローマ字」）")
# Checked by the service, so that a wrong role gets the same Japanese message as elsewhere.
@click.option(
    "--role", required=True, help="役割（consultant / supervisor / officer / support / admin）"
)
@click.option("--department", "department_code", default=None, help="担当課コード")
@with_appcontext
def staff_create(login, full_name, display_name, role, department_code):
    """Password from MADOGUCHI_NEW_PASSWORD, or asked for at a prompt."""
    password = os.environ.get("MADOGUCHI_NEW_PASSWORD") or click.prompt(
        "パスワード", hide_input=True, confirmation_prompt=True
    )
    try:
        staff = staff_service.create_staff(
            Actor.command_line(),
            login=login,
            full_name=full_name,
            display_name=display_name,
            role=role,
            password=password,
            department_code=department_code,
        )
        db.session.commit()
    except DomainError as error:
        _fail(error)
    click.echo(f"職員「{staff.login}」を登録しました（{staff.role_label}）。")


@staff_group.command("reset-two-factor")
@click.argument("login")
@with_appcontext
def staff_reset_two_factor(login):
    """On the server, for the day the only administrator lost their phone and recovery codes."""
    import sqlalchemy as sa

    from consult.models import Staff
    from consult.services import totp

    staff = db.session.scalar(sa.select(Staff).where(Staff.login == login.strip().lower()))
    if staff is None:
        raise click.ClickException(f"ログインID「{login}」の職員はいません。")
    totp.reset(Actor.command_line(), staff)
    db.session.commit()
    click.echo(
        f"職員「{staff.login}」の二要素認証をリセットしました。次回のログインで設定し直します。"
    )


@click.group("department", help="担当課・関係機関")
def department_group() -> None:
    pass


@department_group.command("create")
@click.argument("code")
@click.option("--name", required=True, help="名称")
@click.option("--external", is_flag=True, help="市の外部の関係機関")
@click.option("--email", default=None, help="連絡先メールアドレス")
@with_appcontext
def department_create(code, name, external, email):
    try:
        department = staff_service.create_department(
            Actor.command_line(), code=code, name=name, is_external=external, email=email
        )
        db.session.commit()
    except DomainError as error:
        _fail(error)
    click.echo(f"担当課「{department.name}」（{department.code}）を登録しました。")


@click.group("ticket", help="相談")
def ticket_group() -> None:
    pass


def ticket_json(ticket, with_timeline: bool = False) -> dict:
    data = {
        "number": ticket.number,
        "channel": ticket.channel.value,
        "status": ticket.status.value,
        "category": ticket.category.name if ticket.category else None,
        "subject": ticket.subject,
        "priority": ticket.priority.value,
        "assignee": ticket.assignee.login if ticket.assignee else None,
        "citizen_id": ticket.citizen_id,
        "created_at": ticket.created_at.isoformat(),
        "last_activity_at": ticket.last_activity_at.isoformat(),
        "closed_at": ticket.closed_at.isoformat() if ticket.closed_at else None,
        "duration_seconds": ticket.duration_seconds,
        "resolution_summary": ticket.resolution_summary,
    }
    if with_timeline:
        data["timeline"] = [
            {
                "id": entry.id,
                "kind": entry.kind.value,
                "at": entry.created_at.isoformat(),
                "author": entry.author.login if entry.author else None,
                "body": entry.body,
                "data": entry.data,
            }
            for entry in ticket.timeline
        ]
    return data


@ticket_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSONで出力")
@click.option("--channel", type=click.Choice(["counter", "phone", "email", "line", "booking"]))
@click.option("--status", type=click.Choice([s.value for s in tickets.Status]))
@click.option("--category", "category_id", type=int, help="分類ID")
@click.option("--assignee", "assignee_login", help="担当者のログインID")
@click.option("--closed", is_flag=True, help="完了した相談も含める")
@click.option("--limit", type=click.IntRange(1, 10000), default=100)
@with_appcontext
def ticket_list(as_json, channel, status, category_id, assignee_login, closed, limit):
    import sqlalchemy as sa

    from consult.models import Staff

    assignee_id = None
    if assignee_login:
        assignee_id = db.session.scalar(sa.select(Staff.id).where(Staff.login == assignee_login))
        if assignee_id is None:
            raise click.ClickException(f"職員「{assignee_login}」は登録されていません。")
    flt = tickets.QueueFilter(
        channel=channel,
        status=status,
        category_id=category_id,
        assignee_id=assignee_id,
        include_closed=closed,
    )
    page = tickets.queue(Actor.command_line(), flt, page_size=limit)
    from consult.services import audit

    audit.record(
        Actor.command_line(), "export", "ticket", None, f"cli list count={len(page.tickets)}"
    )
    db.session.commit()
    if as_json:
        click.echo(json.dumps([ticket_json(t) for t in page.tickets], ensure_ascii=False, indent=2))
    else:
        for t in page.tickets:
            click.echo(f"{t.number}\t{t.channel_label}\t{t.status_label}\t{t.subject}")


@ticket_group.command("show")
@click.argument("number")
@click.option("--json", "as_json", is_flag=True, help="JSONで出力")
@with_appcontext
def ticket_show(number, as_json):
    try:
        ticket = tickets.get_ticket(Actor.command_line(), number)
    except NotFound as error:
        raise click.ClickException(f"相談番号「{number}」は見つかりません。") from error
    data = ticket_json(ticket, with_timeline=True)
    db.session.commit()
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        click.echo(f"{ticket.number} {ticket.subject}（{ticket.status_label}）")
        for entry in data["timeline"]:
            click.echo(f"  {entry['at']} [{entry['kind']}] {entry['body']}")


@click.group("citizen", help="相談者")
def citizen_group() -> None:
    pass


def candidate_json(candidate) -> dict:
    citizen = candidate.citizen
    return {
        "id": citizen.id,
        "score": candidate.score,
        "strong": candidate.strong,
        "reasons": candidate.reasons,
        "name": citizen.name,
        "kana": citizen.kana,
        "birth_date": citizen.birth_date.isoformat() if citizen.birth_date else None,
        "phones": [p.number for p in citizen.phones],
        "emails": [e.address for e in citizen.emails],
        "tickets": [t.number for t in candidate.tickets],
    }


@citizen_group.command(
    "disclose", help="開示請求への対応：相談者の保有個人情報をPDFとJSONで出力します"
)
@click.argument("citizen_id", type=click.IntRange(1, 2**31 - 1))
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="出力先フォルダ"
)
@with_appcontext
def citizen_disclose(citizen_id, out_dir):
    """The disclosure bundle in a folder (PDF, JSON, attachments), audited as a production."""
    from consult.services import disclosure
    from consult.services.errors import NotFound

    try:
        bundle = disclosure.produce(Actor.command_line(), citizen_id, "pdf+json")
    except NotFound as error:
        raise click.ClickException(error.message) from None
    written = disclosure.write(bundle, out_dir)
    db.session.commit()
    click.echo(
        f"相談者番号 {bundle.citizen_id} の開示資料を {out_dir} に出力しました"
        f"（{len(bundle.items)}件、審査が必要な箇所 {bundle.review_count}件）。"
    )
    for name in written:
        click.echo(f"  {name}")


@citizen_group.command("match", help="同一人物の可能性がある相談者を一致度の高い順に表示します")
@click.option("--name", help="氏名")
@click.option("--kana", help="ふりがな")
@click.option("--phone", help="電話番号（書式は問いません）")
@click.option("--email", help="メールアドレス")
@click.option("--birth", help="生年月日（YYYY-MM-DD）")
@click.option("--limit", type=click.IntRange(1, 100), default=10, help="表示する件数")
@click.option("--json", "as_json", is_flag=True, help="JSONで出力")
@with_appcontext
def citizen_match(name, kana, phone, email, birth, limit, as_json):
    """The same service as the desk's intake (citizens.match), audited as a search."""
    from consult.services import citizens

    data = citizens.CitizenInput(name=name, kana=kana, phone=phone, email=email, birth_date=birth)
    try:
        found = citizens.match(Actor.command_line(), data, limit=limit)
    except DomainError as error:
        _fail(error)
    rows = [candidate_json(c) for c in found]
    db.session.commit()
    if as_json:
        click.echo(json.dumps({"candidates": rows}, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("一致する相談者はいません。")
    for row in rows:
        mark = "★" if row["strong"] else " "
        click.echo(
            f"{mark}{row['score']:3d}  相談者番号 {row['id']}  {row['name'] or '（氏名未登録）'}"
            f"  {'・'.join(row['reasons'])}"
        )


@ticket_group.command("search", help="相談を検索します（番号・電話・メール・氏名・言葉）")
@click.argument("query")
@click.option("--json", "as_json", is_flag=True, help="JSONで出力")
@click.option("--limit", type=click.IntRange(1, 1000), default=20)
@with_appcontext
def ticket_search(query, as_json, limit):
    """The desk's search, audited the same way (under the OS login that ran it)."""
    results = tickets.search_results(Actor.command_line(), query, limit=limit)
    db.session.commit()
    rows = []
    for rank, ticket in enumerate(results.tickets, start=1):
        snippet = results.snippets.get(ticket.id)
        rows.append(
            {
                "rank": rank,
                **ticket_json(ticket),
                "snippet": snippet.striptags() if snippet is not None else None,
                "snippet_html": str(snippet) if snippet is not None else None,
            }
        )
    # 支援措置: what the command line may not see of a protected person never reaches the screen.
    from consult.services import protection

    secrets = protection.hidden_secrets(Actor.command_line())
    db.session.commit()
    if as_json:
        click.echo(secrets.scrub(json.dumps(rows, ensure_ascii=False, indent=2)))
    elif not rows:
        click.echo("該当する相談はありません。")
    else:
        for row in rows:
            click.echo(f"{row['rank']}\t{row['number']}\t{row['subject']}\t{row['snippet'] or ''}")


@ticket_group.command("reindex", help="検索索引を全件作り直します")
@with_appcontext
def ticket_reindex():
    from consult.services import audit, search

    count = search.rebuild(db.session.connection())
    audit.record(Actor.command_line(), "rebuild", "ticket_search", None, f"count={count}")
    db.session.commit()
    click.echo(f"{count:,}件の相談の検索索引を作り直しました。")


@click.command("worker", help="送信待ちの配信と定期処理を行います")
@click.option("--once", is_flag=True, help="期限の来たものを処理して終了")
@click.option("--interval", type=float, default=2.0, help="ポーリング間隔（秒）")
@click.option("--lane", "lanes", multiple=True, help="このレーンだけを処理（複数指定可）")
@with_appcontext
def worker_command(once, interval, lanes):
    from consult import worker

    app = current_app._get_current_object()
    chosen = set(lanes) or None
    if once:
        from consult.services import queue

        with queue.heartbeat(app):
            results = worker.run_once(app, chosen)
            queue.end_reads()
        reports = [
            result
            for name, result in results.items()
            if name.split(".")[0] == outbox.TASK_NAME and isinstance(result, outbox.DeliveryReport)
        ]
        if reports:
            report = outbox.DeliveryReport()
            for one in reports:
                report += one
            click.echo(
                f"配信 {report.delivered} 件、再試行待ち {report.retried} 件、"
                f"失敗 {report.failed} 件"
            )
        return
    click.echo("worker: 配信と定期処理を開始します（Ctrl+C で終了）")
    worker.Worker(app, interval=interval, lanes=chosen).run_forever()


@click.command("seed-demo", help="デモ用のデータ（担当課・職員・相談）を登録します")
@click.option("--if-empty", is_flag=True, help="既にデータがあれば何もしない")
@click.option("--tickets", "ticket_count", type=int, default=300)
@with_appcontext
def seed_demo_command(if_empty, ticket_count):
    from consult import demo

    created = demo.seed(if_empty=if_empty, ticket_count=ticket_count)
    db.session.commit()
    if created is None:
        click.echo("デモデータは登録済みです。")
    else:
        click.echo(f"デモデータを登録しました（相談 {created} 件）。")
    click.echo(demo.LOGIN_HELP)


@click.command("serve", help="開発用サーバーと送信ワーカーを同じプロセスで起動します")
@click.option("--host", default="127.0.0.1", help="待ち受けるアドレス")
@click.option("--port", default=5000, type=int, help="待ち受けるポート")
@with_appcontext
def serve_command(host, port):
    from werkzeug.serving import run_simple

    from consult import demo, urls
    from consult.worker import Worker

    app = current_app._get_current_object()
    # Links in mail and LINE follow MADOGUCHI_PUBLIC_URL, else the address served here.
    base = urls.serve_at(app, host, port)
    worker = Worker(app, interval=2.0)
    worker.start()

    click.echo(f"madoguchi: {urls.served_address(host, port)}/ で起動します。")
    click.echo(f"メール・LINEのリンク先：{base}/（MADOGUCHI_PUBLIC_URL で変更できます）")
    click.echo(demo.LOGIN_HELP)
    try:
        run_simple(host, port, app, threaded=True, use_reloader=False)
    finally:
        worker.stop.set()


@click.group("reports", help="統計")
def reports_group() -> None:
    pass


@reports_group.command(
    "rebuild", help="統計の日別集計を相談データから作り直します（データ取り込みの後など）。"
)
@click.option(
    "--from", "start", type=click.DateTime(["%Y-%m-%d"]), default=None, help="開始日（YYYY-MM-DD）"
)
@click.option(
    "--to", "end", type=click.DateTime(["%Y-%m-%d"]), default=None, help="終了日（YYYY-MM-DD）"
)
@with_appcontext
def reports_rebuild(start, end):
    """Recompute the reports' per-day rollup from the tickets (after an import or a data fix)."""
    from consult.services import audit, report_rollup

    start, end = (start.date() if start else None), (end.date() if end else None)
    if start and end and end < start:
        raise click.ClickException("終了日は開始日と同じか、それより後にしてください。")
    began = time.perf_counter()
    counted, rows = report_rollup.rebuild(start, end)
    audit.record(
        Actor.command_line(), "rebuild", "report_daily", None, f"{start or '…'}..{end or '…'}"
    )
    db.session.commit()
    span = f"{start or '最初'}〜{end or '最後'}"
    click.echo(
        f"統計の日別集計を作り直しました（{span}：相談{counted:,}件、{rows:,}行、"
        f"{time.perf_counter() - began:.1f}秒）。"
    )


@click.group("queue", help="処理待ちの作業（送信・受信）")
def queue_group() -> None:
    pass


@queue_group.command("failed", help="処理に失敗したものを一覧します")
@click.option("--json", "as_json", is_flag=True, help="JSONで出力")
@with_appcontext
def queue_failed(as_json):
    from consult.services import queue

    items = queue.failed_items()
    db.session.commit()
    if as_json:
        rows = [
            {
                "id": item.key,
                "kind": item.label,
                "at": item.at.isoformat() if item.at else None,
                "attempts": item.attempts,
                "reason": item.reason,
                "description": item.description,
            }
            for item in items
        ]
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not items:
        click.echo("処理に失敗したものはありません。")
    for item in items:
        at = item.at.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M") if item.at else "-"
        click.echo(
            f"{item.key}\t{item.label}\t{at}\t{item.attempts}回\t{item.description}\t{item.reason}"
        )


@queue_group.command("retry", help="処理に失敗したものを再試行します（ID は queue failed の表示）")
@click.argument("keys", nargs=-1, required=True)
@with_appcontext
def queue_retry(keys):
    from consult.services import queue

    for key in keys:
        try:
            queue.retry(Actor.command_line(), key)
            db.session.commit()
        except DomainError as error:
            _fail(error)
        click.echo(f"{key}：再試行を予約しました。")


COMMANDS = (
    queue_group,
    staff_group,
    department_group,
    ticket_group,
    citizen_group,
    reports_group,
    worker_command,
    seed_demo_command,
    serve_command,
)


def _create_app():
    from consult.app import create_app
    from consult.start import resume_collection

    app = create_app()
    resume_collection()
    return app


def main() -> None:
    cli = FlaskGroup(create_app=_create_app, help="madoguchi — 市民相談センターの相談管理")
    cli.main(args=sys.argv[1:], prog_name="madoguchi")
