"""`Idempotency-Key` on the API's POSTs, and the API's own channel (issue 20), on both
databases: a resent request gets the first answer and creates nothing; a key reused for another
request is refused in Japanese; keys are per token and last a day; two concurrent requests with
the same key over real HTTP create one ticket."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from api.models import ApiIdempotencyKey
from consult.extensions import db
from consult.models import Ticket, TimelineEntry
from consult.settings import override
from consult.timeutil import utcnow
from tests.api.test_api import problem
from tests.helpers import serve_in_thread, sign_in


def _count(model=Ticket) -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def _post(client, headers, key, body, path="/api/v1/tickets"):
    return client.post(path, json=body, headers={**headers, "Idempotency-Key": key})


def test_the_same_key_and_body_give_the_first_answer_and_one_ticket(client, make_token):
    headers = make_token()
    body = {
        "subject": "転入手続きの相談",
        "message": "必要な書類を教えてください",
        "priority": "high",
    }
    first = _post(client, headers, "form-2026-0001", body)
    assert first.status_code == 201 and first.get_json()["channel"] == "api"
    # The same content, its keys in another order: the same request.
    again = _post(client, headers, "form-2026-0001", dict(reversed(body.items())))
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert _count() == 1
    # Without a key, or with another, the same body is a new case.
    assert client.post("/api/v1/tickets", json=body, headers=headers).status_code == 201
    assert _post(client, headers, "form-2026-0002", body).status_code == 201
    assert _count() == 3


def test_the_same_key_with_another_body_is_refused_in_japanese(client, make_token):
    headers = make_token()
    assert _post(client, headers, "k-1", {"subject": "一件目"}).status_code == 201
    refused = problem(
        _post(client, headers, "k-1", {"subject": "二件目"}), 422, "idempotency_key_reused"
    )
    assert "別の内容" in refused["detail"]
    # The same key on another operation is another request too.
    number = db.session.scalar(sa.select(Ticket.number))
    problem(
        _post(client, headers, "k-1", {"body": "メモ"}, f"/api/v1/tickets/{number}/notes"),
        422,
        "idempotency_key_reused",
    )
    assert _count() == 1 and [t.subject for t in db.session.scalars(sa.select(Ticket))] == [
        "一件目"
    ]


@pytest.mark.parametrize("key", ["", "空白 あり", "x" * 256, "改行\n"])
def test_a_malformed_key_is_refused_and_creates_nothing(client, make_token, key):
    headers = make_token()
    try:
        response = _post(client, headers, key, {"subject": "相談"})
    except ValueError:  # a header with a newline cannot even be sent
        return
    problem(response, 422, "idempotency_key_invalid")
    assert _count() == 0


def test_keys_are_per_token_and_a_failed_request_frees_its_key(client, make_token):
    one, two = make_token(), make_token()
    assert _post(client, one, "shared", {"subject": "A"}).status_code == 201
    assert _post(client, two, "shared", {"subject": "A"}).status_code == 201
    assert _count() == 2
    # A request refused by validation keeps nothing: the key serves the corrected request.
    problem(_post(client, one, "retry-me", {"subject": ""}), 422, "validation_failed")
    assert _post(client, one, "retry-me", {"subject": "直した"}).status_code == 201
    assert _count() == 3


def test_after_a_day_the_key_is_new_again(client, make_token):
    headers = make_token()
    assert _post(client, headers, "daily", {"subject": "昨日"}).status_code == 201
    db.session.execute(
        sa.update(ApiIdempotencyKey).values(created_at=utcnow() - timedelta(hours=25))
    )
    db.session.commit()
    again = _post(client, headers, "daily", {"subject": "今日"})
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert _count() == 2 and _count(ApiIdempotencyKey) == 1


def test_other_posts_honour_the_key(client, make_token):
    headers = make_token()
    number = client.post("/api/v1/tickets", json={"subject": "相談"}, headers=headers).get_json()[
        "number"
    ]
    path = f"/api/v1/tickets/{number}/notes"
    first = _post(client, headers, "note-1", {"body": "折り返し済み"}, path)
    second = _post(client, headers, "note-1", {"body": "折り返し済み"}, path)
    assert first.status_code == second.status_code == 201
    assert second.get_json() == first.get_json()
    db.session.expire_all()
    notes = db.session.scalars(
        sa.select(TimelineEntry.id).where(TimelineEntry.body == "折り返し済み")
    ).all()
    assert len(notes) == 1


def test_the_api_channel_has_its_label_in_the_queue_filter_and_reports(
    app, client, make_token, make_staff
):
    headers = make_token()
    number = client.post(
        "/api/v1/tickets", json={"subject": "外部から"}, headers=headers
    ).get_json()["number"]
    supervisor = sign_in(app.test_client(), make_staff("supervisor"))
    queue = supervisor.get("/tickets?channel=api").get_data(as_text=True)
    assert 'value="api"' in queue and "外部システム連携" in queue and number in queue
    report = supervisor.get("/reports").get_data(as_text=True)
    assert "外部システム連携" in report


def test_two_concurrent_requests_with_the_same_key_create_one_ticket(app, make_token):
    """Real concurrency over HTTP: several rounds, each with four requests let go at once."""
    import requests
    from werkzeug.serving import make_server

    override(app, API_RATE_LIMIT="100000 per minute")
    headers = make_token()
    db.session.commit()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    serve_in_thread(server)
    url = f"http://127.0.0.1:{server.server_port}/api/v1/tickets"
    try:
        for round_ in range(4):
            barrier = threading.Barrier(4)
            answers: list = []

            def send(round_=round_, barrier=barrier, answers=answers):
                barrier.wait()
                answer = requests.post(
                    url,
                    json={"subject": f"同時送信 {round_}"},
                    headers={**headers, "Idempotency-Key": f"race-{round_}"},
                    timeout=60,
                )
                answers.append((answer.status_code, answer.json()))

            threads = [threading.Thread(target=send) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=90)
            assert [status for status, _ in answers] == [201] * 4, answers
            assert len({body["number"] for _, body in answers}) == 1
    finally:
        server.shutdown()
        server.server_close()
    assert _count() == 4
