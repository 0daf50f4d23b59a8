"""The citizens' voice (issue 19), end to end on both databases: the satisfaction question by
mail and at the counter, answers that cannot be traced back to their citizen, requests to the
city with business-day deadlines and their department from the handoff, and the reports."""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import urlsplit

import sqlalchemy as sa

from channels.email import tasks as mail_tasks
from consult.extensions import db
from consult.models import Channel, EntryKind, OutboxMessage, Ticket
from consult.services import calendar, tickets
from consult.services.actor import Actor
from consult.voice import services as voice
from consult.voice.models import (
    CitizenRequest,
    SatisfactionAnswer,
    SatisfactionAsk,
    SatisfactionInvite,
)
from tests.channels.test_email_channel import citizen_mail
from tests.helpers import sign_in

URL = re.compile(r"https?://[^\s\"<>]+/voice/satisfaction/[A-Za-z0-9_.\-]+")


def _path(url: str) -> str:
    return urlsplit(url).path


def _walk_in(client, subject="粗大ごみの出し方", category_id=None) -> str:
    data = {"subject": subject, "room": "1", "anonymous": "y", "first_note": "窓口で相談"}
    if category_id:
        data["category_id"] = str(category_id)
    response = client.post("/counter/new", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    return response.headers["Location"].rsplit("/", 1)[-1]


# --- satisfaction --------------------------------------------------------------------------


def test_counter_receipt_carries_a_qr_code_whose_link_answers_once(app, login_as, make_category):
    category = make_category("ごみ・リサイクル")
    client = app.test_client()
    sign_in(client, login_as("consultant"))
    number = _walk_in(client, category_id=category.id)

    page = client.get(f"/counter/receipt/{number}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "受付票" in html and number in html and "受付番号" in html
    assert 'class="receipt__qr" src="data:image/svg+xml' in html
    url = URL.search(html).group(0)
    # A reprint shows the same code (one question per ticket), and asks nothing new.
    assert (
        URL.search(client.get(f"/counter/receipt/{number}").get_data(as_text=True)).group(0) == url
    )
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SatisfactionInvite)) == 1

    citizen = app.test_client()  # a citizen's phone: nobody signed in
    form = citizen.get(_path(url))
    assert form.status_code == 200
    assert "対応にご満足いただけましたか" in form.get_data(as_text=True)
    done = citizen.post(_path(url), data={"score": "4", "comment": "丁寧でした"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/thanks")
    assert "ありがとうございました" in citizen.get(done.headers["Location"]).get_data(as_text=True)

    # Single use: the same link again, and a reprint, no longer offer the question.
    again = citizen.post(_path(url), data={"score": "1"})
    assert again.status_code == 410
    assert "回答済み" in again.get_data(as_text=True)
    assert "receipt__qr" not in client.get(f"/counter/receipt/{number}").get_data(as_text=True)

    db.session.expire_all()
    (answer,) = db.session.scalars(sa.select(SatisfactionAnswer)).all()
    month = date.today().strftime("%Y-%m")
    assert (answer.channel, answer.category_id, answer.month, answer.score) == (
        "counter",
        category.id,
        month,
        4,
    )
    assert answer.comment == "丁寧でした"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SatisfactionInvite)) == 0


def test_the_public_page_is_english_too_and_refuses_bad_input_without_a_500(
    app, login_as, make_ticket
):
    ticket = make_ticket(channel=Channel.COUNTER)
    token = voice.ask(ticket)
    db.session.commit()
    citizen = app.test_client()
    english = citizen.get(f"/voice/satisfaction/{token}?lang=en").get_data(as_text=True)
    assert "Were you satisfied with how we handled your consultation?" in english
    assert "Somewhat satisfied" in english
    bad = citizen.post(f"/voice/satisfaction/{token}", data={"score": "9"})
    assert bad.status_code == 422
    assert "Please choose one of the options." in bad.get_data(as_text=True)
    long = citizen.post(f"/voice/satisfaction/{token}", data={"score": "3", "comment": "あ" * 1001})
    assert long.status_code == 422
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SatisfactionAnswer)) == 0
    # A forged or altered token: the same answer as a used one, nothing stored.
    assert citizen.get(f"/voice/satisfaction/{token[:-2]}xx").status_code == 410
    assert citizen.get("/voice/satisfaction/not-a-token").status_code == 410


def test_a_mail_case_gets_one_link_when_it_closes(app, login_as):
    outcome = mail_tasks.ingest(citizen_mail())
    db.session.commit()
    ticket = db.session.get(Ticket, outcome.inbound.ticket_id)
    staff = login_as("consultant")
    tickets.close(Actor(staff, "127.0.0.1"), ticket, "児童手当の申請方法を案内しました。")
    db.session.commit()

    mails = db.session.scalars(
        sa.select(OutboxMessage).where(
            OutboxMessage.ticket_id == ticket.id,
            OutboxMessage.body.contains("/voice/satisfaction/"),
        )
    ).all()
    assert len(mails) == 1
    assert mails[0].recipient == "taka@docomo.ne.jp"
    assert "対応にご満足いただけましたか" in mails[0].body
    url = URL.search(mails[0].body).group(0)
    # Reopened and closed again: still asked once.
    tickets.reopen(Actor(staff, "127.0.0.1"), ticket, "追加の質問")
    tickets.close(Actor(staff, "127.0.0.1"), ticket, "追加の質問に回答しました。")
    db.session.commit()
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.body.contains("/voice/satisfaction/"))
        )
        == 1
    )
    citizen = app.test_client()
    assert citizen.post(_path(url), data={"score": "5"}).status_code == 302
    assert db.session.scalar(sa.select(SatisfactionAnswer.channel)) == "email"


def test_an_answer_cannot_be_traced_back_to_its_ticket(app, make_ticket):
    """What the database keeps: no ticket id, no time, no order, no token; the invite is gone.

    The answer tables have no column that names a ticket or a moment, their ids are random,
    and the only row that knows a ticket (SatisfactionAsk) knows neither the token nor the
    answer; the invite's digest is keyed with the app's secret, so a token seen in an outbox
    row cannot be matched to an invite from a copy of the database."""
    inspector = sa.inspect(db.engine)
    for table, allowed in (
        ("satisfaction_answer", {"id", "channel", "category_id", "month", "score", "comment"}),
        ("satisfaction_invite", {"id", "digest", "channel", "category_id", "month", "expires_on"}),
        ("satisfaction_ask", {"ticket_id", "channel"}),
    ):
        assert {c["name"] for c in inspector.get_columns(table)} == allowed
    for table in ("satisfaction_answer", "satisfaction_invite"):
        targets = {fk["referred_table"] for fk in inspector.get_foreign_keys(table)}
        assert targets <= {"category"}

    first, second = make_ticket(), make_ticket()
    tokens = [voice.ask(first), voice.ask(second)]
    db.session.commit()
    digests = set(db.session.scalars(sa.select(SatisfactionInvite.digest)))
    assert not any(token in digest or digest in token for token in tokens for digest in digests)
    voice.answer(tokens[1], 2)
    voice.answer(tokens[0], 5)
    db.session.commit()
    answers = db.session.execute(sa.select(SatisfactionAnswer.id, SatisfactionAnswer.score)).all()
    assert len(answers) == 2
    assert all(re.fullmatch(r"[0-9a-f]{32}", row.id) for row in answers)
    asks = db.session.execute(sa.select(SatisfactionAsk.__table__)).mappings().all()
    assert {tuple(sorted(row)) for row in asks} == {("channel", "ticket_id")}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SatisfactionInvite)) == 0


def test_report_shows_satisfaction_by_channel_category_and_month_hiding_small_cells(
    app, login_as, make_ticket, make_category
):
    category = make_category("税金")
    for score in (5, 4, 3):
        ticket = make_ticket(channel=Channel.COUNTER, category_id=category.id)
        voice.answer(voice.ask(ticket), score)
    voice.answer(voice.ask(make_ticket(channel=Channel.PHONE)), 1)
    db.session.commit()
    client = app.test_client()
    sign_in(client, login_as("supervisor"))
    html = client.get("/reports").get_data(as_text=True)
    assert "満足度（完了後のアンケート）" in html
    section = html[html.index("満足度（完了後のアンケート）") :]
    assert "税金" in section and "窓口" in section
    assert "4.00" in section  # 税金 / 窓口: (5+4+3)/3
    assert "少数のため非表示" in section  # 電話: one answer, no figure
    quarterly = client.get("/reports/quarterly").get_data(as_text=True)
    assert "満足度（完了後のアンケート）" in quarterly


# --- requests to the city ------------------------------------------------------------------


def test_deadline_counts_business_days_past_holidays():
    # 2026-05-01 is a Friday; 4, 5 and 6 May are holidays (Golden Week).
    assert calendar.add_business_days(date(2026, 5, 1), 5) == date(2026, 5, 13)
    assert calendar.add_business_days(date(2026, 5, 1), 10) == date(2026, 5, 20)
    assert calendar.business_days_between(date(2026, 5, 1), date(2026, 5, 13)) == 5


def test_request_flow_deadline_department_from_handoff_officer_answer_report(
    app, login_as, make_department, make_staff
):
    from handoff import services as handoff_services
    from handoff.models import Response

    roads = make_department(name="道路課")
    other = make_department(name="税務課")
    consultant = login_as("consultant")
    client = app.test_client()
    sign_in(client, consultant)
    ticket = tickets.create_ticket(
        Actor(consultant, "127.0.0.1"), channel=Channel.PHONE, subject="市道の街灯が暗い"
    )
    db.session.commit()
    number = ticket.number

    refused = client.post(f"/tickets/{number}/request", data={"kind": "bogus"})
    assert refused.status_code == 422
    assert 'class="field__error"' in refused.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CitizenRequest)) == 0
    client.post(f"/tickets/{number}/request", data={"kind": "request"})
    db.session.expire_all()
    item = db.session.scalar(sa.select(CitizenRequest))
    assert item.answer_days == 10
    assert item.due_on == calendar.add_business_days(item.received_on, 10)
    page = client.get(f"/tickets/{number}").get_data(as_text=True)
    assert "回答期限" in page and "市への要望" in page

    ticket = db.session.get(Ticket, ticket.id)
    handoff_services.create(
        Actor(consultant, "127.0.0.1"),
        ticket,
        [handoff_services.Request(roads.id, "街灯の修繕についての要望", Response.WRITTEN)],
    )
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(CitizenRequest, item.id).department_id == roads.id

    officer = make_staff("officer", department=roads)
    stranger = make_staff("officer", department=other)
    outsider = app.test_client()
    sign_in(outsider, stranger)
    assert outsider.get(f"/requests/{item.id}").status_code == 404
    assert number not in outsider.get("/requests").get_data(as_text=True)
    assert outsider.post(f"/requests/{item.id}", data={"text": "横取り"}).status_code == 404

    officer_client = app.test_client()
    sign_in(officer_client, officer)
    assert number in officer_client.get("/requests").get_data(as_text=True)
    done = officer_client.post(
        f"/requests/{item.id}", data={"text": "現地を確認し、街灯を交換しました。"}
    )
    assert done.status_code == 302
    db.session.expire_all()
    item = db.session.get(CitizenRequest, item.id)
    assert item.answered_by_id == officer.id and item.answer_business_days == 0
    ticket = db.session.get(Ticket, ticket.id)
    assert any(
        e.kind == EntryKind.NOTE and e.body.startswith("【文書回答】") for e in ticket.timeline
    )
    # Once: a second answer is refused and changes nothing.
    officer_client.post(f"/requests/{item.id}", data={"text": "二度目"})
    db.session.expire_all()
    assert db.session.get(CitizenRequest, item.id).answer_text.startswith("現地を確認")

    report = app.test_client()
    sign_in(report, login_as("supervisor"))
    html = report.get("/reports/quarterly").get_data(as_text=True)
    section = html[html.index("市への要望・市長への手紙（回答日数と期限）") :]
    assert "道路課" in section


def test_a_case_handed_on_before_it_is_registered_takes_that_department(
    app, login_as, make_department, make_staff
):
    """Tried in the browser: a case already with 市民課 registered as a request showed
    「担当課：未定」 and no officer saw it among their requests."""
    from handoff import services as handoff_services
    from handoff.models import Response

    declined = make_department(name="税務課")
    roads = make_department(name="道路課")
    consultant = login_as("consultant")
    actor = Actor(consultant, "127.0.0.1")
    ticket = tickets.create_ticket(actor, channel=Channel.PHONE, subject="歩道の段差")
    first = handoff_services.create(
        actor, ticket, [handoff_services.Request(declined.id, "段差の件", Response.WRITTEN)]
    )
    handoff_services.cancel(actor, first[0], "担当課の誤り")
    handoff_services.create(
        actor, ticket, [handoff_services.Request(roads.id, "段差の件", Response.WRITTEN)]
    )
    db.session.commit()
    number = ticket.number

    client = app.test_client()
    sign_in(client, consultant)
    client.post(f"/tickets/{number}/request", data={"kind": "request"})
    db.session.expire_all()
    item = db.session.scalar(sa.select(CitizenRequest))
    assert item.department_id == roads.id
    page = client.get(f"/tickets/{number}").get_data(as_text=True)
    assert "道路課" in page[page.index('id="voice"') :]
    officer = app.test_client()
    sign_in(officer, make_staff("officer", department=roads))
    assert number in officer.get("/requests").get_data(as_text=True)


def test_a_refused_answer_comes_back_on_the_ticket_page_as_typed(app, login_as):
    """Bad input on the ticket page's answer form: the page again with 422, the message, and
    the text as typed; nothing is written."""
    from consult.models import TimelineEntry
    from consult.voice.services import MAX_ANSWER

    consultant = login_as("consultant")
    client = app.test_client()
    sign_in(client, consultant)
    ticket = tickets.create_ticket(
        Actor(consultant, "127.0.0.1"), channel=Channel.PHONE, subject="公園の遊具が壊れている"
    )
    db.session.commit()
    number, ticket_id = ticket.number, ticket.id
    assert client.post(f"/tickets/{number}/request", data={"kind": "request"}).status_code == 302
    entries_before = db.session.scalar(
        sa.select(sa.func.count()).where(TimelineEntry.ticket_id == ticket_id)
    )

    typed = "遊具の修繕を担当課に依頼しました。" + "あ" * MAX_ANSWER
    refused = client.post(f"/tickets/{number}/request/answer", data={"text": typed})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "回答は" in html and "文字以内" in html  # the message, next to the field
    assert typed in html  # nothing typed is lost
    assert number in html and "要望・手紙" in html  # it is the ticket page

    empty = client.post(f"/tickets/{number}/request/answer", data={"text": "  "})
    assert empty.status_code == 422
    assert "回答を入力してください" in empty.get_data(as_text=True)

    db.session.expire_all()
    item = db.session.scalar(sa.select(CitizenRequest))
    assert item.answered_at is None and item.answer_text is None
    assert (
        db.session.scalar(sa.select(sa.func.count()).where(TimelineEntry.ticket_id == ticket_id))
        == entries_before
    )


def test_mayor_letter_uses_the_administrators_days(app_factory, make_ticket):
    custom = app_factory(VOICE_MAYOR_LETTER_ANSWER_DAYS=5)
    with custom.app_context():
        from consult.services import staff as staff_service

        staff = staff_service.create_staff(
            None,
            login="voice-mayor",
            full_name="試験 次郎",
            display_name="しけん / Shiken",
            role="consultant",
            password="correct horse battery staple 42",
        )
        ticket = tickets.create_ticket(
            Actor(staff, None), channel=Channel.EMAIL, subject="市長への手紙"
        )
        item = voice.mark_request(Actor(staff, None), ticket, "mayor_letter")
        assert item.answer_days == 5
        assert item.due_on == calendar.add_business_days(item.received_on, 5)
        db.session.rollback()
        db.session.remove()


# --- the written answer completes its 文書回答 handoff; live events -------------------------------


def _request_handed_to(app, consultant, departments_and_responses, subject="市道の街灯が暗い"):
    """A phone case registered as a request, handed to the given (department, response)s."""
    from handoff import services as handoff_services

    actor = Actor(consultant, "127.0.0.1")
    ticket = tickets.create_ticket(actor, channel=Channel.PHONE, subject=subject)
    item = voice.mark_request(actor, ticket, "request")
    made = []
    for department, response in departments_and_responses:
        made += handoff_services.create(
            actor, ticket, [handoff_services.Request(department.id, "文書で回答を", response)]
        )
    db.session.commit()
    return ticket, item, made


def test_the_officers_written_answer_completes_that_departments_written_handoff_only(
    app, login_as, make_department, make_staff
):
    """Found in Chromium: after the officer answered on /requests/<id>, the 文書回答 handoff
    stayed 「依頼中」 and the case 「引継中」. The answer now completes the live 文書回答 handoff
    of that case to that department, as the officer's 対応記録 would; no other handoff."""
    from consult.models import Status
    from handoff.models import Handoff, HandoffState, Response

    roads = make_department(name="道路課")
    parks = make_department(name="公園課")
    consultant = login_as("consultant")
    ticket, item, (visit, written, elsewhere) = _request_handed_to(
        app,
        consultant,
        [(roads, Response.VISIT), (roads, Response.WRITTEN), (parks, Response.WRITTEN)],
    )
    assert item.department_id == roads.id and item.handoff_id == visit.id
    officer = make_staff("officer", department=roads, full_name="道路 次郎")
    client = app.test_client()
    sign_in(client, officer)
    inbox = client.get("/handoffs?tab=new").get_data(as_text=True)
    assert f"/handoffs/{written.id}" in inbox

    done = client.post(f"/requests/{item.id}", data={"text": "街灯を交換しました。"})
    assert done.status_code == 302
    db.session.expire_all()
    states = {h.id: h.state for h in db.session.scalars(sa.select(Handoff))}
    assert states[written.id] == HandoffState.DONE
    assert states[visit.id] == HandoffState.REQUESTED  # not a written one
    assert states[elsewhere.id] == HandoffState.REQUESTED  # another department's
    completed = db.session.get(Handoff, written.id)
    assert completed.accepted_by_id == officer.id and completed.done_at is not None
    assert completed.record_outcome.startswith("回答済み")
    assert "街灯を交換しました" not in completed.record_action  # the answer is not copied
    bodies = [e.body for e in db.session.get(Ticket, ticket.id).timeline]
    assert "道路課が受け付けました（道路 次郎）" in bodies
    assert any(b.startswith("道路課の対応記録\n対応内容：要望・手紙への文書回答") for b in bodies)
    assert db.session.get(Ticket, ticket.id).status == Status.HANDED_OFF  # two still open

    # The inbox moved on: the handoff is no longer new.
    inbox = client.get("/handoffs?tab=new").get_data(as_text=True)
    assert f"/handoffs/{written.id}" not in inbox


def test_the_last_written_handoff_answered_returns_the_case_to_the_centre(
    app, login_as, make_department, make_staff
):
    from consult.models import Status
    from handoff import services as handoff_services
    from handoff.models import Handoff, HandoffState, Response

    roads = make_department(name="道路課")
    consultant = login_as("consultant")
    ticket, _item, (written,) = _request_handed_to(app, consultant, [(roads, Response.WRITTEN)])
    officer = make_staff("officer", department=roads)
    handoff_services.accept(Actor(officer, "127.0.0.1"), written)  # accepted already: no step
    db.session.commit()
    voice.record_answer(Actor(officer, "127.0.0.1"), db.session.get(Ticket, ticket.id), "回答文")
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Handoff, written.id).state == HandoffState.DONE
    assert db.session.get(Ticket, ticket.id).status == Status.IN_PROGRESS
    accepted = [e for e in db.session.get(Ticket, ticket.id).timeline if "受け付けました" in e.body]
    assert len(accepted) == 1


def test_no_written_handoff_or_the_desks_answer_changes_no_handoff(
    app, login_as, make_department, make_staff
):
    """A case handed on for a visit only, and a desk's answer to a 文書回答 handoff: the answer
    is recorded, the handoffs stay as they were (the desk's answer does not say the department
    did the work; the centre cancels the handoff or the officer records it)."""
    from consult.models import Status
    from handoff.models import Handoff, HandoffState, Response

    roads = make_department(name="道路課")
    consultant = login_as("consultant")
    officer = make_staff("officer", department=roads)
    ticket, item, (visit,) = _request_handed_to(app, consultant, [(roads, Response.VISIT)])
    voice.record_answer(Actor(officer, "127.0.0.1"), db.session.get(Ticket, ticket.id), "回答文")
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Handoff, visit.id).state == HandoffState.REQUESTED
    assert db.session.get(CitizenRequest, item.id).answered_at is not None

    ticket, item, (written,) = _request_handed_to(
        app, consultant, [(roads, Response.WRITTEN)], subject="歩道の段差"
    )
    client = app.test_client()
    sign_in(client, consultant)
    answered = client.post(f"/tickets/{ticket.number}/request/answer", data={"text": "回答文"})
    assert answered.status_code == 302
    db.session.expire_all()
    assert db.session.get(Handoff, written.id).state == HandoffState.REQUESTED
    assert db.session.get(Ticket, ticket.id).status == Status.HANDED_OFF
    assert db.session.get(CitizenRequest, item.id).answered_by_id == consultant.id


def _events(after: int = 0):
    from consult.live.models import LiveEvent

    return list(
        db.session.scalars(
            sa.select(LiveEvent)
            .where(LiveEvent.kind.like("citizen_request.%"), LiveEvent.id > after)
            .order_by(LiveEvent.id)
        )
    )


def test_live_events_tell_the_desk_and_the_department_ids_and_kind_only(
    app, login_as, make_department, make_staff
):
    import json

    from handoff import services as handoff_services
    from handoff.models import Response

    roads = make_department(name="道路課")
    taxes = make_department(name="税務課")
    consultant = login_as("consultant")
    actor = Actor(consultant, "127.0.0.1")
    ticket = tickets.create_ticket(actor, channel=Channel.PHONE, subject="高松一郎 街灯が暗い")
    item = voice.mark_request(actor, ticket, "mayor_letter")
    db.session.commit()
    (marked,) = _events()
    assert marked.kind == "citizen_request.marked" and marked.audience == ["desk"]
    assert marked.payload == {
        "request_id": item.id,
        "ticket_id": ticket.id,
        "department_id": None,
        "kind": "mayor_letter",
        "action": "marked",
    }

    first = handoff_services.create(
        actor, ticket, [handoff_services.Request(taxes.id, "回答を", Response.WRITTEN)]
    )
    db.session.commit()
    (assigned,) = _events(marked.id)
    assert assigned.kind == "citizen_request.assigned"
    assert assigned.audience == [f"department:{taxes.id}", "desk"]
    handoff_services.cancel(actor, first[0], "担当課の誤り")
    db.session.commit()
    (unassigned,) = _events(assigned.id)
    # The department that lost it hears too: its officers' lists drop the row.
    assert unassigned.kind == "citizen_request.unassigned"
    assert unassigned.audience == [f"department:{taxes.id}", "desk"]
    assert unassigned.payload["department_id"] is None

    handoff_services.create(
        actor, ticket, [handoff_services.Request(roads.id, "回答を", Response.WRITTEN)]
    )
    db.session.commit()
    officer = make_staff("officer", department=roads)
    voice.record_answer(Actor(officer, "127.0.0.1"), ticket, "高松一郎様 街灯を交換しました。")
    db.session.commit()
    later = _events(unassigned.id)
    assert [e.kind for e in later] == ["citizen_request.assigned", "citizen_request.answered"]
    answered = later[-1]
    assert answered.audience == [f"department:{roads.id}", "desk"]
    assert set(answered.payload) == {"request_id", "ticket_id", "department_id", "kind", "action"}
    for event in _events():
        raw = json.dumps(event.payload, ensure_ascii=False)
        assert "高松" not in raw and "街灯" not in raw and ticket.number not in raw


def test_the_panel_alone_for_its_live_refresh(app, login_as, make_department, make_staff):
    """The ticket page's request panel refreshes from /tickets/<n>/request/panel: the panel's
    HTML only, the desk's (an officer sees requests through /requests)."""
    from handoff.models import Response

    roads = make_department(name="道路課")
    consultant = login_as("consultant")
    ticket, _item, _made = _request_handed_to(app, consultant, [(roads, Response.WRITTEN)])
    client = app.test_client()
    sign_in(client, consultant)
    html = client.get(f"/tickets/{ticket.number}/request/panel").get_data(as_text=True)
    assert html.lstrip().startswith("<section") and 'id="voice"' in html
    assert "道路課" in html and "未回答" in html and "回答を記録する" in html
    assert 'data-voice-part="facts"' in html and 'id="timeline"' not in html
    voice.record_answer(Actor(consultant, "127.0.0.1"), ticket, "街灯を交換しました。")
    db.session.commit()
    html = client.get(f"/tickets/{ticket.number}/request/panel").get_data(as_text=True)
    assert "街灯を交換しました。" in html and "回答を記録する" not in html
    officer = app.test_client()
    sign_in(officer, make_staff("officer", department=roads))
    assert officer.get(f"/tickets/{ticket.number}/request/panel").status_code == 403
