"""A consultant's day: who owns a case (担当), callbacks (折り返し), and finding any case."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
import sqlalchemy as sa

from consult import worker
from consult.extensions import db
from consult.live.models import LiveEvent
from consult.models import Channel, EntryKind, Ticket
from consult.services import callbacks, tickets
from consult.services.actor import Actor
from consult.timeutil import TOKYO, tokyo_today, utcnow
from tests.helpers import sign_in


@pytest.fixture
def consultant(login_as):
    return login_as("consultant", full_name="窓口 花子")


def _newest() -> Ticket:
    db.session.expire_all()
    return db.session.scalar(sa.select(Ticket).order_by(Ticket.id.desc()).limit(1))


def _mine(client) -> str:
    return client.get("/tickets?mine=1").get_data(as_text=True)


# --- ownership (担当) --------------------------------------------------------------------------


def test_counter_reception_makes_the_receiver_the_owner(client, consultant):
    response = client.post(
        "/counter/new", data={"room": "1", "name": "池田 和子", "first_note": "年金の相談"}
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    created = _newest()
    assert created.assignee_id == consultant.id
    assert created.number in _mine(client)
    page = client.get(f"/tickets/{created.number}").get_data(as_text=True)
    assert "窓口 花子" in page


def test_phone_log_makes_the_caller_taker_the_owner(client, consultant):
    response = client.post(
        "/phone/new",
        data={
            "name": "田中 一郎",
            "duration_minutes": "5",
            "recording_announced": "y",
            "first_note": "粗大ごみの出し方について",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    created = _newest()
    assert created.assignee_id == consultant.id
    assert created.number in _mine(client)


def test_someone_elses_case_is_not_in_my_queue(client, consultant, make_staff, make_ticket):
    colleague = make_staff("consultant")
    theirs = make_ticket(actor=Actor(colleague, "127.0.0.1"), assignee=colleague)
    assert theirs.number not in _mine(client)


def test_closing_an_unowned_case_makes_the_closer_its_owner(client, consultant, make_ticket):
    ticket = make_ticket(channel=Channel.EMAIL, subject="メールでの問い合わせ")
    assert ticket.assignee_id is None
    response = client.post(f"/tickets/{ticket.number}/close", data={"summary": "回答して完了"})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.assignee_id == consultant.id
    taken = [e for e in ticket.timeline if e.kind == EntryKind.ASSIGNMENT]
    assert [e.body for e in taken] == ["窓口 花子"]
    assert ticket.number in client.get("/tickets?mine=1&status=closed").get_data(as_text=True)


def test_closing_keeps_an_existing_owner(app, make_staff, make_ticket):
    owner, closer = make_staff("consultant"), make_staff("consultant")
    ticket = make_ticket(assignee=owner)
    tickets.close(Actor(closer, "127.0.0.1"), ticket, "完了")
    db.session.commit()
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.assignee_id == owner.id
    assert not [e for e in ticket.timeline if e.kind == EntryKind.ASSIGNMENT]


def test_owner_can_still_be_changed_explicitly(client, consultant, make_staff):
    colleague = make_staff("consultant")
    client.post("/counter/new", data={"room": "1", "anonymous": "y", "first_note": "相談"})
    created = _newest()
    response = client.post(
        f"/tickets/{created.number}/assign", data={"assignee_id": str(colleague.id)}
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    assert _newest().assignee_id == colleague.id
    assert created.number not in _mine(client)


# --- callbacks (折り返し) ----------------------------------------------------------------------


def _local(moment) -> str:
    return moment.astimezone(TOKYO).strftime("%Y-%m-%dT%H:%M")


def _end_of_today():
    return datetime.combine(tokyo_today() + timedelta(days=1), time(0), TOKYO)


def _log_call_with_callback(client, due, name="田中 一郎", note="粗大ごみの出し方について"):
    response = client.post(
        "/phone/new",
        data={
            "name": name,
            "duration_minutes": "5",
            "recording_announced": "y",
            "first_note": note,
            "callback_needed": "y",
            "callback_due_at": _local(due),
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return _newest()


def _due_today(minutes: int):
    """A time today in Tokyo, `minutes` from now; late at night, a minute before midnight less
    one per half hour asked, so that a sooner one still comes first (the form has minutes).

    In the last eight minutes of the day no such time is left: the test waits for midnight.
    """
    left = _end_of_today() - utcnow()
    if left < timedelta(minutes=8):
        import time as clock

        clock.sleep(left.total_seconds() + 1)
    latest = _end_of_today() - timedelta(minutes=5 - minutes // 30)
    return min(utcnow() + timedelta(minutes=minutes), latest)


def test_phone_callback_is_listed_in_my_queue_by_due_time_overdue_in_red(
    client, consultant, make_staff
):
    later = _log_call_with_callback(client, _due_today(90), note="後で折り返す件")
    sooner = _log_call_with_callback(client, _due_today(30), note="先に折り返す件")
    tomorrow = _log_call_with_callback(client, _end_of_today() + timedelta(hours=3))
    # One promised earlier that is now overdue (the form refuses a past time).
    overdue = callbacks.schedule(
        Actor(consultant, "127.0.0.1"),
        tickets.create_ticket(
            Actor(consultant, "127.0.0.1"), channel=Channel.PHONE, subject="期限切れの件"
        ),
        utcnow() - timedelta(minutes=20),
    )
    db.session.commit()
    page = client.get("/tickets").get_data(as_text=True)
    section = page.split('id="callbacks-due-heading"', 1)[1].split("</section>", 1)[0]
    assert "3件" in section
    order = [section.index(t) for t in ("期限切れの件", "先に折り返す件", "後で折り返す件")]
    assert order == sorted(order)
    assert tomorrow.number not in section
    overdue_row = section.split(f'data-callback-id="{overdue.id}"', 1)[0].rsplit("<tr", 1)[1]
    assert 'class="is-overdue"' in overdue_row
    assert section.count('class="overdue-label"') == 1
    assert later.number in section and sooner.number in section
    # A colleague sees none of them as theirs, but all of them under 折り返し（全員）.
    colleague = make_staff("consultant")
    other = sign_in(client.application, colleague)
    assert 'id="callbacks-due-heading"' not in other.get("/tickets").get_data(as_text=True)
    everyone = other.get("/tickets?callbacks=all").get_data(as_text=True)
    assert later.number in everyone and sooner.number in everyone


def test_ticket_page_shows_the_callback_and_marks_it_done_once(client, consultant):
    ticket = _log_call_with_callback(client, _due_today(60))
    page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert 'id="callbacks-heading"' in page and "折り返し済みにする" in page
    callback = callbacks.for_ticket(ticket)[0]
    assert callback.staff_id == consultant.id
    url = f"/tickets/{ticket.number}/callbacks/{callback.id}/done"
    assert client.post(url).status_code == 302
    again = client.post(url)
    assert "この折り返しはすでに済みになっています。" in again.get_data(as_text=True)
    db.session.expire_all()
    notes = [
        e.body for e in db.session.get(Ticket, ticket.id).timeline if e.data.get("callback_done")
    ]
    assert len(notes) == 1 and notes[0].startswith("折り返しの電話をしました")
    page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "済み" in page and "折り返し済みにする" not in page
    # Done: no longer due, so the queue's 折り返し section is gone.
    assert 'id="callbacks-due-heading"' not in client.get("/tickets").get_data(as_text=True)


def _events(kind="callback.due"):
    db.session.expire_all()
    return list(
        db.session.scalars(
            sa.select(LiveEvent).where(LiveEvent.kind == kind).order_by(LiveEvent.id)
        )
    )


def test_reminder_fires_once_before_and_once_when_overdue_in_two_worker_rounds(
    app, make_staff, make_ticket
):
    from consult.models import Citizen

    owner = make_staff("consultant")
    actor = Actor(owner, "127.0.0.1")
    citizen = Citizen(name="西村 早苗")
    db.session.add(citizen)
    soon_ticket = make_ticket(actor=actor, channel=Channel.PHONE, citizen=citizen)
    late_ticket = make_ticket(actor=actor, channel=Channel.PHONE)
    far_ticket = make_ticket(actor=actor, channel=Channel.PHONE)
    soon = callbacks.schedule(actor, soon_ticket, utcnow() + timedelta(minutes=5))
    late = callbacks.schedule(actor, late_ticket, utcnow() - timedelta(minutes=1))
    callbacks.schedule(actor, far_ticket, utcnow() + timedelta(hours=2))
    done = callbacks.schedule(actor, far_ticket, utcnow() - timedelta(minutes=3))
    db.session.commit()
    callbacks.mark_done(actor, far_ticket, done.id)
    db.session.commit()

    for _ in range(2):
        assert worker.run_once(app, {"alerts"})["callbacks.remind"] is not worker.FAILED
    events = _events()
    assert sorted((e.payload["callback_id"], e.payload["state"]) for e in events) == sorted(
        [(late.id, "overdue"), (soon.id, "soon")]
    )
    assert all(e.audience == [f"staff:{owner.id}"] for e in events)
    assert {e.payload["number"] for e in events} == {soon_ticket.number, late_ticket.number}
    assert "西村" not in repr([e.payload for e in events])

    # When the soon one falls due, the worker says so once more, and only once.
    later = utcnow() + timedelta(minutes=6)
    assert callbacks.remind(now=later) == 1
    db.session.commit()
    assert callbacks.remind(now=later) == 0
    db.session.commit()
    assert [(e.payload["callback_id"], e.payload["state"]) for e in _events()][2:] == [
        (soon.id, "overdue")
    ]


# --- search across every case ------------------------------------------------------------------


@pytest.fixture
def cases(app, consultant):
    """A few cases of several kinds, each findable one way only."""
    from channels.email.models import EmailThread
    from consult.services import citizens

    actor = Actor(consultant, "127.0.0.1")

    def citizen(**fields):
        return citizens.create_citizen(actor, citizens.CitizenInput(**fields))

    ikeda = citizen(name="池田 和子", kana="いけだ かずこ", phone="090-2681-0001")
    mori = citizen(name="森 恵子", phone="087-839-2111", email="Keiko.Mori@example.jp")
    made = {
        "ikeda": tickets.create_ticket(
            actor, channel=Channel.COUNTER, subject="年金の手続き", citizen=ikeda
        ),
        "mori": tickets.create_ticket(
            actor, channel=Channel.PHONE, subject="介護保険の申請", citizen=mori
        ),
        "note": tickets.create_ticket(
            actor, channel=Channel.PHONE, subject="電話相談", first_note="隣家の騒音で眠れない"
        ),
        "message": tickets.create_ticket(
            actor, channel=Channel.LINE, subject="LINE相談", first_message="粗大ごみの回収日は？"
        ),
        "mail": tickets.create_ticket(
            actor, channel=Channel.EMAIL, subject="メールでの問い合わせ", first_message="よろしく"
        ),
    }
    db.session.add(
        EmailThread(ticket=made["mail"], address="s.nishimura@example.com", sender_name="西村 早苗")
    )
    db.session.commit()
    return {key: ticket.number for key, ticket in made.items()}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("keiko.mori@EXAMPLE.jp", {"mori"}),  # an email address, any case
        ("2681", {"ikeda"}),  # part of a phone number
        ("０９０-２６８１", {"ikeda"}),  # typed full width, with a hyphen
        ("いけだ", {"ikeda"}),  # the start of the kana
        ("池田", {"ikeda"}),  # the start of the name
        ("介護保険", {"mori"}),  # a word of the subject
        ("騒音", {"note"}),  # a word of a note on the timeline
        ("粗大ごみ", {"message"}),  # a word of a message in
        ("西村", {"mail"}),  # an email sender nobody registered: the From name as received
        ("s.nishimura@example.com", {"mail"}),  # and the address it came from
        ("存在しない言葉", set()),
    ],
)
def test_search_finds_a_case_by_what_the_consultant_remembers(
    app, consultant, cases, query, expected
):
    found = tickets.search(Actor(consultant, "127.0.0.1"), query)
    assert {t.number for t in found} == {cases[key] for key in expected}


def test_search_finds_part_of_a_ticket_number(app, consultant, cases):
    number = cases["mori"]  # e.g. 2026-000002
    found = tickets.search(Actor(consultant, "127.0.0.1"), number[-6:])
    assert number in {t.number for t in found}


def test_search_page_shows_an_unregistered_sender_as_anonymous_and_audits_no_term(
    client, consultant, cases
):
    from consult.models import AuditEvent

    page = client.post("/tickets/search", data={"q": "西村"}).get_data(as_text=True)
    assert cases["mail"] in page and "匿名" in page
    db.session.expire_all()
    event = db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "search").order_by(AuditEvent.id.desc())
    )
    assert event.detail == "by=name+words" and "西村" not in (event.detail or "")


def test_search_results_load_their_citizens_in_a_fixed_number_of_queries(
    client, consultant, count_queries
):
    from consult.services import citizens

    actor = Actor(consultant, "127.0.0.1")

    def add(count: int, first: int) -> None:
        for n in range(first, first + count):
            person = citizens.create_citizen(
                actor, citizens.CitizenInput(name=f"山田 {n}", kana=f"やまだ {n}")
            )
            tickets.create_ticket(actor, channel=Channel.PHONE, subject=f"相談 {n}", citizen=person)
        db.session.commit()

    def queries():
        with count_queries() as counted:
            page = client.post("/tickets/search", data={"q": "山田"}).get_data(as_text=True)
        return counted, page

    add(5, 0)
    five, page = queries()
    assert page.count("山田 ") == 5
    add(45, 5)
    fifty, page = queries()
    assert page.count("山田 ") == 50
    assert fifty.count == five.count, f"5 results: {five}\n50 results: {fifty}"


# --- print view ---------------------------------------------------------------------------------


def test_print_view_has_the_record_without_forms_and_is_audited(client, consultant):
    from consult.models import AuditEvent

    client.post(
        "/counter/new",
        data={"room": "1", "name": "池田 和子", "first_note": "年金の受給手続きについて"},
    )
    ticket = _newest()
    client.post(f"/tickets/{ticket.number}/note", data={"body": "必要書類を案内した"})
    page = client.get(f"/tickets/{ticket.number}/print")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for text in (
        ticket.number,
        "池田 和子",
        "年金の受給手続きについて",
        "必要書類を案内した",
        "窓口 花子",
    ):
        assert text in html
    main = html.split('<main id="main"', 1)[1].split("</main>", 1)[0]
    assert "<form" not in main and "<button" not in main and "<textarea" not in main
    assert 'class="site-header"' not in html
    assert "no-store" in page.headers["Cache-Control"]
    db.session.expire_all()
    actions = db.session.scalars(
        sa.select(AuditEvent.action).where(AuditEvent.object_id == ticket.number)
    ).all()
    assert "print" in actions
