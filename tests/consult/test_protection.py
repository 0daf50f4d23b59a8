"""Protected persons (支援措置), correction (訂正) and stop of use (利用停止).

The walk: every route of `app.url_map` (the access table of test_access.py, which fails when a
route is missing) is called by each role that is not named on the case, with a ticket and a
citizen under protection; no response may hold the person's address, phone, email or LINE id,
in any way of writing them. The person's 担当 and a supervisor see them (the control).
"""

from __future__ import annotations

import json
from datetime import date, datetime, time

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from consult.extensions import db
from consult.live.models import LiveEvent
from consult.models import AuditEvent, Channel, Citizen, CitizenFlagEvent, Ticket
from consult.services import citizens, outbox, protection, tickets
from consult.services.actor import SYSTEM, Actor
from consult.services.errors import InvalidTransition, PermissionDenied, ValidationFailed
from consult.timeutil import TOKYO
from tests.consult import test_access as access
from tests.consult.http import call
from tests.helpers import sign_in

NAME = "鈴木 静香"
PHONE = "090-5555-7777"
EMAIL = "shizuka.suzuki@example.jp"
ADDRESS = "香川県高松市紫雲町9番9号 ハイツ紫雲101"
LINE_ID = "U0123456789abcdef0123456789abcdef"
# Every way the whereabouts may be written on a page, a JSON answer or an export.
SECRETS = (
    PHONE,
    "09055557777",
    "０９０－５５５５－７７７７",
    "090(5555)7777",
    EMAIL,
    "紫雲町9番9号",
    "ハイツ紫雲101",
    LINE_ID,
)


def _leaks(text: str) -> list[str]:
    """The secrets in a text; a JSON text is read as its client reads it (decoded: "\\u7d2b"
    is 紫), not only as it was sent."""
    try:
        decoded = json.dumps(json.loads(text), ensure_ascii=False)
    except ValueError:
        decoded = ""
    return [s for s in SECRETS if s in text or s in decoded]


def _body(app, client, method: str, url: str, data: dict, headers: dict | None = None) -> str:
    """The whole body of a response, files and streams included (read before closing)."""
    db.session.commit()
    with app.app_context():
        response = client.open(url, method=method, data=data, headers=headers or {})
        try:
            return response.get_data().decode("utf-8", "replace")
        finally:
            response.close()


@pytest.fixture
def case(app, make_staff):
    """A protected person with a case assigned to one consultant (the 担当)."""
    from channels.line.models import LineContact

    named = make_staff("consultant")
    boss = make_staff("supervisor")
    person = citizens.create_citizen(
        SYSTEM, citizens.CitizenInput(name=NAME, kana="すずき しずか", phone=PHONE, email=EMAIL)
    )
    person.address = ADDRESS
    db.session.add(LineContact(user_id=LINE_ID, citizen_id=person.id))
    ticket = tickets.create_ticket(
        Actor(named, "127.0.0.1"),
        channel=Channel.PHONE,
        subject="生活の相談",
        citizen=person,
        assignee=named,
    )
    # What staff typed into the case: the number in full width, the address, the LINE id.
    tickets.add_note(
        Actor(named, "127.0.0.1"),
        ticket,
        f"連絡先は ０９０－５５５５－７７７７（本人）。転居先は{ADDRESS}。LINE {LINE_ID}",
    )
    db.session.commit()
    protection.protect(Actor(boss, "127.0.0.1"), person, "DV等支援措置の申出（受付済）")
    db.session.commit()
    return {"named": named, "boss": boss, "person": person, "ticket": ticket}


# --- setting and lifting ----------------------------------------------------------------------


def test_only_a_supervisor_sets_and_lifts_with_a_reason(app, make_staff, case):
    person = case["person"]
    with pytest.raises(PermissionDenied):
        protection.unprotect(Actor(case["named"]), person, "理由")
    with pytest.raises(ValidationFailed):
        protection.unprotect(Actor(case["boss"]), person, "  ")
    db.session.rollback()
    desk = sign_in(app, make_staff("consultant"))
    response = call(app, desk, "POST", f"/citizens/{person.id}/protected", data={"on": "0"})
    assert response.status_code == 403
    boss = sign_in(app, case["boss"])
    empty = call(
        app, boss, "POST", f"/citizens/{person.id}/protected", data={"on": "0", "reason": ""}
    )
    assert empty.status_code == 422 and "理由を入力してください" in empty.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Citizen, person.id).protected
    lifted = call(
        app,
        boss,
        "POST",
        f"/citizens/{person.id}/protected",
        data={"on": "0", "reason": "支援措置の期間満了"},
    )
    assert lifted.status_code == 302
    db.session.expire_all()
    assert not db.session.get(Citizen, person.id).protected
    events = db.session.scalars(
        sa.select(CitizenFlagEvent).where(CitizenFlagEvent.citizen_id == person.id)
    ).all()
    assert [(e.is_set, e.reason) for e in events] == [
        (True, "DV等支援措置の申出（受付済）"),
        (False, "支援措置の期間満了"),
    ]
    audits = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action.in_(["flag_set", "flag_lift"]))
    ).all()
    assert [(a.action, a.detail) for a in audits] == [
        ("flag_set", "protected"),
        ("flag_lift", "protected"),
    ]
    # The reasons: on the supervisor's page, never on a consultant's.
    page = call(app, boss, "GET", f"/citizens/{person.id}").get_data(as_text=True)
    assert "支援措置の期間満了" in page
    assert "支援措置の期間満了" not in call(app, desk, "GET", f"/citizens/{person.id}").get_data(
        as_text=True
    )


# --- route by route ---------------------------------------------------------------------------


def _objects(app, case, make_staff, make_department, make_category, make_citizen) -> dict:
    """The objects of the access table, around the protected person's ticket."""
    from handoff import services as handoff_services
    from handoff.models import Response

    ticket = case["ticket"]
    victim = make_staff("consultant")
    message = outbox.enqueue(channel="email", recipient=EMAIL, body=f"本文 {PHONE}", ticket=ticket)
    [handoff] = handoff_services.create(
        SYSTEM,
        ticket,
        [
            handoff_services.Request(
                make_department().id, "折り返しをお願いします", Response.CALLBACK
            )
        ],
    )
    db.session.commit()
    alert, incident = access._safety_objects(ticket, make_staff("consultant"))
    return {
        "handoff": handoff.id,
        "number": ticket.number,
        "victim": victim.id,
        "callback": access._callback(ticket, victim),
        "department": make_department().id,
        "category": make_category().id,
        "citizen": case["person"].id,
        "merge": access._merge_record(make_citizen(), make_citizen()),
        "outbox": message.id,
        "alert": alert,
        "incident": incident,
        **access._email_objects(),
    }


def _channels(app, case, branch_office) -> dict:
    """The protected person's other ways in, so each channel's pages have something to hide:
    a mail from their address (a PDF attached), a LINE chat from their linked account, and a
    booking of a session from the branch office whose account is walked."""
    from email.message import EmailMessage

    from channels.booking import services as booking_services
    from channels.email import tasks as email_tasks
    from channels.email.models import MailAttachment
    from channels.line.models import LineContact, LineTicket
    from consult.models import EntryKind, SafeFile
    from tests.channels.booking.test_specialist import weekday_ahead

    person = case["person"]
    mail = EmailMessage()
    mail["From"] = f"{NAME} <{EMAIL}>"
    mail["To"] = "soudan@example.lg.jp"
    mail["Subject"] = f"転居の相談（連絡先 {PHONE}）"
    mail["Message-ID"] = "<protected-walk@example.jp>"
    mail.set_content(f"新しい住所は{ADDRESS}です。日中は {PHONE} にお願いします。")
    mail.add_attachment(
        b"%PDF-1.4\n", maintype="application", subtype="pdf", filename="jyuminhyo.pdf"
    )
    by_mail = email_tasks.ingest(mail.as_bytes()).ticket
    assert by_mail is not None and by_mail.citizen_id == person.id  # found by the address
    # LINE: as the intake makes it (channels/line/services/events.py), from the linked account.
    contact = db.session.scalar(sa.select(LineContact).where(LineContact.user_id == LINE_ID))
    contact.display_name = "しずか"
    by_line = tickets.create_ticket(
        SYSTEM, channel=Channel.LINE, subject="LINE：引っ越しました", citizen=person
    )
    db.session.add(LineTicket(ticket=by_line, contact=contact))
    tickets.add_entry(
        by_line, EntryKind.MESSAGE_IN, body=f"引っ越しました。{ADDRESS}、電話は{PHONE}です。"
    )
    day = weekday_ahead(1)
    booking = booking_services.create_booking(
        SYSTEM,
        booking_services.BookingInput(
            mode="branch_video",
            starts_at=datetime.combine(day, time(10, 0), TOKYO),
            name=NAME,
            kana="すずき しずか",
            content=f"転居先（{ADDRESS}）での手続きについて",
            email=EMAIL,
            phone=PHONE,
            branch_office_id=branch_office.id,
        ),
    )
    db.session.commit()
    attachment = db.session.scalar(
        sa.select(MailAttachment.id).where(MailAttachment.ticket_id == by_mail.id)
    )
    return {
        "numbers": [by_mail.number, by_line.number],
        "tickets": [by_mail.id, by_line.id],
        "email_attachment": attachment,
        "safe_file": db.session.scalar(
            sa.select(SafeFile.id).where(SafeFile.source_id == attachment)
        ),
        "booking": booking.id,
        "booking_reference": booking.reference,
        "day": day.isoformat(),
    }


def _premise_holds(ids: tuple[int, int, int], ticket_ids=()) -> bool:
    """Whether the test's premise is as `_restore` leaves it, in one small read: most walked
    requests change none of it, and `_restore` would write every field back (each write an
    UPDATE, the search index and the rollup hooks run) after each of them. `ids`: the person's,
    the ticket's and its 担当's (read once: the case's objects are expired at every commit)."""
    person_id, ticket_id, named_id = ids
    expected = {ticket_id: (person_id, named_id, None, True, None)}
    expected.update({other: (person_id, None, None, True, None) for other in ticket_ids})
    rows = db.session.execute(
        sa.select(
            Ticket.id,
            Ticket.citizen_id,
            Ticket.assignee_id,
            Ticket.merged_into_id,
            Citizen.protected,
            Citizen.merged_into_id,
        )
        .join(Citizen, Citizen.id == person_id)
        .where(Ticket.id.in_(list(expected)))
    )
    return {row[0]: tuple(row[1:]) for row in rows} == expected


def _restore(case, ticket_ids=()) -> None:
    """Undo what a walked POST changed that would end the test's premise."""
    db.session.expire_all()
    ticket = db.session.get(Ticket, case["ticket"].id)
    person = db.session.get(Citizen, case["person"].id)
    ticket.citizen_id = person.id
    ticket.assignee_id = case["named"].id
    ticket.merged_into_id = None
    for other in ticket_ids:  # the mail's and the LINE chat's: the person's, nobody's 担当
        walked = db.session.get(Ticket, other)
        walked.citizen_id, walked.assignee_id, walked.merged_into_id = person.id, None, None
    person.protected = True
    person.merged_into_id = None
    db.session.commit()


def test_protected_person_is_invisible_route_by_route(
    app, make_staff, make_department, make_category, access_citizen, make_token_for, case
):
    from consult.settings import override as override_settings

    override_settings(
        app,
        FAQ_VOTE_RATE_LIMIT="100 per minute",
        API_RATE_LIMIT="100000 per minute",
        BOOKING_BRANCH_MEETING_URL="https://meet.example.jp/madoguchi/{code}",
    )
    objects = _objects(app, case, make_staff, make_department, make_category, access_citizen)
    branch = make_staff("branch")
    walked = _channels(app, case, branch.branch_office)
    objects.update(email_attachment=walked["email_attachment"], safe_file=walked["safe_file"])
    # Not named on the case: another consultant, an officer, the support room, an
    # administrator, the branch office whose session the person booked, anyone signed out
    # (the lobby display, the public pages), and a connected system whose token has every
    # scope, `personal` included (it walks the API's routes).
    clients = {"anonymous": (app.test_client(), None)}
    for role in ("consultant", "officer", "support", "admin"):
        clients[role] = (sign_in(app, make_staff(role)), None)
    clients["branch"] = (sign_in(app, branch), None)
    clients["api"] = (app.test_client(), make_token_for())
    ticket_ids = walked["tickets"]
    ids = (case["person"].id, case["ticket"].id, case["named"].id)
    failures = []

    def walk(method: str, url: str, data: dict, api: bool) -> None:
        for who, (client, headers) in clients.items():
            if (who == "api") != api and who != "anonymous":
                continue  # the token on the API, the sessions on the rest
            leaked = _leaks(_body(app, client, method, url, data, headers))
            if leaked:
                failures.append(f"{method} {url} as {who}: {leaked}")
            if not _premise_holds(ids, ticket_ids):
                _restore(case, ticket_ids)

    # The rows of the table whose ids are made up (999999 for a booking), and the API's lists
    # on the booked day and by the person's name: with the person's own objects here.
    day, booking = walked["day"], walked["booking"]
    for url, api in (
        (f"/booking/staff/b/{booking}", False),
        (f"/booking/staff/day?date={day}", False),
        (f"/booking/staff/week?date={day}", False),
        (f"/api/v1/bookings?from={day}&to={day}", True),
        ("/api/v1/citizens?name=鈴木", True),
        (f"/api/v1/citizens?email={EMAIL}", True),
    ):
        walk("GET", url, {}, api)
    covered = []
    # Every row of the table; those that name a ticket, once for each of the person's tickets.
    for (rule, method), (build, _expect, *rest) in access.TABLE.items():
        data = rest[0] if rest else {}
        numbers = [case["ticket"].number]
        if "number>" in rule:
            numbers += walked["numbers"]
        for number in numbers:
            objects["number"] = number  # (in place: a builder keeps what it made in `objects`)
            walk(method, build(objects), data, rule.startswith("/api/"))
        covered.append(f"{method} {rule}")
    assert not failures, "\n".join(failures)
    assert len(covered) == len(access._routes(app))


def test_the_walk_has_something_to_hide(app, make_staff, make_token_for, case):
    """The walk's pages hold the person's case, with the whereabouts hidden: the branch's page
    lists their session (the name, which it needs), and a token with every scope reads their
    tickets, their name and the timeline, the whereabouts masked (［非表示］) or left out."""
    from consult.settings import override as override_settings

    override_settings(app, BOOKING_BRANCH_MEETING_URL="https://meet.example.jp/madoguchi/{code}")
    branch = make_staff("branch")
    walked = _channels(app, case, branch.branch_office)
    page = call(app, sign_in(app, branch), "GET", "/booking/branch").get_data(as_text=True)
    assert walked["booking_reference"] in page and NAME in page and not _leaks(page)
    headers = make_token_for()
    api = app.test_client()
    listed = api.get("/api/v1/tickets", headers=headers)
    mine = [i for i in listed.get_json()["items"] if i["number"] in walked["numbers"]]
    assert len(mine) == 2 and not _leaks(listed.get_data(as_text=True))
    # The mail's subject carried the number: masked in the list, as on the desk.
    assert any(protection.HIDDEN in i["subject"] for i in mine)
    for number in (case["ticket"].number, *walked["numbers"]):
        read = api.get(f"/api/v1/tickets/{number}", headers=headers)
        citizen = read.get_json()["citizen"]
        assert citizen["name"] == NAME and citizen["address"] is None, number
        assert citizen["phones"] == [] and citizen["emails"] == [], number
        timeline = api.get(f"/api/v1/tickets/{number}/timeline", headers=headers)
        text = timeline.get_data(as_text=True)
        assert timeline.status_code == 200 and not _leaks(text), number
        assert protection.HIDDEN in text, number
    bookings = api.get(
        f"/api/v1/bookings?from={walked['day']}&to={walked['day']}", headers=headers
    ).get_json()["items"]
    assert [b["name"] for b in bookings] == [NAME]
    person = case["person"].id
    assert api.get(f"/api/v1/citizens/{person}", headers=headers).status_code == 404
    # The desk's pages of the mail and the LINE chat: the case is there, the whereabouts not.
    desk = sign_in(app, make_staff("consultant"))
    for number in walked["numbers"]:
        text = call(app, desk, "GET", f"/tickets/{number}").get_data(as_text=True)
        assert NAME in text and not _leaks(text), number
    # The control: the 担当 of the case sees the mail's address on the mail's own ticket.
    own = call(app, sign_in(app, case["named"]), "GET", f"/tickets/{walked['numbers'][0]}")
    assert EMAIL in own.get_data(as_text=True)


def test_named_staff_and_supervisors_see_the_whereabouts(app, case):
    number, person = case["ticket"].number, case["person"]
    for who in (case["named"], case["boss"]):
        client = sign_in(app, who)
        page = call(app, client, "GET", f"/tickets/{number}").get_data(as_text=True)
        assert EMAIL in page and "090-5555-7777" in page and "紫雲町9番9号" in page, who.role
        citizen = call(app, client, "GET", f"/citizens/{person.id}").get_data(as_text=True)
        assert ADDRESS in citizen


def test_pages_mask_by_themselves(app, make_staff, case):
    """The ticket, citizen and print pages hide the fields themselves: the second line (the
    response scrubber, whose mark is ［非表示］) has nothing to do there but the typed note."""
    client = sign_in(app, make_staff("consultant"))
    number, person = case["ticket"].number, case["person"]
    for path in (f"/tickets/{number}", f"/tickets/{number}/print"):
        page = call(app, client, "GET", path).get_data(as_text=True)
        assert "支援措置の対象のため" in page
        # The one mark of the second line: the note typed by staff, in the timeline.
        assert page.count(protection.HIDDEN) == 3, path
    citizen_page = call(app, client, "GET", f"/citizens/{person.id}").get_data(as_text=True)
    assert protection.HIDDEN not in citizen_page
    assert citizen_page.count("（非表示）") == 3


# --- searches ---------------------------------------------------------------------------------


def test_a_search_for_the_person_finds_nothing_is_audited_and_reported(
    app, make_staff, make_token_for, case
):
    person, number = case["person"], case["ticket"].number
    desk_staff = make_staff("consultant")
    desk = sign_in(app, desk_staff)
    for data in ({"name": NAME}, {"phone": PHONE}, {"email": EMAIL}, {"kana": "すずき しずか"}):
        answer = call(app, desk, "POST", "/citizens/match", data=data).get_json()
        assert answer["matches"] == [], data
    for q in (NAME, PHONE, "09055557777"):
        page = call(app, desk, "POST", "/tickets/search", data={"q": q}).get_data(as_text=True)
        assert number not in page, q
    headers = make_token_for()
    api = app.test_client()
    found = api.get("/api/v1/citizens", query_string={"phone": PHONE}, headers=headers)
    assert found.status_code == 200 and found.get_json()["items"] == []
    assert api.get(f"/api/v1/citizens/{person.id}", headers=headers).status_code == 404
    missing = api.get("/api/v1/citizens/2147483000", headers=headers)
    assert missing.status_code == 404
    db.session.commit()
    result = CliRunner().invoke(app.cli, ["ticket", "search", "09055557777", "--json"])
    assert result.exit_code == 0 and json.loads(result.output) == []

    db.session.expire_all()
    attempts = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "protected_search")
    ).all()
    vias = {a.detail for a in attempts}
    assert {"via=citizens.match", "via=ticket.search", "via=api.citizen"} <= vias, vias
    assert all(a.object_id == str(person.id) for a in attempts)
    assert any(a.staff_id == desk_staff.id for a in attempts)
    assert not any(PHONE in (a.detail or "") or "鈴木" in (a.detail or "") for a in attempts)
    events = db.session.scalars(
        sa.select(LiveEvent).where(LiveEvent.kind == "protected_search")
    ).all()
    assert events and all(e.audience == ["role:supervisor"] for e in events)
    assert {e.payload["citizen_id"] for e in events} == {person.id}
    # The supervisor's 今日 lists the attempts; a consultant's does not.
    boss = sign_in(app, case["boss"])
    today = call(app, boss, "GET", "/today").get_data(as_text=True)
    assert "支援措置の対象者への照会" in today and f"相談者番号 {person.id}" in today
    assert "支援措置の対象者への照会" not in call(app, desk, "GET", "/today").get_data(as_text=True)


def test_named_staff_and_supervisors_find_the_person_without_a_report(app, case):
    for who in (case["named"], case["boss"]):
        client = sign_in(app, who)
        answer = call(app, client, "POST", "/citizens/match", data={"phone": PHONE}).get_json()
        assert [m["id"] for m in answer["matches"]] == [case["person"].id]
        page = call(app, client, "POST", "/tickets/search", data={"q": PHONE})
        assert case["ticket"].number in page.get_data(as_text=True)
    count = db.session.scalar(
        sa.select(sa.func.count(AuditEvent.id)).where(AuditEvent.action == "protected_search")
    )
    assert count == 0


# --- what leaves the centre -------------------------------------------------------------------


def test_outgoing_messages_and_handoffs_never_carry_the_whereabouts(app, make_department, case):
    from handoff import services as handoff_services
    from handoff.models import Response

    message = outbox.enqueue(
        channel="email",
        recipient="kousei@example.city.jp",
        subject=f"{PHONE} の件",
        body=f"相談者の連絡先：{PHONE}、{EMAIL}、{ADDRESS}",
    )
    db.session.flush()
    assert not _leaks(message.body) and not _leaks(message.subject)
    [handoff] = handoff_services.create(
        SYSTEM,
        case["ticket"],
        [handoff_services.Request(make_department().id, "折り返し", Response.CALLBACK)],
    )
    contact = handoff_services.contact_for(SYSTEM, handoff)
    assert contact["phones"] == [] and contact["emails"] == [] and contact["protected"]
    assert handoff_services.external_contact(handoff, "127.0.0.1")["phones"] == []


def test_faq_draft_of_a_protected_case_holds_no_whereabouts(app, case):
    from faq import services as faq_services

    ticket = case["ticket"]
    tickets.close(Actor(case["named"]), ticket, f"{ADDRESS} に住む方へ {PHONE} で連絡した")
    db.session.commit()
    entry = faq_services.draft_from_ticket(Actor(case["named"]), ticket)
    assert not _leaks(entry.question + entry.answer)


def test_personal_export_hides_the_address(app, make_staff, case):
    from consult.services import reports

    today = date.today()
    period = reports.Period(date(today.year - 1, 1, 1), date(today.year + 1, 12, 31), "試験")
    text = "".join(reports.export_csv(Actor(make_staff("admin")), "tickets", period, True))
    assert NAME in text and not _leaks(text)


def test_handoff_export_holds_no_whereabouts(app, make_staff, make_department, case):
    from consult.services import reports
    from handoff import services as handoff_services
    from handoff.models import Response

    handoff_services.create(
        SYSTEM,
        case["ticket"],
        [handoff_services.Request(make_department().id, f"自宅 {ADDRESS} へ", Response.VISIT)],
    )
    db.session.commit()
    today = date.today()
    period = reports.Period(date(today.year - 1, 1, 1), date(today.year + 1, 12, 31), "試験")
    text = "".join(reports.export_csv(Actor(make_staff("admin")), "handoffs", period, True))
    assert "自宅" in text and not _leaks(text)


# --- correction -------------------------------------------------------------------------------


def test_correction_keeps_the_previous_value_visible_to_the_desk(app, make_staff, make_ticket):
    desk = make_staff("consultant")
    client = sign_in(app, desk)
    ticket = make_ticket()
    form = {"name": "小川 太郎", "phone": "087-000-1111", "address": "高松市旧町1番1号"}
    assert call(app, client, "POST", f"/tickets/{ticket.number}/citizen", data=form).status_code
    db.session.expire_all()
    citizen_id = db.session.get(Ticket, ticket.id).citizen_id
    corrected = {**form, "address": "高松市新町2番2号", "name": "小川 大郎"}
    response = call(app, client, "POST", f"/tickets/{ticket.number}/citizen", data=corrected)
    assert response.status_code == 302
    page = call(app, client, "GET", f"/citizens/{citizen_id}").get_data(as_text=True)
    history = page.split("訂正の履歴", 1)[1]
    assert "高松市旧町1番1号" in history and "高松市新町2番2号" in history
    assert "小川 太郎" in history and "小川 大郎" in history and "住所" in history
    assert desk.display_name in history
    rows = citizens.revisions(Actor(desk), db.session.get(Citizen, citizen_id))
    assert [(r.field, r.old_value, r.new_value) for r in rows[:2]] == [
        ("address", "高松市旧町1番1号", "高松市新町2番2号"),
        ("name", "小川 太郎", "小川 大郎"),
    ]


def test_an_unnamed_consultant_can_neither_see_nor_erase_protected_fields(app, make_staff, case):
    person, ticket = case["person"], case["ticket"]
    # The 担当 corrects the address: the history holds both values.
    named = sign_in(app, case["named"])
    form = {"name": NAME, "address": "香川県高松市扇町1番1号"}
    call(app, named, "POST", f"/tickets/{ticket.number}/citizen", data=form)
    _restore(case)
    other = sign_in(app, make_staff("consultant"))
    # An unnamed consultant renames; the address they cannot see stays as it was.
    response = call(
        app, other, "POST", f"/tickets/{ticket.number}/citizen", data={"name": "鈴木 しずか"}
    )
    assert response.status_code == 302
    db.session.expire_all()
    stored = db.session.get(Citizen, person.id)
    assert stored.name == "鈴木 しずか" and stored.address == "香川県高松市扇町1番1号"
    page = call(app, other, "GET", f"/citizens/{person.id}").get_data(as_text=True)
    assert "鈴木 静香" in page.split("訂正の履歴", 1)[1]  # the name's history: visible
    assert "扇町" not in page and not _leaks(page)
    own = call(app, named, "GET", f"/citizens/{person.id}").get_data(as_text=True)
    assert "紫雲町9番9号" in own.split("訂正の履歴", 1)[1]


# --- stop of use ------------------------------------------------------------------------------


def test_stop_of_use(app, make_staff, make_ticket):
    from consult.services import auto_answer, reports
    from consult.timeline import Automatic
    from faq import services as faq_services

    boss = make_staff("supervisor")
    desk = make_staff("consultant")
    person = citizens.create_citizen(
        SYSTEM, citizens.CitizenInput(name="中村 誠司", phone="087-812-3456")
    )
    open_case = make_ticket(citizen=person, subject="年金の相談", actor=Actor(desk))
    closed = make_ticket(citizen=person, subject="税の相談", actor=Actor(desk))
    tickets.close(Actor(desk), closed, "説明した")
    db.session.commit()
    assert protection.stop_use(Actor(boss), person, "本人から利用停止の申出")
    db.session.commit()
    # Other staff's searches: no match, and no report (not a protected person).
    other = sign_in(app, make_staff("consultant"))
    assert (
        call(app, other, "POST", "/citizens/match", data={"name": "中村 誠司"}).get_json()[
            "matches"
        ]
        == []
    )
    page = call(app, other, "POST", "/tickets/search", data={"q": "08781234 56".replace(" ", "")})
    assert open_case.number not in page.get_data(as_text=True)
    # The supervisor (to lift it) and the 担当 still find the person.
    for who in (boss, desk):
        found = call(app, sign_in(app, who), "POST", "/citizens/match", data={"name": "中村 誠司"})
        assert [m["id"] for m in found.get_json()["matches"]] == [person.id]
    # FAQ drafting, automatic answers, exports.
    with pytest.raises(InvalidTransition, match="利用停止"):
        faq_services.draft_from_ticket(Actor(desk), closed)
    db.session.rollback()
    from consult.timeutil import utcnow

    assert not auto_answer.may_answer_automatically(
        open_case, Automatic.ACK, utcnow(), first_message=True
    )
    today = date.today()
    period = reports.Period(date(today.year - 1, 1, 1), date(today.year + 1, 12, 31), "試験")
    text = "".join(reports.export_csv(Actor(make_staff("admin")), "tickets", period, True))
    assert "中村" not in text and "（利用停止）" in text and open_case.number in text
    # The open case goes on.
    tickets.add_note(Actor(desk), open_case, "電話で説明")
    db.session.commit()
    assert open_case.is_open
    assert (
        db.session.scalar(
            sa.select(sa.func.count(AuditEvent.id)).where(AuditEvent.action == "protected_search")
        )
        == 0
    )


@pytest.fixture
def access_citizen(app):
    def make(**fields):
        citizen = citizens.create_citizen(
            SYSTEM, citizens.CitizenInput(**({"name": "山田 花子"} | fields))
        )
        db.session.commit()
        return citizen

    return make


@pytest.fixture
def make_token_for(app):
    from api import services as api_services
    from api.models import Scope

    def make():
        created = api_services.create_integration(
            SYSTEM, name="庁内システム", scopes=[s.value for s in Scope]
        )
        db.session.commit()
        return {"Authorization": f"Bearer {created.token}"}

    return make
