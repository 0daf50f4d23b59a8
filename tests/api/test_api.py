"""The REST API over the kernel's services: tokens, scopes, problem details, paging, audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from api.models import ApiIntegration
from consult.extensions import db
from consult.models import AuditEvent, Status, Ticket
from consult.services.actor import SYSTEM
from consult.settings import override
from consult.timeutil import utcnow
from tests.helpers import serve_in_thread

PROBLEM = "application/problem+json"


def problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == status and body["code"] == code
    assert body["type"].endswith("/" + code)
    assert any("\u3040" <= ch <= "\u9fff" for ch in body["detail"]), body  # Japanese
    return body


def test_openapi_document_and_docs_page(client):
    spec = client.get("/api/v1/openapi.json")
    assert spec.status_code == 200
    document = spec.get_json()
    assert document["openapi"] == "3.1.0"
    assert "/api/v1/tickets" in document["paths"]
    listing = document["paths"]["/api/v1/tickets"]["get"]
    assert listing["security"] == [{"bearerAuth": ["tickets:read"]}]
    assert {p["name"] for p in listing["parameters"]} >= {"status", "cursor", "limit"}
    assert "security" not in document["paths"]["/api/v1/faq"]["get"]
    error = document["components"]["responses"]["DEFAULT_ERROR"]["content"]
    assert PROBLEM in error
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "GET /api/v1/tickets" in html and "Authorization: Bearer" in html
    assert "cdn" not in html.lower() and "<script" not in html


def test_two_first_reads_at_once_both_get_the_whole_document(app):
    """The document is written at its first read; a second request arriving meanwhile waits for
    it rather than serving it half written."""
    import threading

    api = app.extensions["madoguchi_api"]
    inside, release = threading.Event(), threading.Event()

    def slow_last_step():
        inside.set()
        assert release.wait(timeout=30)
        api.spec.tag({"name": "zz-last", "description": "the last step written"})

    api.document(slow_last_step)
    documents = {}

    def read(name):
        with app.app_context():
            documents[name] = app.test_client().get("/api/v1/openapi.json").get_json()

    first = threading.Thread(target=read, args=("first",))
    first.start()
    assert inside.wait(timeout=30)
    second = threading.Thread(target=read, args=("second",))
    second.start()
    second.join(timeout=1)
    assert second.is_alive()  # waiting for the first to finish writing
    release.set()
    first.join(timeout=30)
    second.join(timeout=30)
    for document in documents.values():
        assert "/api/v1/tickets" in document["paths"]
        assert {"name": "zz-last", "description": "the last step written"} in document["tags"]
    assert documents["first"] == documents["second"]


def test_create_read_and_change_a_ticket(client, make_token, make_staff):
    headers = make_token()
    created = client.post(
        "/api/v1/tickets",
        json={
            "subject": "オンラインフォームからの相談",
            "message": "児童手当の申請について",
            "citizen": {"name": "山田 太郎", "phone": "087-839-2111", "email": "t@example.jp"},
        },
        headers=headers,
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    ticket = created.get_json()
    assert ticket["status"] == "received" and ticket["channel"] == "api"
    assert ticket["citizen"]["phones"] == ["0878392111"]
    number = ticket["number"]
    row = db.session.scalar(sa.select(Ticket).where(Ticket.number == number))
    assert row.timeline[0].body == "児童手当の申請について"

    read = client.get(f"/api/v1/tickets/{number}", headers=headers).get_json()
    assert read["citizen"]["name"] == "山田 太郎"

    moved = client.post(
        f"/api/v1/tickets/{number}/status", json={"status": "in_progress"}, headers=headers
    )
    assert moved.get_json()["status"] == "in_progress"
    # The same rule as the desk: closing needs the resolution (対応結果).
    body = problem(
        client.post(f"/api/v1/tickets/{number}/status", json={"status": "closed"}, headers=headers),
        422,
        "validation_failed",
    )
    assert "対応結果" in body["detail"]
    closed = client.post(
        f"/api/v1/tickets/{number}/status",
        json={"status": "closed", "reason": "案内して完了"},
        headers=headers,
    )
    assert closed.get_json()["status"] == "closed"
    problem(
        client.post(f"/api/v1/tickets/{number}/notes", json={"body": "追記"}, headers=headers),
        409,
        "ticket_closed",
    )

    consultant = make_staff("consultant")
    other = client.post("/api/v1/tickets", json={"subject": "二件目"}, headers=headers).get_json()
    assigned = client.post(
        f"/api/v1/tickets/{other['number']}/assignee",
        json={"assignee_id": consultant.id},
        headers=headers,
    )
    assert assigned.get_json()["assignee_id"] == consultant.id
    officer = make_staff("officer")
    body = problem(
        client.post(
            f"/api/v1/tickets/{other['number']}/assignee",
            json={"assignee_id": officer.id},
            headers=headers,
        ),
        422,
        "validation_failed",
    )
    assert "担当者" in body["detail"]
    note = client.post(
        f"/api/v1/tickets/{other['number']}/notes", json={"body": "電話で確認"}, headers=headers
    )
    assert note.status_code == 201
    timeline = client.get(f"/api/v1/tickets/{other['number']}/timeline", headers=headers)
    entries = timeline.get_json()["items"]
    assert {"kind": "note", "body": "電話で確認"}.items() <= entries[-2].items()
    assert entries[-1]["kind"] == "status_change"  # a note moves 受付 to 対応中, as on the desk


def test_validation_errors_list_the_fields_in_japanese(client, make_token):
    headers = make_token()
    body = problem(
        client.post(
            "/api/v1/tickets",
            json={"subject": "", "priority": "maybe", "extra": 1},
            headers=headers,
        ),
        422,
        "validation_failed",
    )
    fields = {e["field"]: e["message"] for e in body["errors"]}
    assert set(fields) == {"subject", "priority", "extra"}
    assert fields["extra"] == "この項目は受け付けていません。"
    assert "文字" in fields["subject"]
    body = problem(client.get("/api/v1/tickets?limit=0", headers=headers), 422, "validation_failed")
    assert body["errors"][0]["field"] == "limit" and body["errors"][0]["in"] == "query"
    body = problem(
        client.get("/api/v1/tickets?cursor=nonsense", headers=headers), 422, "validation_failed"
    )
    assert body["errors"][0]["field"] == "cursor"
    problem(
        client.post("/api/v1/tickets", data="not json", headers=headers), 422, "validation_failed"
    )
    # NUL and other control characters are taken out, never a 500 on PostgreSQL.
    created = client.post("/api/v1/tickets", json={"subject": "件名\x00です\x07"}, headers=headers)
    assert created.get_json()["subject"] == "件名です"
    problem(client.get("/api/v1/tickets/2026-999999", headers=headers), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "body", "needed"),
    [
        ("get", "/api/v1/tickets", None, "tickets:read"),
        ("post", "/api/v1/tickets", {"subject": "x"}, "tickets:write"),
        ("get", "/api/v1/citizens?name=やまだ", None, "personal"),
        ("get", "/api/v1/reports/figures?fiscal_year=2026", None, "reports"),
    ],
)
def test_a_missing_scope_is_refused_with_403(client, make_token, method, path, body, needed):
    others = [s for s in ("tickets:read", "tickets:write", "personal", "reports") if s != needed]
    headers = make_token(others)
    response = getattr(client, method)(path, json=body, headers=headers)
    assert needed in problem(response, 403, "scope_missing")["detail"]
    assert getattr(client, method)(path, json=body, headers=make_token([needed])).status_code in (
        200,
        201,
    )


def test_timeline_and_citizens_need_the_personal_scope(client, make_token, make_ticket):
    ticket = make_ticket()
    headers = make_token(["tickets:read"])
    problem(
        client.get(f"/api/v1/tickets/{ticket.number}/timeline", headers=headers),
        403,
        "scope_missing",
    )
    read = client.get(f"/api/v1/tickets/{ticket.number}", headers=headers).get_json()
    assert "citizen" not in read


def test_tokens_missing_wrong_expired_revoked_or_from_elsewhere(app, client, make_token):
    problem(client.get("/api/v1/tickets"), 401, "token_missing")
    assert client.get("/api/v1/tickets").headers["WWW-Authenticate"].startswith("Bearer")
    problem(
        client.get("/api/v1/tickets", headers={"Authorization": "Bearer mdg_x_y"}),
        401,
        "token_invalid",
    )
    good = make_token()
    token = good["Authorization"].split()[1]
    tampered = {"Authorization": "Bearer " + token[:-2] + ("AA" if token[-2:] != "AA" else "BB")}
    problem(client.get("/api/v1/tickets", headers=tampered), 401, "token_invalid")

    expiring = make_token(expires_at=utcnow() + timedelta(hours=1))
    assert client.get("/api/v1/tickets", headers=expiring).status_code == 200
    integration = db.session.scalars(
        sa.select(ApiIntegration).order_by(ApiIntegration.id.desc())
    ).first()
    integration.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    problem(client.get("/api/v1/tickets", headers=expiring), 401, "token_expired")

    from api import services

    assert client.get("/api/v1/tickets", headers=good).status_code == 200
    first = db.session.scalars(sa.select(ApiIntegration).order_by(ApiIntegration.id)).first()
    services.revoke_integration(SYSTEM, first.id)
    db.session.commit()
    problem(client.get("/api/v1/tickets", headers=good), 401, "token_revoked")

    fenced = make_token(allowed_addresses="192.0.2.0/24\n2001:db8::1")
    problem(client.get("/api/v1/tickets", headers=fenced), 403, "address_not_allowed")
    inside = client.get(
        "/api/v1/tickets", headers=fenced, environ_base={"REMOTE_ADDR": "192.0.2.77"}
    )
    assert inside.status_code == 200
    # Only the digest is kept.
    assert token.split("_", 2)[2] not in str(
        db.session.execute(sa.select(ApiIntegration.__table__)).all()
    )


def test_faq_needs_no_token(client):
    from faq import services as faq_services

    entry = faq_services.create_entry(
        SYSTEM, question="住民票の写しの取り方", answer="市民課で。", visibility="public"
    )
    faq_services.submit(SYSTEM, entry)
    faq_services.approve(SYSTEM, entry)
    hidden = faq_services.create_entry(
        SYSTEM, question="下書き", answer="内部", visibility="public"
    )
    db.session.commit()
    listing = client.get("/api/v1/faq").get_json()["items"]
    assert [item["id"] for item in listing] == [entry.id]
    assert client.get(f"/api/v1/faq/{entry.id}").get_json()["question"] == "住民票の写しの取り方"
    problem(client.get(f"/api/v1/faq/{hidden.id}"), 404, "not_found")


def test_faq_scope_reads_published_staff_entries_never_drafts(client, make_token):
    """The `faq` scope lets a city's own tool show the centre's approved 職員のみ entries; a
    draft (its redaction not yet checked) stays unseen, and the public list stays public."""
    from faq import services as faq_services

    def published(question, visibility):
        entry = faq_services.create_entry(
            SYSTEM, question=question, answer="市民課で。", visibility=visibility
        )
        faq_services.submit(SYSTEM, entry)
        faq_services.approve(SYSTEM, entry)
        return entry

    public = published("住民票の写しの取り方", "public")
    staff = published("住民票の写しの職員向け手順", "staff")
    draft = faq_services.create_entry(
        SYSTEM, question="下書きの手順", answer="未確認", visibility="staff"
    )
    db.session.commit()
    headers = make_token(["faq"])

    listing = client.get("/api/v1/faq/staff", headers=headers)
    assert listing.status_code == 200, listing.get_data(as_text=True)
    items = {item["id"]: item["visibility"] for item in listing.get_json()["items"]}
    assert items == {public.id: "public", staff.id: "staff"}
    one = client.get(f"/api/v1/faq/staff/{staff.id}", headers=headers).get_json()
    assert one["question"] == "住民票の写しの職員向け手順" and one["visibility"] == "staff"
    problem(client.get(f"/api/v1/faq/staff/{draft.id}", headers=headers), 404, "not_found")
    # Without the scope: refused, and the public FAQ never shows the staff entry.
    problem(client.get("/api/v1/faq/staff"), 401, "token_missing")
    refused = problem(
        client.get("/api/v1/faq/staff", headers=make_token(["tickets:read"])), 403, "scope_missing"
    )
    assert "faq" in refused["detail"]
    assert [item["id"] for item in client.get("/api/v1/faq").get_json()["items"]] == [public.id]
    problem(client.get(f"/api/v1/faq/{staff.id}", headers=headers), 404, "not_found")
    document = client.get("/api/v1/openapi.json").get_json()
    staff_list = document["paths"]["/api/v1/faq/staff"]["get"]
    assert staff_list["security"] == [{"bearerAuth": ["faq"]}]
    assert "職員のみ" in staff_list["description"]


def test_keyset_paging_is_stable_while_tickets_are_created(client, make_token, make_ticket):
    headers = make_token()
    made = [make_ticket(subject=f"相談{i}").number for i in range(7)]
    seen = []
    cursor = None
    rounds = 0
    while True:
        query = "/api/v1/tickets?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(query, headers=headers).get_json()
        seen += [item["number"] for item in page["items"]]
        # Meanwhile, new cases arrive: they are newer than every cursor, so never in later pages.
        client.post("/api/v1/tickets", json={"subject": f"新着{rounds}"}, headers=headers)
        rounds += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(made))
    assert len(seen) == len(set(seen))


def test_list_filters(client, make_token, make_ticket):
    headers = make_token()
    a = make_ticket(subject="窓口")
    make_ticket(subject="電話", channel="phone")
    from consult.services import tickets

    tickets.change_status(SYSTEM, a, Status.IN_PROGRESS)
    db.session.commit()
    by_status = client.get("/api/v1/tickets?status=in_progress", headers=headers).get_json()
    assert [t["number"] for t in by_status["items"]] == [a.number]
    by_channel = client.get("/api/v1/tickets?channel=phone", headers=headers).get_json()
    assert [t["subject"] for t in by_channel["items"]] == ["電話"]


def test_reads_of_personal_data_are_audited_under_the_integration(client, make_token, make_ticket):
    ticket = make_ticket()
    headers = make_token(name="消費生活センター連携")
    client.get(f"/api/v1/tickets/{ticket.number}", headers=headers)
    client.get(f"/api/v1/tickets/{ticket.number}/timeline", headers=headers)
    client.get("/api/v1/citizens?name=やまだ", headers=headers)
    rows = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.integration == "消費生活センター連携")
    ).all()
    assert [(r.action, r.object_type, r.object_id) for r in rows] == [
        ("view", "ticket", ticket.number),
        ("view", "ticket", ticket.number),
        ("search", "citizen", None),
    ]
    assert all(r.staff_id is None and r.address == "127.0.0.1" for r in rows)
    # A token without the personal scope reads no citizen and leaves no view row.
    plain = make_token(["tickets:read"], name="BI")
    client.get(f"/api/v1/tickets/{ticket.number}", headers=plain)
    assert not db.session.scalars(sa.select(AuditEvent).where(AuditEvent.integration == "BI")).all()


def test_audit_page_names_the_integration(client, make_token, make_ticket, login_as):
    ticket = make_ticket()
    client.get(f"/api/v1/tickets/{ticket.number}", headers=make_token(name="国保システム"))
    login_as("admin")
    assert "国保システム（API連携）" in client.get("/admin/audit").get_data(as_text=True)


def _limited(app, client, make_token):
    override(app, API_RATE_LIMIT="3 per minute")
    headers = make_token()
    answers = [client.get("/api/v1/faq", headers=headers).status_code]  # no token check
    answers += [client.get("/api/v1/tickets", headers=headers).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 200, 429]
    refused = client.get("/api/v1/tickets", headers=headers)
    problem(refused, 429, "rate_limited")
    assert int(refused.headers["Retry-After"]) > 0
    # Per token: another integration has its own allowance.
    assert client.get("/api/v1/tickets", headers=make_token()).status_code == 200


def test_rate_limit_per_token_in_the_database(app, client, make_token):
    _limited(app, client, make_token)


def test_rate_limit_per_token_in_redis(app, client, make_token, redis_url):
    override(app, REDIS_URL=redis_url)
    _limited(app, client, make_token)
    from consult.models import RateLimitCounter

    assert not db.session.scalars(sa.select(RateLimitCounter)).all()


def test_reports_figures(client, make_token, make_ticket):
    make_ticket()
    headers = make_token(["reports"])
    from consult.timeutil import fiscal_year, tokyo_today

    year = fiscal_year(tokyo_today())
    figures = client.get(f"/api/v1/reports/figures?fiscal_year={year}", headers=headers)
    body = figures.get_json()
    assert body["total"] == 1 and body["by_channel"] == [{"key": "counter", "count": 1}]
    problem(
        client.get(f"/api/v1/reports/figures?fiscal_year={year}&quarter=5", headers=headers),
        422,
        "validation_failed",
    )


def test_handoffs_of_a_ticket(client, make_token, make_ticket, make_department, make_staff):
    from consult.services.actor import Actor
    from handoff import services as handoff_services
    from handoff.models import Response

    ticket = make_ticket()
    department = make_department()
    [handoff] = handoff_services.create(
        Actor(make_staff("consultant")),
        ticket,
        [handoff_services.Request(department.id, "転入届の確認をお願いします。", Response.VISIT)],
    )
    db.session.commit()
    full = make_token()
    listing = client.get(f"/api/v1/tickets/{ticket.number}/handoffs", headers=full).get_json()
    assert listing["items"][0]["state"] == "requested"
    assert listing["items"][0]["summary"] == "転入届の確認をお願いします。"
    plain = make_token(["tickets:read"])
    one = client.get(f"/api/v1/handoffs/{handoff.id}", headers=plain).get_json()
    assert one["department_id"] == department.id and "summary" not in one
    problem(client.get("/api/v1/handoffs/999999", headers=plain), 404, "not_found")


def test_slots_of_specialist_sessions_and_branch_offices(app, client, make_token, make_staff):
    """A city's booking tool can list what a citizen can book on /booking/: a specialist
    session's own slots (kind_id) and 支所からのオンライン相談 from an open branch office."""
    from channels.booking import branch, specialist
    from channels.booking import services as booking_services
    from channels.booking.models import Mode
    from consult.services.actor import Actor
    from tests.channels.booking.test_specialist import make_kind, weekday_ahead

    admin = make_staff("admin")
    kind = make_kind(admin, capacity=2)
    closed_kind = make_kind(admin, name="休止中の相談", active=False)
    override(app, BOOKING_BRANCH_MEETING_URL="https://meet.example.jp/madoguchi/{code}")
    office = branch.save_office(
        Actor(admin), None, name="菊間支所", name_en=None, address="今治市菊間町浜1", active=True
    )
    closed = branch.save_office(
        Actor(admin), None, name="旧支所", name_en=None, address=None, active=False
    )
    db.session.commit()
    headers = make_token(["tickets:read"])
    day = weekday_ahead()

    kinds = client.get("/api/v1/bookings/kinds", headers=headers).get_json()["items"]
    assert [(k["id"], k["name"], k["mode"], k["capacity"]) for k in kinds] == [
        (kind.id, "心理カウンセラー", "counter", 2)
    ]
    slots = client.get(
        f"/api/v1/bookings/slots?kind_id={kind.id}&start={day}&days=1", headers=headers
    ).get_json()["items"]
    assert [(s["starts_at"][11:16], s["capacity"], s["free"]) for s in slots] == [
        ("13:00", 2, 2),
        ("14:00", 2, 2),
        ("15:00", 2, 2),
    ]
    assert len(slots) == len(specialist.kind_slots(kind, start=day, days=1))
    same_mode = client.get(
        f"/api/v1/bookings/slots?kind_id={kind.id}&mode=counter&start={day}", headers=headers
    )
    assert same_mode.status_code == 200
    problem(
        client.get(f"/api/v1/bookings/slots?kind_id={kind.id}&mode=phone", headers=headers),
        422,
        "validation_failed",
    )
    problem(
        client.get(f"/api/v1/bookings/slots?kind_id={closed_kind.id}", headers=headers),
        404,
        "not_found",
    )

    offices = client.get("/api/v1/bookings/offices", headers=headers).get_json()["items"]
    assert offices == [{"id": office.id, "name": "菊間支所", "address": "今治市菊間町浜1"}]
    branch_slots = client.get(
        f"/api/v1/bookings/slots?mode=branch_video&office_id={office.id}&start={day}&days=1",
        headers=headers,
    ).get_json()["items"]
    expected = booking_services.free_slots([Mode.BRANCH_VIDEO], start=day, days=1)
    assert len(branch_slots) == len(expected[Mode.BRANCH_VIDEO]) > 0
    assert {s["capacity"] for s in branch_slots} == {1}  # the centre's weekday seats
    needs_office = problem(
        client.get("/api/v1/bookings/slots?mode=branch_video", headers=headers),
        422,
        "validation_failed",
    )
    assert "office_id" in needs_office["detail"]
    problem(
        client.get(
            f"/api/v1/bookings/slots?mode=branch_video&office_id={closed.id}", headers=headers
        ),
        404,
        "not_found",
    )
    problem(
        client.get(f"/api/v1/bookings/slots?mode=phone&office_id={office.id}", headers=headers),
        422,
        "validation_failed",
    )
    problem(client.get("/api/v1/bookings/slots", headers=headers), 422, "validation_failed")
    # No meeting link set: the mode is not offered, as on the citizen's booking page.
    override(app, BOOKING_BRANCH_MEETING_URL="")
    assert client.get("/api/v1/bookings/offices", headers=headers).get_json() == {"items": []}
    problem(
        client.get(
            f"/api/v1/bookings/slots?mode=branch_video&office_id={office.id}", headers=headers
        ),
        422,
        "validation_failed",
    )
    document = client.get("/api/v1/openapi.json").get_json()
    parameters = document["paths"]["/api/v1/bookings/slots"]["get"]["parameters"]
    by_name = {p["name"]: p for p in parameters}
    assert "branch_video" in by_name["mode"]["schema"]["enum"]
    assert "支所" in by_name["office_id"]["description"]
    assert "専門相談" in by_name["kind_id"]["description"]


def test_free_slots_and_bookings(client, make_token):
    from channels.booking import services as booking_services
    from channels.booking.models import Mode

    headers = make_token()
    slots = client.get("/api/v1/bookings/slots?mode=phone&days=14", headers=headers).get_json()
    expected = booking_services.free_slots([Mode.PHONE], days=14)[Mode.PHONE]
    assert len(slots["items"]) == len(expected) > 0
    assert slots["items"][0]["free"] == expected[0].free
    body = problem(
        client.get("/api/v1/bookings/slots?mode=phone&start=9999-12-31", headers=headers),
        422,
        "validation_failed",
    )
    assert body["errors"][0]["field"] == "start"
    today = utcnow().date()
    listing = client.get(
        f"/api/v1/bookings?from={today}&to={today + timedelta(days=7)}", headers=headers
    )
    assert listing.get_json() == {"items": []}
    problem(
        client.get(
            f"/api/v1/bookings?from={today}&to={today + timedelta(days=40)}", headers=headers
        ),
        422,
        "validation_failed",
    )
    problem(
        client.get(
            f"/api/v1/bookings?from={today}&to={today}", headers=make_token(["tickets:read"])
        ),
        403,
        "scope_missing",
    )


def test_a_departments_system_takes_the_officers_steps(
    client, make_token, make_ticket, make_department, make_staff
):
    from consult.services.actor import Actor
    from handoff import services as handoff_services
    from handoff.models import Handoff, Response

    ticket = make_ticket()
    mine, other = make_department(name="市民課"), make_department(name="税務課")
    [handoff, elsewhere] = sorted(
        handoff_services.create(
            Actor(make_staff("consultant")),
            ticket,
            [
                handoff_services.Request(mine.id, "転入届の確認", Response.VISIT),
                handoff_services.Request(other.id, "税の証明", Response.CALLBACK),
            ],
        ),
        key=lambda h: h.department_id != mine.id,
    )
    db.session.commit()
    system = make_token(["tickets:read", "tickets:write"], department_id=mine.id)
    steps = f"/api/v1/handoffs/{handoff.id}/steps"
    assert client.post(steps, json={"step": "accept"}, headers=system).get_json()["state"] == (
        "accepted"
    )
    moving = client.post(steps, json={"step": "on_the_way", "eta_minutes": 5}, headers=system)
    assert moving.get_json()["state"] == "on_the_way"
    assert client.post(steps, json={"step": "arrive"}, headers=system).status_code == 200
    body = problem(
        client.post(steps, json={"step": "finish"}, headers=system), 422, "validation_failed"
    )
    assert "対応内容" in body["detail"]
    done = client.post(
        steps, json={"step": "finish", "action": "窓口で説明", "outcome": "解決"}, headers=system
    )
    assert done.get_json()["state"] == "done"
    db.session.expire_all()
    assert db.session.get(Handoff, handoff.id).accepted_by_name == "市民課"
    # Another department's handoff, or a token bound to no department: the desk's refusal.
    problem(
        client.post(
            f"/api/v1/handoffs/{elsewhere.id}/steps", json={"step": "accept"}, headers=system
        ),
        403,
        "forbidden",
    )
    problem(
        client.post(
            f"/api/v1/handoffs/{elsewhere.id}/steps", json={"step": "accept"}, headers=make_token()
        ),
        403,
        "forbidden",
    )
    problem(client.post(steps, json={"step": "arrive"}, headers=system), 409, "invalid_transition")


def test_keyset_paging_over_http_while_another_client_creates(app, make_token, make_ticket):
    """Real concurrency: a second client keeps POSTing cases while the first pages through."""
    import threading

    import requests
    from werkzeug.serving import make_server

    override(app, API_RATE_LIMIT="100000 per minute")
    made = [make_ticket(subject=f"既存{i}").number for i in range(30)]
    headers = make_token()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    serve_in_thread(server)
    base = f"http://127.0.0.1:{server.server_port}/api/v1/tickets"
    stop = threading.Event()
    created: list[int] = []

    def create():
        with requests.Session() as session:
            while not stop.is_set():
                answer = session.post(base, json={"subject": "並行"}, headers=headers, timeout=30)
                created.append(answer.status_code)

    writer = threading.Thread(target=create)
    writer.start()
    try:
        seen: list[str] = []
        cursor = None
        with requests.Session() as session:
            while True:
                url = base + "?limit=4" + (f"&cursor={cursor}" if cursor else "")
                page = session.get(url, headers=headers, timeout=30).json()
                seen += [item["number"] for item in page["items"] if item["subject"] != "並行"]
                cursor = page["next_cursor"]
                if not cursor:
                    break
    finally:
        stop.set()
        writer.join(timeout=60)
        server.shutdown()
        server.server_close()
    assert created and set(created) == {201}
    assert seen == list(reversed(made))  # every existing case once, in order


def test_a_staff_session_alone_opens_no_api(client, login_as):
    """The API is exempt from CSRF because a cookie never authenticates it."""
    login_as("consultant")
    assert client.get("/tickets").status_code == 200  # signed in
    problem(client.post("/api/v1/tickets", json={"subject": "x"}), 401, "token_missing")
    problem(client.get("/api/v1/tickets"), 401, "token_missing")
