"""Retention and disposal on both databases: the fiscal-year rule, approval, legal holds, a
disposal that leaves no trace of the case's personal data anywhere (every text column of every
table, the data folder, the search index) while the statistics stay the same, the dry run, the
audit log's own retention, the 廃棄簿, the register and the staff pages."""

# The LINE fixtures are imported, and named as parameters: ruff sees a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from consult.extensions import db
from consult.models import (
    AuditEvent,
    Category,
    Channel,
    Citizen,
    DisposalItem,
    DisposalRecord,
    LegalHold,
    Staff,
    Status,
    Ticket,
)
from consult.services import citizens, retention, tickets
from consult.services.actor import SYSTEM, Actor
from consult.services.errors import InvalidTransition, PermissionDenied, ValidationFailed
from consult.timeutil import TOKYO
from tests.channels.line.conftest import (  # noqa: F401 (fixtures)
    body_of,
    fake_line,
    line_app,
    line_client,
    new_staff,
    post_webhook,
    run_worker,
    text_event,
)
from tests.helpers import sign_in

TODAY = date(2026, 12, 1)
LONG_AGO = datetime(2019, 5, 1, 3, 0, tzinfo=UTC)  # 2019年度: a 5-year case expired 2025-03-31

NAME = "鬼瓦 権左衛門"
KANA = "おにがわら ごんざえもん"
PHONE = "090-1357-2468"
EMAIL = "gonzaemon@example.jp"
ADDRESS = "香川県高松市鬼無町九十九番地"
NOTE = "借金三百万円の秘密を打ち明けた"
MAIL_BODY = "メール本文の内緒話です"
LINE_TEXT = "ラインで打ち明けた内緒の悩み"
LINE_USER = "U" + "9e" * 16
HANDOFF_TEXT = "引継ぎ概要の内緒話"
RECORD_TEXT = "対応記録の内緒話"
FILE_MARK = b"GONZAEMON-FILE-SECRET"
MAIL_FILE_MARK = b"GONZAEMON-MAIL-ATTACHMENT"
MARKERS = [
    "鬼瓦",
    "権左衛門",
    "ごんざえもん",
    "おにがわら",
    "gonzaemon",
    "13572468",
    "1357-2468",
    "鬼無町",
    "借金三百万円",
    "内緒話",
    "内緒の悩み",
    LINE_USER,
    "GONZAEMON",
]
# Another person whose case is still kept: their data must stay.
OTHER_NAME = "生存 花子"


# --- the rule ---------------------------------------------------------------------------------


def _tokyo(*args) -> datetime:
    return datetime(*args, tzinfo=TOKYO).astimezone(UTC)


@pytest.mark.parametrize(
    "closed, starts",
    [
        (_tokyo(2026, 3, 31, 23, 59), date(2026, 4, 1)),
        (_tokyo(2026, 4, 1, 0, 0), date(2027, 4, 1)),
        # 31 March 15:30 UTC is already 1 April in Tokyo.
        (datetime(2026, 3, 31, 15, 30, tzinfo=UTC), date(2027, 4, 1)),
        (datetime(2026, 3, 31, 14, 59, tzinfo=UTC), date(2026, 4, 1)),
    ],
)
def test_counting_starts_in_the_fiscal_year_after_closing(closed, starts):
    assert retention.counting_starts(closed) == starts
    assert retention.expires_on(closed, 5) == date(starts.year + 5, 3, 31)


def _close_at(ticket: Ticket, when: datetime) -> None:
    """Closed through the service, then dated back: the rule reads closed_at only."""
    tickets.close(Actor(ticket.created_by, "127.0.0.1"), ticket, "案内しました。")
    ticket.closed_at = when
    db.session.commit()


def _due_numbers(today: date) -> set[str]:
    return set(db.session.scalars(sa.select(Ticket.number).where(retention._due_condition(today))))


def test_expiry_around_31_march_and_1_april_on_the_database(app, make_ticket, make_category):
    category = make_category()
    retention.set_category_years(SYSTEM, category, 5)
    db.session.commit()
    march = make_ticket(category_id=category.id)
    april = make_ticket(category_id=category.id)
    _close_at(march, _tokyo(2026, 3, 31, 23, 59))  # 2025年度 → counted from 2026-04-01
    _close_at(april, _tokyo(2026, 4, 1, 0, 0))  # 2026年度 → counted from 2027-04-01
    assert _due_numbers(date(2031, 3, 31)) == set()
    assert _due_numbers(date(2031, 4, 1)) == {march.number}
    assert _due_numbers(date(2032, 3, 31)) == {march.number}
    assert _due_numbers(date(2032, 4, 1)) == {march.number, april.number}
    # The class is the category's: one year makes both due much sooner.
    retention.set_category_years(SYSTEM, category, 1)
    db.session.commit()
    assert _due_numbers(date(2027, 4, 1)) == {march.number}
    assert _due_numbers(date(2028, 4, 1)) == {march.number, april.number}


def test_defaults_follow_the_documented_classes_and_refuse_other_values(app, make_category):
    procedures = db.session.scalar(sa.select(Category).where(Category.code == "procedures"))
    category = procedures or make_category(code="procedures", name="行政手続きの試験")
    assert retention.years_of(category) == 3
    assert retention.years_of(make_category()) == retention.FALLBACK_YEARS == 5
    with pytest.raises(ValidationFailed):
        retention.set_category_years(SYSTEM, category, 7)
    with pytest.raises(PermissionDenied):
        retention.set_category_years(Actor(None), category, 5)


# --- a whole case, disposed of ------------------------------------------------------------------


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8 + FILE_MARK


def _mail() -> bytes:
    return (
        "From: =?UTF-8?B?6ay855OmIOaoqeW3puihm+mWgA==?= <gonzaemon@example.jp>\r\n"
        "To: soudan@example.lg.jp\r\nSubject: =?UTF-8?B?6ay855Om44Gu55u46KuH?=\r\n"
        "Message-ID: <gonzaemon-1@example.jp>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"{MAIL_BODY}\r\n--b\r\n"
        "Content-Type: application/pdf\r\n"
        "Content-Disposition: attachment; filename=gonzaemon.pdf\r\n"
        "\r\n%PDF-" + MAIL_FILE_MARK.decode() + "\r\n--b--\r\n"
    ).encode("utf-8")


def _build_case(app, client) -> dict:
    from api.models import ApiWebhook, ApiWebhookDelivery
    from channels.email import tasks as email_tasks
    from channels.line.models import LineContact
    from consult.models import Callback, Incident, MergeRecord
    from consult.services import attachments
    from faq import services as faq_services
    from faq.models import FaqSource
    from handoff import services as handoff_services
    from handoff.models import Response

    supervisor = new_staff("supervisor")
    consultant = new_staff("consultant")
    officer = new_staff("officer")
    desk = Actor(consultant, "127.0.0.1")
    person = citizens.create_citizen(
        SYSTEM,
        citizens.CitizenInput(
            name=NAME,
            kana=KANA,
            phone=PHONE,
            email=EMAIL,
            address=ADDRESS,
            birth_date="1961-02-03",
        ),
    )
    other = citizens.create_citizen(
        SYSTEM, citizens.CitizenInput(name=OTHER_NAME, phone="0878392111")
    )
    db.session.commit()
    # At the counter: a note, a photo, a handoff with its 対応記録, a callback, an incident.
    counter = tickets.create_ticket(
        desk, channel=Channel.COUNTER, subject="鬼瓦さんの借金相談", citizen=person
    )
    tickets.add_note(desk, counter, NOTE)
    attachments.add(desk, counter, "鬼瓦の申請書.png", PNG)
    [handoff] = handoff_services.create(
        desk,
        counter,
        [handoff_services.Request(officer.department_id, HANDOFF_TEXT, Response.CALLBACK)],
    )
    officer_actor = Actor(officer, "127.0.0.1")
    handoff_services.accept(officer_actor, handoff)
    handoff_services.finish(
        officer_actor, handoff, handoff_services.Record(RECORD_TEXT, RECORD_TEXT, RECORD_TEXT, NAME)
    )
    db.session.add(Callback(ticket_id=counter.id, due_at=datetime.now(UTC), staff_id=consultant.id))
    db.session.add(
        Incident(
            ticket_id=counter.id,
            citizen_id=person.id,
            occurred_at=datetime.now(UTC),
            reported_by_id=consultant.id,
            description=f"{NAME}が大声で{NOTE}",
        )
    )
    db.session.commit()
    # By mail: the raw message, its attachment, the thread, a reply in the outbox.
    by_mail = email_tasks.ingest(_mail()).ticket
    assert by_mail.citizen_id == person.id
    tickets.record_outgoing(
        by_mail, channel="email", recipient=EMAIL, body=f"{NAME}様 ご相談の件", subject="Re: 鬼瓦"
    )
    db.session.commit()
    # By LINE, the contact linked to the same person.
    ids = (counter.id, by_mail.id, person.id, other.id, supervisor.id, consultant.id)
    post_webhook(client, body_of(text_event(LINE_TEXT, user=LINE_USER)))
    run_worker(app)  # it ends the session: objects are read again by id
    counter, by_mail = db.session.get(Ticket, ids[0]), db.session.get(Ticket, ids[1])
    person, other = db.session.get(Citizen, ids[2]), db.session.get(Citizen, ids[3])
    supervisor, consultant = db.session.get(Staff, ids[4]), db.session.get(Staff, ids[5])
    desk = Actor(consultant, "127.0.0.1")
    by_line = db.session.scalar(sa.select(Ticket).where(Ticket.channel == Channel.LINE))
    contact = db.session.scalar(sa.select(LineContact).where(LineContact.user_id == LINE_USER))
    contact.citizen_id = person.id
    by_line.citizen_id = person.id
    db.session.add(
        MergeRecord(
            kind="ticket", source_id=by_mail.id, target_id=counter.id, reason=f"{NAME}の重複"
        )
    )
    # The FAQ drafted from it, and a webhook still waiting with the name in its body.
    entry = faq_services.create_entry(
        SYSTEM, question="借金の相談先", answer="消費生活センターへ。"
    )
    db.session.add(FaqSource(entry_id=entry.id, ticket_id=counter.id))
    hook = ApiWebhook(
        name="試験", url="http://127.0.0.1:9/hook", events=["ticket.closed"], secret="s"
    )
    db.session.add(hook)
    db.session.flush()
    db.session.add(
        ApiWebhookDelivery(
            webhook_id=hook.id,
            event="ticket.closed",
            body=json.dumps(
                {"ticket": {"number": counter.number, "citizen_name": NAME}}, ensure_ascii=False
            ),
        )
    )
    db.session.commit()
    # A disclosure bundle made for the person (the worker's file under DATA_DIR/disclosure).
    from consult.services import disclosure_jobs

    disclosure_jobs.request_bundle(Actor(supervisor, "127.0.0.1"), person, "json")
    db.session.commit()
    assert disclosure_jobs.build_due() == 1
    kept = tickets.create_ticket(
        desk, channel=Channel.PHONE, subject="花子さんの相談", citizen=other
    )
    tickets.add_note(desk, kept, "生存 花子さんの記録")
    db.session.commit()
    for ticket in (counter, by_mail, by_line):
        db.session.refresh(ticket)
        if ticket.status != Status.CLOSED:
            tickets.close(desk, ticket, f"{NAME}様に案内しました。")
        ticket.closed_at = LONG_AGO
    db.session.commit()
    return {
        "supervisor": supervisor,
        "supervisor_name": supervisor.full_name,
        "numbers": [counter.number, by_mail.number, by_line.number],
        "tickets": [counter, by_mail, by_line],
        "kept": kept,
        "person": person.id,
        "other": other.id,
    }


def _all_text(markers=MARKERS) -> list[str]:
    """Every table of the database (FTS5's own tables included), every value, as text: where
    does a marker appear?"""
    found = []
    engine_tables = sa.inspect(db.session.connection()).get_table_names()
    connection = db.session.connection()
    for name in engine_tables:
        for row in connection.execute(sa.text(f'SELECT * FROM "{name}"')).mappings():
            for column, value in row.items():
                if value is None:
                    continue
                if isinstance(value, bytes | memoryview):
                    raw = bytes(value)
                    hits = [m for m in markers if m.encode("utf-8") in raw]
                else:
                    text = (
                        value
                        if isinstance(value, str)
                        else json.dumps(value, ensure_ascii=False, default=str)
                    )
                    hits = [m for m in markers if m in text]
                found += [f"{name}.{column}: {m}" for m in hits]
    return found


def _data_files(app, markers=MARKERS) -> list[str]:
    root = app.config["MADOGUCHI"]["DATA_DIR"]
    found = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                data = handle.read()
            for marker in markers:
                if marker.encode("utf-8") in data or marker.encode("utf-8") in name.encode():
                    found.append(f"{os.path.relpath(path, root)}: {marker}")
    return found


def _statistics() -> dict:
    from consult.services import report_rollup, reports
    from handoff.models import Handoff

    period = reports.fiscal_period(2026)
    figures = {"stored": report_rollup.stored(), "recount": report_rollup.recount()}
    figures["total"] = reports.total(period)
    figures["by_channel"] = reports.by_channel(period)
    figures["by_category"] = {str(k): v for k, v in reports.by_category(period).items()}
    figures["tickets"] = sorted(
        (t.number, str(t.channel), t.category_id, t.created_at, t.closed_at, t.duration_seconds)
        for t in db.session.scalars(sa.select(Ticket))
    )
    figures["handoffs"] = sorted(
        (h.department_id, str(h.state), str(h.response), h.created_at, h.accepted_at, h.done_at)
        for h in db.session.scalars(sa.select(Handoff))
    )
    return figures


def _approve_month(supervisor) -> None:
    listing = retention.prepare_list(Actor(supervisor, "127.0.0.1"), today=TODAY)
    retention.approve(Actor(supervisor, "127.0.0.1"), listing)
    db.session.commit()


def _dispose(app, *extra) -> dict:
    db.session.commit()
    result = app.test_cli_runner().invoke(
        args=["records", "dispose", "--approved", "--json", "--today", TODAY.isoformat(), *extra]
    )
    assert result.exit_code == 0, result.output
    db.session.rollback()  # a new transaction: sees what the command committed
    return json.loads(result.output)


def test_disposal_leaves_no_trace_and_keeps_the_statistics(line_app, line_client):
    case = _build_case(line_app, line_client)
    assert _all_text() and _data_files(line_app)  # the markers are really there before
    from consult.services import search

    assert search.matches(search.Query.parse("鬼瓦"))
    before = _statistics()
    _approve_month(case["supervisor"])
    outcome = _dispose(line_app)
    assert outcome["tickets"] == 3
    removed = outcome["removed"]
    for kind in (
        "citizen",
        "citizen_phone",
        "citizen_email",
        "timeline_text",
        "attachment",
        "file",
        "outbox",
        "search_document",
        "mail_raw",
        "mail_attachment",
        "mail_sender",
        "line_event",
        "line_delivery",
        "line_contact",
        "handoff_text",
        "faq_source",
        "webhook_body",
        "callback",
        "merge_reason",
        "incident_text",
        "disclosure_file",
    ):
        assert removed.get(kind), (kind, removed)
    assert _all_text() == []
    assert _data_files(line_app) == []
    assert search.matches(search.Query.parse("鬼瓦")) == {}
    assert search.matches(search.Query.parse("13572468")) == {}
    person = db.session.get(Citizen, case["person"])
    assert person.birth_date is None and person.name is None
    # The other person's live case is untouched.
    assert _all_text([OTHER_NAME]) and db.session.get(Citizen, case["other"]).name == OTHER_NAME
    assert search.matches(search.Query.parse("生存"))
    # The statistics are the same, and a rebuild of the rollups from the tickets agrees.
    after = _statistics()
    assert after == before
    # The 廃棄簿: one row per ticket, counts by kind, the approver, no data.
    records = list(
        db.session.scalars(sa.select(DisposalRecord).where(DisposalRecord.kind == "ticket"))
    )
    assert sorted(r.ticket_number for r in records) == sorted(case["numbers"])
    assert all(r.approved_by_name == case["supervisor_name"] and r.approved_at for r in records)
    assert all(r.retention_years == 5 and r.closed_on == date(2019, 5, 1) for r in records)
    by_number = {r.ticket_number: r.counts for r in records}
    assert by_number[case["numbers"][0]]["attachment"] == 1
    assert by_number[case["numbers"][0]]["handoff_text"] == 1
    assert by_number[case["numbers"][1]]["mail_raw"] == 1
    # A second run finds nothing more to do.
    assert _dispose(line_app)["tickets"] == 0


def _dump() -> dict:
    connection = db.session.connection()
    dump = {}
    for name in sorted(sa.inspect(db.session.connection()).get_table_names()):
        rows = connection.execute(sa.text(f'SELECT * FROM "{name}"')).all()
        dump[name] = sorted(repr(tuple(row)) for row in rows)
    return dump


def _files(app) -> dict:
    root = app.config["MADOGUCHI"]["DATA_DIR"]
    found = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                found[path] = handle.read()
    return found


def test_dry_run_changes_nothing_and_counts_what_would_go(line_app, line_client):
    case = _build_case(line_app, line_client)
    _approve_month(case["supervisor"])
    db.session.commit()
    tables, files = _dump(), _files(line_app)
    outcome = _dispose(line_app, "--dry-run")
    assert outcome["dry_run"] is True and outcome["tickets"] == 3
    assert outcome["removed"]["citizen"] == 1 and outcome["removed"]["file"] >= 2
    assert _dump() == tables
    assert _files(line_app) == files
    real = _dispose(line_app)
    assert real["tickets"] == 3
    assert {k: v for k, v in real["removed"].items()} == outcome["removed"]


# --- approval and holds -------------------------------------------------------------------------


def _old_ticket(make_ticket, **fields) -> Ticket:
    ticket = make_ticket(**fields)
    _close_at(ticket, LONG_AGO)
    return ticket


def test_nothing_goes_without_approval(app, make_ticket, make_staff):
    ticket = _old_ticket(make_ticket, subject="承認前の相談")
    supervisor = make_staff("supervisor")
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["records", "dispose", "--json", "--today", TODAY.isoformat()])
    assert refused.exit_code != 0 and "--approved" in refused.output
    listing = retention.prepare_list(Actor(supervisor, "127.0.0.1"), today=TODAY)
    db.session.commit()
    assert _dispose(app)["tickets"] == 0  # listed, not approved
    assert db.session.get(Ticket, ticket.id).subject == "承認前の相談"
    with pytest.raises(PermissionDenied):
        retention.approve(Actor(make_staff("consultant"), "127.0.0.1"), listing)
    db.session.rollback()
    retention.approve(Actor(supervisor, "127.0.0.1"), db.session.get(type(listing), listing.id))
    db.session.commit()
    assert _dispose(app)["tickets"] == 1
    disposed = db.session.get(Ticket, ticket.id)
    assert disposed.subject == "" and disposed.disposed_at is not None
    # Its page says so; it cannot be reopened to collect personal data again.
    desk = sign_in(app, make_staff("consultant"))
    assert "記録を廃棄しました" in desk.get(f"/tickets/{disposed.number}").get_data(as_text=True)
    with pytest.raises(InvalidTransition):
        tickets.reopen(Actor(disposed.created_by, "127.0.0.1"), disposed, "再開します")


def test_held_back_items_and_legal_holds_stop_disposal_until_lifted(app, make_ticket, make_staff):
    supervisor = make_staff("supervisor")
    boss = Actor(supervisor, "127.0.0.1")
    person = citizens.create_citizen(SYSTEM, citizens.CitizenInput(name="係争 中子"))
    db.session.commit()
    by_ticket = _old_ticket(make_ticket, subject="訴訟中の相談")
    by_person = _old_ticket(make_ticket, subject="相談者に訴訟ホールド", citizen=person)
    held_back = _old_ticket(make_ticket, subject="保留する相談")
    free = _old_ticket(make_ticket, subject="廃棄してよい相談")
    ticket_hold = retention.set_hold(
        boss, ticket=by_ticket, reason="国家賠償請求訴訟 令和8年(ワ)第1号"
    )
    citizen_hold = retention.set_hold(
        boss, citizen=db.session.get(Citizen, person.id), reason="審査請求中"
    )
    listing = retention.prepare_list(boss, today=TODAY)
    retention.hold_back(boss, listing, held_back.number)
    retention.approve(boss, listing)
    db.session.commit()
    summary = {row.category: row for row in retention.list_summary(boss, listing)}
    assert summary["（分類なし）"].held == 2 and summary["（分類なし）"].held_back == 1
    outcome = _dispose(app)
    assert outcome["tickets"] == 1 and outcome["skipped_legal_hold"] == 2
    subjects = {t.id: t.subject for t in db.session.scalars(sa.select(Ticket))}
    assert subjects[free.id] == ""
    assert subjects[by_ticket.id] == "訴訟中の相談"
    assert subjects[by_person.id] == "相談者に訴訟ホールド"
    assert subjects[held_back.id] == "保留する相談"
    assert db.session.get(Citizen, person.id).name == "係争 中子"
    # Setting and lifting are audited, without the reason.
    events = list(
        db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action.like("legal_hold%")))
    )
    assert len(events) == 2
    assert all(
        "ワ" not in (e.detail or "") and "審査請求中" not in (e.detail or "") for e in events
    )
    with pytest.raises(ValidationFailed):
        retention.lift_hold(boss, db.session.get(LegalHold, ticket_hold.id), "  ")
    retention.lift_hold(boss, db.session.get(LegalHold, ticket_hold.id), "判決確定")
    retention.lift_hold(boss, db.session.get(LegalHold, citizen_hold.id), "裁決")
    db.session.commit()
    outcome = _dispose(app)
    assert outcome["tickets"] == 2
    assert db.session.get(Citizen, person.id).name is None
    assert db.session.get(Ticket, held_back.id).subject == "保留する相談"
    item = db.session.scalar(sa.select(DisposalItem).where(DisposalItem.ticket_id == held_back.id))
    assert item.held_back_at is not None and item.disposed_at is None
    # The lifted holds' reasons went with their cases.
    assert db.session.get(LegalHold, ticket_hold.id).reason == ""


def test_a_citizen_with_a_live_case_keeps_their_data(app, make_ticket, make_staff):
    person = citizens.create_citizen(
        SYSTEM, citizens.CitizenInput(name="継続 一郎", phone="0901112222")
    )
    db.session.commit()
    old = _old_ticket(make_ticket, subject="古い相談", citizen=person)
    make_ticket(subject="続いている相談", citizen=db.session.get(Citizen, person.id))
    _approve_month(make_staff("supervisor"))
    assert _dispose(app)["tickets"] == 1
    assert db.session.get(Ticket, old.id).citizen_id is None
    kept = db.session.get(Citizen, person.id)
    assert kept.name == "継続 一郎" and [p.number for p in kept.phones] == ["0901112222"]


def test_a_line_user_who_opted_in_to_notices_stays_for_them_unlinked(app, make_ticket, make_staff):
    """Disposal takes the case, not the consent to the centre's notices: the contact stays for
    those, without its person or profile name; one without a consent goes."""
    from channels.line.models import LineContact, LineSubscription, LineTicket, SubscriptionTopic

    person = citizens.create_citizen(SYSTEM, citizens.CitizenInput(name="通知 花子"))
    loner = citizens.create_citizen(SYSTEM, citizens.CitizenInput(name="退去 次郎"))
    db.session.commit()
    kept_contact = LineContact(user_id="U" + "a" * 32, citizen_id=person.id, display_name="はなこ")
    gone_contact = LineContact(user_id="U" + "b" * 32, citizen_id=loner.id, display_name="じろう")
    db.session.add_all([kept_contact, gone_contact])
    db.session.flush()
    for contact, citizen in ((kept_contact, person), (gone_contact, loner)):
        ticket = _old_ticket(
            make_ticket, channel=Channel.LINE, subject="LINEの相談", citizen=citizen
        )
        db.session.add(LineTicket(ticket_id=ticket.id, contact_id=contact.id))
    db.session.add(
        LineSubscription(
            contact_id=kept_contact.id, topic=SubscriptionTopic.INTEREST, value="consumer"
        )
    )
    db.session.commit()
    kept_id, gone_id = kept_contact.id, gone_contact.id
    _approve_month(make_staff("supervisor"))
    outcome = _dispose(app)
    assert outcome["tickets"] == 2
    kept = db.session.get(LineContact, kept_id)
    assert kept is not None and kept.citizen_id is None and kept.display_name is None
    assert (
        db.session.scalar(
            sa.select(sa.func.count(LineSubscription.id)).where(
                LineSubscription.contact_id == kept_id
            )
        )
        == 1
    )
    assert db.session.get(LineContact, gone_id) is None
    assert db.session.get(Citizen, person.id).name is None


# --- the audit log's own retention, the register, the CLI ---------------------------------------


def test_audit_rows_older_than_their_own_retention_go_and_are_recorded(app, make_staff):
    admin = make_staff("admin")
    with pytest.raises(ValidationFailed):
        retention.set_audit_years(Actor(admin, "127.0.0.1"), 3)  # shorter than the cases'
    retention.set_audit_years(Actor(admin, "127.0.0.1"), 5)
    db.session.add(
        AuditEvent(at=datetime(2020, 3, 31, 14, 0, tzinfo=UTC), action="view", object_type="ticket")
    )
    db.session.add(
        AuditEvent(at=datetime(2021, 4, 1, 0, 0, tzinfo=UTC), action="view", object_type="ticket")
    )
    db.session.commit()
    count = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    # 2026年度 − 5 → rows before 2021-04-01 (Tokyo) go.
    assert _dispose(app)["removed"]["audit_event"] == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == count - 1
    [record] = db.session.scalars(sa.select(DisposalRecord).where(DisposalRecord.kind == "audit"))
    assert record.counts == {"audit_event": 1}
    # Outside disposal the rows are still append-only, raw SQL included.
    with pytest.raises(sa.exc.DBAPIError):
        db.session.execute(sa.text("DELETE FROM audit_event"))
        db.session.flush()
    db.session.rollback()


def test_due_and_register_commands(app, make_ticket, make_category, tmp_path):
    category = make_category(name="消費生活の試験")
    retention.set_category_years(SYSTEM, category, 3)
    db.session.commit()
    _old_ticket(make_ticket, subject="鬼瓦さんの件", category_id=category.id)
    _old_ticket(make_ticket, subject="その他の件")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["records", "due", "--json", "--today", TODAY.isoformat()])
    assert result.exit_code == 0, result.output
    due = json.loads(result.output)
    assert due["total"] == 2
    assert {(r["retention_years"], r["category"], r["count"]) for r in due["rows"]} == {
        (3, "消費生活の試験", 1),
        (5, "（分類なし）", 1),
    }
    assert "鬼瓦" not in result.output
    text = runner.invoke(args=["records", "due", "--today", TODAY.isoformat()])
    assert "消費生活の試験" in text.output and "合計 2件" in text.output
    out = tmp_path / "register.md"
    result = runner.invoke(args=["records", "register", "--out", str(out)])
    assert result.exit_code == 0, result.output
    register = out.read_text(encoding="utf-8")
    for expected in (
        "個人情報ファイル簿",
        "記録範囲",
        "citizen",
        "line_contact",
        "handoff",
        "保存期間",
        "センター責任者",
        "記録件数",
        "消費生活の試験（",
    ):
        assert expected in register, expected
    as_json = tmp_path / "register.json"
    runner.invoke(args=["records", "register", "--out", str(as_json)])
    document = json.loads(as_json.read_text(encoding="utf-8"))
    assert document["records"]["tickets"] == 2
    assert {item["table"] for item in document["items"]} >= {"citizen", "booking", "email_inbound"}


def test_register_names_every_role_and_every_api_scope(app, tmp_path):
    """The 利用者の範囲 is drawn from the roles and the API's scopes: a role or a scope that
    reads personal data cannot be left out of the register (the branch accounts, the tokens)."""
    from api.models import Scope
    from consult.models import Role

    out = tmp_path / "register.json"
    result = app.test_cli_runner().invoke(args=["records", "register", "--out", str(out)])
    assert result.exit_code == 0, result.output
    access = {
        row["role"]: row["may_see"] for row in json.loads(out.read_text(encoding="utf-8"))["access"]
    }
    for role in Role:
        assert access.get(role.label), role
    for scope in Scope:
        assert access.get(f"外部システム連携（APIトークン・範囲「{scope.label}」）"), scope
    assert len(access) == len(Role) + len(Scope)
    # What the branch account and a personal-scope token read, as the pages and the API do.
    assert "氏名" in access["支所"] and "連絡先・他の支所の予約は見られない" in access["支所"]
    personal = access["外部システム連携（APIトークン・範囲「個人情報（相談者・経過）の閲覧」）"]
    assert "住所・電話番号・メールアドレス" in personal and "支援措置の対象者" in personal
    # The Markdown draft: one table row each, in the register's wording.
    markdown = tmp_path / "register.md"
    app.test_cli_runner().invoke(args=["records", "register", "--out", str(markdown)])
    text = markdown.read_text(encoding="utf-8")
    assert "## 利用者の範囲（役割・連携システムごと）" in text
    assert f"| 支所 | {access['支所']} |" in text
    reports = "外部システム連携（APIトークン・範囲「統計」）"
    assert "個人データを含まない" in access[reports]
    assert f"| {reports} | {access[reports]} |" in text


# --- the pages ------------------------------------------------------------------------------------


def test_pages_set_classes_list_approve_and_hold(app, make_ticket, make_staff, make_category):
    category = make_category(name="家計の試験")
    old = _old_ticket(make_ticket, subject="ページの相談", category_id=category.id)
    admin = sign_in(app, make_staff("admin"))
    page = admin.get("/records/retention")
    assert page.status_code == 200 and "家計の試験" in page.get_data(as_text=True)
    response = admin.post(
        f"/records/retention/categories/{category.id}", data={f"c{category.id}-years": "10"}
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Category, category.id).retention_years == 10
    admin.post(f"/records/retention/categories/{category.id}", data={f"c{category.id}-years": "7"})
    db.session.expire_all()
    assert db.session.get(Category, category.id).retention_years == 10
    admin.post(f"/records/retention/categories/{category.id}", data={f"c{category.id}-years": "1"})
    # Administrators set classes; supervisors draw up and approve the list.
    assert admin.post("/records/lists").status_code == 403
    supervisor = sign_in(app, make_staff("supervisor"))
    response = supervisor.post("/records/lists")
    assert response.status_code == 302
    listing = supervisor.get(response.headers["Location"]).get_data(as_text=True)
    assert old.number in listing and "家計の試験" in listing and "ページの相談" not in listing
    list_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[-1])
    supervisor.post(f"/records/lists/{list_id}/hold-back", data={"number": old.number})
    supervisor.post(f"/records/lists/{list_id}/approve")
    page = supervisor.get(f"/records/lists/{list_id}").get_data(as_text=True)
    assert "承認済み" in page and "保留" in page
    response = supervisor.post(
        "/records/holds", data={"ticket_number": old.number, "reason": "不服申立て"}
    )
    assert response.status_code == 302
    assert "不服申立て" in supervisor.get("/records/holds").get_data(as_text=True)
    bad = supervisor.post("/records/holds", data={"ticket_number": "1999-999999", "reason": "x"})
    assert bad.status_code == 422 and "1999-999999" in bad.get_data(as_text=True)
    assert supervisor.get("/records/register").status_code == 200
    consultant = sign_in(app, make_staff("consultant"))
    assert consultant.get("/records/").status_code == 403
    assert (
        consultant.post(
            "/records/holds", data={"ticket_number": old.number, "reason": "x"}
        ).status_code
        == 403
    )


def test_the_worker_draws_up_each_month_list_once(app, make_ticket):
    from consult import tasks
    from consult.models import DisposalList

    assert tasks.prepare_monthly_list(TODAY) == 0  # nothing due: no list
    _old_ticket(make_ticket, subject="月次の相談")
    assert tasks.prepare_monthly_list(TODAY) == 1
    assert tasks.prepare_monthly_list(TODAY + timedelta(days=3)) == 0  # same month: once
    [listing] = db.session.scalars(sa.select(DisposalList))
    assert listing.month == date(2026, 12, 1) and listing.approved_at is None
    assert tasks.prepare_monthly_list(date(2027, 1, 5)) == 1  # not approved: listed again


def test_files_no_row_names_are_swept_once_a_day_old(app, make_ticket):
    from consult.services import attachments

    ticket = make_ticket(subject="添付の相談")
    kept = attachments.add(Actor(ticket.created_by, "127.0.0.1"), ticket, "写真.png", PNG)
    db.session.commit()
    folder = attachments._folder()
    old = folder / "ab" / "ab-orphan-from-a-rollback"
    young = folder / "cd" / "cd-upload-in-flight"
    for path in (old, young):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(FILE_MARK)
    two_days_ago = (datetime.now(UTC) - timedelta(days=2)).timestamp()
    os.utime(old, (two_days_ago, two_days_ago))
    os.utime(attachments.path_of(kept), (two_days_ago, two_days_ago))
    assert _dispose(app, "--dry-run")["removed"] == {"orphan_file": 1}
    assert old.exists()
    assert _dispose(app)["removed"] == {"orphan_file": 1}
    assert not old.exists() and young.exists() and attachments.path_of(kept).exists()


def test_a_ticket_merged_into_another_goes_with_it(app, make_ticket, make_staff):
    from consult.services import merge

    supervisor = make_staff("supervisor")
    source = make_ticket(subject="電話での重複")
    target = make_ticket(subject="メールでの相談")
    merge.merge_tickets(Actor(supervisor, "127.0.0.1"), source, target, reason="鬼瓦さんの重複")
    db.session.commit()
    _close_at(target, LONG_AGO)
    db.session.refresh(source)
    if source.closed_at is None:
        source.status, source.is_open = Status.CLOSED, False
    source.closed_at = LONG_AGO
    db.session.commit()
    assert _due_numbers(TODAY) == {target.number}  # the survivor is the candidate
    _approve_month(supervisor)
    outcome = _dispose(app)
    assert outcome["tickets"] == 2 and outcome["removed"]["merge_reason"] == 1
    assert {t.subject for t in db.session.scalars(sa.select(Ticket))} == {""}
    assert _all_text(["鬼瓦", "重複"]) == []
