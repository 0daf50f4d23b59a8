"""Handoffs: the state machine, who sees what, external links, escalation and business time."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from consult.extensions import db
from consult.models import AuditEvent, Channel, EntryKind, OutboxMessage, Status, TimelineEntry
from consult.services import citizens, outbox, tickets
from consult.services.actor import Actor
from consult.services.errors import InvalidTransition, PermissionDenied, ValidationFailed
from consult.timeutil import TOKYO, tokyo_today, utcnow
from handoff import services
from handoff.models import ExternalLink, Handoff, HandoffState, Response, Urgency
from tests.consult.http import call
from tests.handoff.clock import set_clock
from tests.helpers import csrf_token_from, sign_in


@pytest.fixture
def setup(app, make_staff, make_department, make_ticket):
    """A consultant, a department with two officers and its address, another department."""
    department = make_department(name="市民課", email="shimin@city.example.jp")
    other = make_department(name="税務課", email="zeimu@city.example.jp")
    consultant = make_staff("consultant")
    officer = make_staff("officer", department=department, full_name="窓口 一郎")
    colleague = make_staff("officer", department=department)
    stranger = make_staff("officer", department=other)
    supervisor = make_staff("supervisor")
    colleague.email = "colleague@city.example.jp"
    supervisor.email = "boss@city.example.jp"
    ticket = make_ticket(subject="転入の手続きについて")
    db.session.commit()
    return {
        "department": department,
        "other": other,
        "consultant": consultant,
        "officer": officer,
        "colleague": colleague,
        "stranger": stranger,
        "supervisor": supervisor,
        "ticket": ticket,
    }


def hand(setup, response=Response.VISIT, department=None, **kw) -> Handoff:
    actor = Actor(setup["consultant"])
    [handoff] = services.create(
        actor,
        setup["ticket"],
        [
            services.Request(
                (department or setup["department"]).id,
                kw.pop("summary", "転入届の記載について市民課の確認が必要です。"),
                response,
                **kw,
            )
        ],
    )
    db.session.commit()
    return handoff


def entries(ticket) -> list[TimelineEntry]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            sa.select(TimelineEntry)
            .where(TimelineEntry.ticket_id == ticket.id, TimelineEntry.kind == EntryKind.HANDOFF)
            .order_by(TimelineEntry.id)
        )
    )


def mails() -> list[OutboxMessage]:
    return list(
        db.session.scalars(
            sa.select(OutboxMessage)
            .where(OutboxMessage.channel == "email")
            .order_by(OutboxMessage.id)
        )
    )


# --- the state machine -------------------------------------------------------------------------


def test_the_whole_way_to_the_counter_and_the_record(setup):
    handoff = hand(setup)
    officer = Actor(setup["officer"])
    assert setup["ticket"].status == Status.HANDED_OFF
    [request_mail] = mails()
    assert request_mail.recipient == "shimin@city.example.jp"
    assert setup["ticket"].number in request_mail.subject

    services.accept(officer, handoff)
    services.on_the_way(officer, handoff, 5)
    assert handoff.state == HandoffState.ON_THE_WAY and handoff.eta_minutes == 5
    services.arrive(officer, handoff)
    services.finish(
        officer,
        handoff,
        services.Record("転入届の記載を一緒に確認しました", "受理", "国保の加入", "保険年金課"),
    )
    db.session.commit()
    assert handoff.state == HandoffState.DONE
    texts = [e.body for e in entries(setup["ticket"])]
    assert len(texts) == 5
    assert "市民課へ引継ぎ" in texts[0]
    assert "受け付けました" in texts[1] and "窓口 一郎" in texts[1]
    assert "約5分" in texts[2]
    assert "到着" in texts[3]
    assert "対応内容：転入届の記載を一緒に確認しました" in texts[4]
    assert "今後の対応：国保の加入（保険年金課）" in texts[4]
    # No handoff open any more: the case is the centre's again.
    assert setup["ticket"].status == Status.IN_PROGRESS


@pytest.mark.parametrize(
    ("steps", "then", "message"),
    [
        ([], "arrive", "「依頼中」の引継ぎを「到着」にはできません。"),
        ([], "finish", "「依頼中」の引継ぎを「対応済」にはできません。"),
        (["accept"], "accept", "「受付済」の引継ぎを「受付済」にはできません。"),
        (["accept", "finish"], "decline", "「対応済」の引継ぎを「差し戻し」にはできません。"),
        (["decline"], "accept", "「差し戻し」の引継ぎを「受付済」にはできません。"),
    ],
)
def test_forbidden_transitions_change_nothing(setup, steps, then, message):
    handoff = hand(setup)
    officer = Actor(setup["officer"])
    record = services.Record("説明しました", "解決")
    do = {
        "accept": lambda: services.accept(officer, handoff),
        "arrive": lambda: services.arrive(officer, handoff),
        "finish": lambda: services.finish(officer, handoff, record),
        "decline": lambda: services.decline(officer, handoff, "担当外です"),
    }
    for step in steps:
        do[step]()
    db.session.commit()
    state, count = handoff.state, len(entries(setup["ticket"]))
    with pytest.raises(InvalidTransition) as raised:
        do[then]()
    db.session.rollback()
    assert raised.value.message == message
    db.session.expire_all()
    assert handoff.state == state and len(entries(setup["ticket"])) == count


def test_a_record_and_a_reason_are_required(setup):
    handoff = hand(setup)
    officer = Actor(setup["officer"])
    services.accept(officer, handoff)
    db.session.commit()
    with pytest.raises(ValidationFailed, match="対応内容を入力してください。"):
        services.finish(officer, handoff, services.Record("  ", "解決"))
    db.session.rollback()
    with pytest.raises(ValidationFailed, match="誰が対応するか"):
        services.finish(officer, handoff, services.Record("説明", "解決", "再来庁", ""))
    db.session.rollback()
    with pytest.raises(ValidationFailed, match="差し戻しの理由を入力してください。"):
        services.decline(officer, handoff, "")
    db.session.rollback()
    db.session.expire_all()
    assert handoff.state == HandoffState.ACCEPTED


def test_a_decline_returns_the_case_and_counts_as_a_bounce(setup):
    handoff = hand(setup)
    services.decline(Actor(setup["officer"]), handoff, "所管は福祉課です")
    db.session.commit()
    assert setup["ticket"].status == Status.IN_PROGRESS
    assert "理由：所管は福祉課です" in entries(setup["ticket"])[-1].body
    start = utcnow() - timedelta(days=1)
    [figures] = services.overview(Actor(setup["supervisor"]), start, utcnow() + timedelta(1))
    assert (figures.department, figures.handoffs, figures.bounces) == ("市民課", 1, 1)


def test_the_overview_answers_bad_dates_with_a_japanese_message(app, setup):
    hand(setup)
    supervisor = sign_in(app, setup["supervisor"])
    today = tokyo_today()
    page = call(app, supervisor, "GET", "/handoffs/overview")
    assert page.status_code == 200
    assert f"{today - timedelta(days=29):%Y/%m/%d}〜{today:%Y/%m/%d}" in page.get_data(as_text=True)
    assert "市民課" in page.get_data(as_text=True)

    for query, message in (
        ("start=2026-13-01&end=2026-12-31", "YYYY-MM-DD の形で入力してください"),
        ("start=2026-11-01", "YYYY-MM-DD の形で入力してください"),
        ("start=2026-11-10&end=2026-11-01", "終了日は開始日と同じか、それより後にしてください"),
        ("start=2010-01-01&end=2026-01-01", "期間は5年以内で指定してください"),
    ):
        page = call(app, supervisor, "GET", f"/handoffs/overview?{query}")
        text = page.get_data(as_text=True)
        assert page.status_code == 422, query
        assert message in text and "直近30日を表示しています" in text, query
        assert f"{today - timedelta(days=29):%Y/%m/%d}〜{today:%Y/%m/%d}" in text

    page = call(app, supervisor, "GET", "/handoffs/overview?start=2025-01-01&end=2025-01-31")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "2025/01/01〜2025/01/31" in text
    assert "この期間の引継ぎはありません。" in text


def test_two_departments_at_once_all_or_nothing(setup):
    actor = Actor(setup["consultant"])
    ticket = setup["ticket"]
    with pytest.raises(ValidationFailed):
        services.create(
            actor,
            ticket,
            [
                services.Request(setup["department"].id, "伝達事項", Response.VISIT),
                services.Request(setup["other"].id, "", Response.WRITTEN),
            ],
        )
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count(Handoff.id))) == 0
    created = services.create(
        actor,
        ticket,
        [
            services.Request(setup["department"].id, "伝達事項", Response.VISIT),
            services.Request(setup["other"].id, "納税の相談", Response.WRITTEN),
        ],
    )
    db.session.commit()
    assert [h.department.name for h in created] == ["市民課", "税務課"]


# --- access ------------------------------------------------------------------------------------


def test_an_officer_acts_only_for_their_own_department(setup):
    handoff = hand(setup)
    with pytest.raises(PermissionDenied):
        services.accept(Actor(setup["stranger"]), handoff)
    with pytest.raises(PermissionDenied):
        services.accept(Actor(setup["consultant"]), handoff)
    db.session.rollback()
    rows, _ = services.inbox(Actor(setup["stranger"]), "new")
    assert rows == []
    rows, _ = services.inbox(Actor(setup["officer"]), "new")
    assert [h.id for h in rows] == [handoff.id]


def test_over_http_another_department_sees_nothing(app, setup):
    handoff = hand(setup)
    number = setup["ticket"].number
    stranger = sign_in(app, setup["stranger"])
    assert call(app, stranger, "GET", f"/handoffs/{handoff.id}").status_code == 404
    assert call(app, stranger, "POST", f"/handoffs/{handoff.id}/accept").status_code == 404
    assert call(app, stranger, "GET", f"/tickets/{number}").status_code == 403
    inbox = call(app, stranger, "GET", "/handoffs?tab=new").get_data(as_text=True)
    assert number not in inbox and "転入届" not in inbox
    assert call(app, stranger, "POST", "/tickets/search", data={"q": number}).status_code == 403

    officer = sign_in(app, setup["officer"])
    page = call(app, officer, "GET", "/handoffs?tab=new").get_data(as_text=True)
    assert number in page
    detail = call(app, officer, "GET", f"/handoffs/{handoff.id}").get_data(as_text=True)
    assert "転入届の記載について市民課の確認が必要です。" in detail
    # The officer is not given the ticket itself, only what the handoff shares.
    assert call(app, officer, "GET", f"/tickets/{number}").status_code == 403
    assert "住民票の写し" not in detail


def test_the_citizens_contact_only_when_the_response_needs_it_and_audited(app, setup):
    citizen = citizens.create_citizen(
        Actor(setup["consultant"]),
        citizens.CitizenInput(name="高松 花子", phone="090-1234-5678"),
    )
    setup["ticket"].citizen = citizen
    db.session.commit()
    visit = hand(setup, Response.VISIT)
    callback = hand(setup, Response.CALLBACK, department=setup["other"])
    officer = sign_in(app, setup["officer"])
    page = call(app, officer, "GET", f"/handoffs/{visit.id}").get_data(as_text=True)
    assert "高松 花子" not in page and "1234" not in page
    other_officer = sign_in(app, setup["stranger"])
    page = call(app, other_officer, "GET", f"/handoffs/{callback.id}").get_data(as_text=True)
    assert "高松 花子" in page and "090-1234-5678" in page, page[page.find("<main") :][:3000]
    db.session.expire_all()
    audited = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "view_contact")
    ).all()
    assert [(a.staff_id, a.object_id) for a in audited] == [
        (setup["stranger"].id, str(callback.id))
    ]


# --- the officer's pages -----------------------------------------------------------------------


def test_officer_steps_over_http_with_japanese_errors(app, setup):
    handoff = hand(setup)
    officer = sign_in(app, setup["officer"])
    assert call(app, officer, "POST", f"/handoffs/{handoff.id}/accept").status_code == 302
    bad = call(app, officer, "POST", f"/handoffs/{handoff.id}/on-the-way", data={"eta_minutes": 0})
    assert bad.status_code == 422
    assert "到着までの時間は1〜240分で入力してください。" in bad.get_data(as_text=True)
    ok = call(app, officer, "POST", f"/handoffs/{handoff.id}/on-the-way", data={"eta_minutes": 7})
    assert ok.status_code == 302
    missing = call(app, officer, "POST", f"/handoffs/{handoff.id}/finish", data={"action": "説明"})
    assert missing.status_code == 422
    assert "結果を入力してください。" in missing.get_data(as_text=True)
    db.session.expire_all()
    assert handoff.state == HandoffState.ON_THE_WAY

    desk = sign_in(app, setup["consultant"])
    live = call(app, desk, "GET", f"/tickets/{setup['ticket'].number}/handoffs.json").get_json()
    assert "向かっています" in live["html"] and "約7分" in live["html"]
    since = call(app, desk, "GET", f"/tickets/{setup['ticket'].number}/handoffs.json?since=")
    assert since.status_code == 200
    unchanged = call(
        app,
        desk,
        "GET",
        f"/tickets/{setup['ticket'].number}/handoffs.json",
        query_string={"since": live["version"]},
    )
    assert unchanged.status_code == 204 and unchanged.data == b""
    call(app, officer, "POST", f"/handoffs/{handoff.id}/arrive")
    changed = call(
        app,
        desk,
        "GET",
        f"/tickets/{setup['ticket'].number}/handoffs.json",
        query_string={"since": live["version"]},
    )
    assert changed.status_code == 200 and "到着" in changed.get_json()["html"]
    queue = call(app, desk, "GET", f"/handoffs/live.json?tickets={setup['ticket'].id}").get_json()
    [badge] = queue[str(setup["ticket"].id)]
    assert badge["label"] == "到着"


def test_handoff_form_on_the_ticket_page(app, setup, app_factory):
    number, login = setup["ticket"].number, setup["consultant"].login
    department_ids = [str(setup["department"].id), str(setup["other"].id)]
    db.session.commit()  # SQLite: the test's own transaction would hold the write lock
    app = app_factory(WTF_CSRF_ENABLED=True)
    desk = sign_in(app, login, csrf=True)
    page = desk.get(f"/tickets/{number}").get_data(as_text=True)
    assert "担当課に引き継ぐ" in page and "市民課" in page
    token = csrf_token_from(page)
    empty = desk.post(
        f"/tickets/{number}/handoffs",
        data={
            "handoff-csrf_token": token,
            "handoff-summary": "",
            "handoff-response": "visit",
            "handoff-urgency": "normal",
        },
    )
    assert empty.status_code == 422
    text = empty.get_data(as_text=True)
    assert "引継ぎ先を1つ以上選んでください。" in text
    assert "担当課への伝達事項を入力してください。" in text
    assert db.session.scalar(sa.select(sa.func.count(Handoff.id))) == 0
    db.session.commit()
    made = desk.post(
        f"/tickets/{number}/handoffs",
        data={
            "handoff-csrf_token": token,
            "handoff-departments": department_ids,
            "handoff-summary": "転入と住民税の確認",
            "handoff-response": "callback",
            "handoff-urgency": "urgent",
        },
    )
    assert made.status_code == 302
    assert db.session.scalar(sa.select(sa.func.count(Handoff.id))) == 2


# --- external bodies ---------------------------------------------------------------------------


@pytest.fixture
def external(setup, make_department):
    body = make_department(
        name="香川県消費生活センター", is_external=True, email="c@pref.example.jp"
    )
    return body


def test_an_external_body_answers_through_its_link(app, setup, external):
    handoff = hand(setup, Response.WRITTEN, department=external)
    [message] = mails()
    assert message.recipient == "c@pref.example.jp"
    link = next(line for line in message.body.splitlines() if "/x/handoff/" in line)
    path = link[link.index("/x/handoff/") :]
    browser = app.test_client()
    page = browser.get(path)
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "転入届の記載について" in text
    # 文書回答 needs contact: the 相談番号 is shared (the phone too, when the case has one).
    assert f"<dt>相談番号</dt><dd>{setup['ticket'].number}</dd>" in text
    done = browser.post(
        path,
        data={
            "record-author_name": "消費 太郎",
            "record-action": "事業者に連絡しました",
            "record-outcome": "返金の約束",
        },
    )
    assert done.status_code == 200 and "送信しました" in done.get_data(as_text=True)
    db.session.expire_all()
    assert handoff.state == HandoffState.DONE
    assert "事業者に連絡しました" in entries(setup["ticket"])[-1].body
    uses = db.session.scalar(
        sa.select(sa.func.count(AuditEvent.id)).where(AuditEvent.action == "external_link_use")
    )
    assert uses == 2


def _link_path(message) -> str:
    line = next(line for line in message.body.splitlines() if "/x/handoff/" in line)
    return line[line.index("/x/handoff/") :]


def test_expired_revoked_and_tampered_links_show_nothing(app, setup, external):
    handoff = hand(setup, Response.WRITTEN, department=external)
    path = _link_path(mails()[0])
    browser = app.test_client()

    tampered = browser.get(path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB"))
    assert tampered.status_code == 404
    assert "このリンクは正しくありません。" in tampered.get_data(as_text=True)
    assert "転入届" not in tampered.get_data(as_text=True)

    link = db.session.scalar(sa.select(ExternalLink))
    link.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    expired = browser.get(path)
    assert expired.status_code == 410 and "有効期限が切れています" in expired.get_data(as_text=True)
    assert "転入届" not in expired.get_data(as_text=True)

    link.expires_at = utcnow() + timedelta(days=1)
    db.session.commit()
    assert browser.get(path).status_code == 200
    services.revoke_links(Actor(setup["consultant"]), handoff)
    db.session.commit()
    revoked = browser.get(path)
    assert revoked.status_code == 410 and "無効になっています" in revoked.get_data(as_text=True)
    posted = browser.post(path, data={"record-author_name": "x", "record-action": "y"})
    assert posted.status_code == 410
    db.session.expire_all()
    assert handoff.state == HandoffState.REQUESTED


# --- escalation and business time --------------------------------------------------------------


def tokyo(*args) -> datetime:
    return datetime(*args, tzinfo=TOKYO)


@pytest.mark.parametrize(
    ("made_at", "due_day"),
    [
        (tokyo(2026, 12, 26, 11, 0), (2026, 12, 28)),  # Saturday → Monday
        (tokyo(2026, 12, 29, 10, 0), (2027, 1, 4)),  # year-end → first working day
    ],
)
def test_due_dates_count_department_business_time(setup, monkeypatch, made_at, due_day):
    set_clock(monkeypatch, lambda: made_at)
    handoff = hand(setup, Response.JOINT)  # one business day
    due = handoff.due_at.astimezone(TOKYO)
    assert (due.year, due.month, due.day) == due_day
    accept_by = handoff.accept_by.astimezone(TOKYO)
    assert (accept_by.year, accept_by.month, accept_by.day) == due_day


def test_a_sunday_handoff_tells_the_citizen_the_working_day(setup, monkeypatch):
    set_clock(monkeypatch, lambda: tokyo(2026, 11, 22, 14, 0))
    handoff = hand(setup, Response.CALLBACK)
    # Monday 11-23 is 勤労感謝の日: two business hours from Tuesday 8:30.
    assert services.citizen_expectation(handoff) == (
        "11月24日(火) 10:30 頃までに担当課からご連絡します"
    )


def test_unaccepted_handoffs_escalate_once_to_supervisor_and_other_officers(setup, monkeypatch):
    made = tokyo(2026, 11, 24, 10, 0)  # a Tuesday
    set_clock(monkeypatch, lambda: made)
    handoff = hand(setup, Response.VISIT, urgency=Urgency.NORMAL)
    assert handoff.accept_by.astimezone(TOKYO) == tokyo(2026, 11, 24, 10, 10)
    before = len(mails())

    assert services.escalate_due(now=tokyo(2026, 11, 24, 10, 9)) == 0
    assert services.escalate_due(now=tokyo(2026, 11, 24, 10, 11)) == 1
    assert services.escalate_due(now=tokyo(2026, 11, 24, 10, 12)) == 0  # only once
    alerts = mails()[before:]
    assert sorted(m.recipient for m in alerts) == [
        "boss@city.example.jp",
        "colleague@city.example.jp",
        "shimin@city.example.jp",
    ]
    assert all("未受付" in m.subject for m in alerts)
    assert "受付期限までに受け付けていません" in entries(setup["ticket"])[-1].body

    # Accepted in time: never escalated.
    handoff2 = hand(setup, Response.VISIT)
    services.accept(Actor(setup["officer"]), handoff2)
    db.session.commit()
    assert services.escalate_due(now=tokyo(2026, 11, 25, 10, 0)) == 0


def test_escalation_runs_in_the_worker(app, setup):
    hand(setup, Response.VISIT)
    db.session.execute(sa.update(Handoff).values(accept_by=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert db.session.scalar(sa.select(Handoff.escalated_at)) is not None


def test_information_added_by_the_centre_reaches_the_officer(setup):
    handoff = hand(setup)
    setup["officer"].email = "ichiro@city.example.jp"
    services.accept(Actor(setup["officer"]), handoff)
    services.add_information(Actor(setup["consultant"]), handoff, "本人確認書類を持参済みです")
    db.session.commit()
    last = mails()[-1]
    assert last.recipient == "ichiro@city.example.jp"
    assert "本人確認書類を持参済みです" in last.body


def test_notifications_are_delivered_over_smtp(app_factory, smtp_server, make_staff):
    app = app_factory(**smtp_server.settings)
    with app.app_context():
        from consult.services import staff as staff_service
        from consult.services.actor import SYSTEM

        department = staff_service.create_department(
            None, code="kosodate", name="子育て支援課", email="kosodate@city.example.jp"
        )
        consultant = make_staff("consultant")
        ticket = tickets.create_ticket(
            Actor(consultant), channel=Channel.COUNTER, subject="児童手当について"
        )
        services.create(
            SYSTEM, ticket, [services.Request(department.id, "児童手当の額の確認", Response.VISIT)]
        )
        db.session.commit()
        outbox.run_once()
    [(recipients, message)] = smtp_server.messages
    assert recipients == ["kosodate@city.example.jp"]
    assert message["Subject"].startswith("【引継ぎ依頼】来庁して対応")
    assert "/handoffs/" in message.get_body(("plain",)).get_content()


def test_a_closed_day_handoff_is_offered_to_the_duty_department_first(app, setup, monkeypatch):
    from consult.models import DutyAssignment

    saturday = tokyo(2026, 12, 26, 11, 0)
    db.session.add(DutyAssignment(day=saturday.date(), department=setup["other"]))
    db.session.commit()
    set_clock(monkeypatch, lambda: saturday)
    assert services.duty_department_today().name == "税務課"
    desk = sign_in(app, setup["consultant"])
    page = call(app, desk, "GET", f"/tickets/{setup['ticket'].number}").get_data(as_text=True)
    assert "閉庁日当番の<strong>税務課</strong>" in page
    # The duty department heads the list and is already chosen.
    options = page[page.index('name="handoff-departments"') :]
    first = options[options.index("<option") : options.index("</option>")]
    assert "selected" in first and "【本日の当番】税務課" in first
    handoff = hand(setup, Response.CALLBACK, department=setup["other"])
    assert handoff.offered_as_duty
    # On a working day there is no duty department.
    set_clock(monkeypatch, lambda: tokyo(2026, 12, 28, 11, 0))
    assert services.duty_department_today() is None


def test_a_department_record_becomes_an_faq_draft(app, setup):
    from faq.models import FaqEntry

    handoff = hand(setup, Response.CALLBACK)
    officer = Actor(setup["officer"])
    services.accept(officer, handoff)
    services.finish(
        officer,
        handoff,
        services.Record(
            "転入届は異動日から14日以内に提出できることを090-1111-2222へ電話で説明",
            "相談者が来週提出する",
        ),
    )
    tickets.close(Actor(setup["consultant"]), setup["ticket"], "転入の手続きを案内した")
    db.session.commit()
    desk = sign_in(app, setup["consultant"])
    page = call(app, desk, "GET", f"/tickets/{setup['ticket'].number}").get_data(as_text=True)
    assert f"{setup['department'].name}の対応記録からFAQにする" in page
    made = call(
        app,
        desk,
        "POST",
        f"/staff/faq/from-ticket/{setup['ticket'].number}",
        data={"record": f"handoff:{handoff.id}"},
    )
    assert made.status_code == 302 and "/staff/faq/" in made.headers["Location"]
    entry = db.session.scalar(sa.select(FaqEntry))
    assert "【市民課の対応】" in entry.answer and "14日以内" in entry.answer
    assert "090-1111-2222" not in entry.answer and "［電話番号］" in entry.answer
    assert entry.department_id == setup["department"].id
