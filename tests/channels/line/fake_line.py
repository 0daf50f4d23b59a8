"""A fake LINE Messaging API: a real HTTP server on 127.0.0.1 that records what it receives.

The app's real SDK client talks to it through ``Configuration(host=…)``. It answers like LINE:
push and reply 200 ``{}``, multicast 200 ``{}`` (refusing more than 500 ids, as LINE does), a
repeated X-Line-Retry-Key 409, blob downloads from ``content``, and the month's quota
(``/v2/bot/message/quota``: ``quota_limit``, None for no limit; ``/quota/consumption``: what was
sent this month, ``used`` plus one message per user of each push and multicast it accepted);
``script`` queues other answers (429, 500, 400 …) for a path.

Narrowcast to an audience, as LINE does it: audiences uploaded by JSON (POST
``/v2/bot/audienceGroup/upload`` creates one, PUT adds to it, 10,000 ids per request at most,
GET ``/v2/bot/audienceGroup/{id}`` answers READY with its size, DELETE removes it), a
narrowcast to an audience answered 202 with ``X-Line-Request-Id`` (under 50 recipients: the
progress fails with errorCode 4, as LINE's does), and ``/v2/bot/message/progress/narrowcast``
answering ``succeeded`` with the audience's size (``script`` it to say ``sending`` first).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.helpers import serve_in_thread

SECRET = "test-channel-secret-0123456789abcdef"
TOKEN = "test-access-token"


def sign(body: str, secret: str = SECRET) -> str:
    digest = hmac.new(secret.encode(), body.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body or b"{}")

    @property
    def texts(self) -> list[str]:
        return [m.get("text") for m in self.json.get("messages", [])]


@dataclass
class FakeLine:
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    scripts: dict[str, list[tuple[int, dict]]] = field(default_factory=dict)
    content: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    accepted_keys: set[str] = field(default_factory=set)
    # GET /v2/bot/profile/{userId}: the profiles LINE knows (others answer 404 as LINE does
    # for a user who is not a friend).
    profiles: dict[str, dict] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    quota_limit: int | None = 1000
    used: int = 0
    # Keep only a count of multicasts, not their bodies (the benchmark sends 100,000 users).
    record_multicast: bool = True
    multicast_users: int = 0
    multicast_calls: int = 0
    # Audiences: id → the user ids uploaded (a count only when record_multicast is off).
    audiences: dict[int, list[str] | int] = field(default_factory=dict)
    deleted_audiences: list[int] = field(default_factory=list)
    # Narrowcasts accepted: request id → (audience id, recipients).
    narrowcast_requests: dict[str, tuple[int, int]] = field(default_factory=dict)
    narrowcast_users: int = 0
    key_requests: dict[str, str] = field(default_factory=dict)

    def script(self, path: str, *answers: tuple[int, dict]) -> None:
        self.scripts.setdefault(path, []).extend(answers)

    def calls(self, path: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    @property
    def pushes(self) -> list[Recorded]:
        return self.calls("/v2/bot/message/push")

    @property
    def multicasts(self) -> list[Recorded]:
        return self.calls("/v2/bot/message/multicast")

    @property
    def narrowcasts(self) -> list[Recorded]:
        return self.calls("/v2/bot/message/narrowcast")

    @property
    def uploads(self) -> list[Recorded]:
        return self.calls("/v2/bot/audienceGroup/upload")

    def audience_size(self, audience_id: int) -> int:
        found = self.audiences.get(audience_id, 0)
        return found if isinstance(found, int) else len(found)

    @property
    def replies(self) -> list[Recorded]:
        return self.calls("/v2/bot/message/reply")

    def sent_texts(self) -> list[str]:
        with self.lock:
            found = [r for r in self.requests if r.path.endswith(("/push", "/reply"))]
        return [text for r in found for text in r.texts]

    def wait_for(self, predicate, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate()
            if result:
                return result
            time.sleep(0.05)
        raise AssertionError("the fake LINE API did not receive what was expected")

    def __call__(self, environ, start_response):
        request = Request(environ)
        body = request.get_data()
        record = Recorded(request.method, request.path, dict(request.headers), body)
        bulk = (
            "/v2/bot/message/multicast",
            "/v2/bot/audienceGroup/upload",
            "/v2/bot/message/narrowcast",
        )
        multicast = request.path == "/v2/bot/message/multicast"
        with self.lock:
            if self.record_multicast or request.path not in bulk:
                self.requests.append(record)
            scripted = self.scripts.get(request.path) or []
            answer = scripted.pop(0) if scripted else None
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            answer = (401, {"message": "Authentication failed"})
        if answer is not None:
            status, payload = answer
            return Response(json.dumps(payload), status, mimetype="application/json")(
                environ, start_response
            )
        if request.method == "GET" and request.path.startswith("/v2/bot/profile/"):
            profile = self.profiles.get(request.path.rsplit("/", 1)[1])
            if profile is None:
                return Response('{"message":"Not found"}', 404, mimetype="application/json")(
                    environ, start_response
                )
            return Response(json.dumps(profile), 200, mimetype="application/json")(
                environ, start_response
            )
        if request.path.startswith("/v2/bot/message/") and request.path.endswith("/content"):
            message_id = request.path.split("/")[4]
            if message_id not in self.content:
                return Response('{"message":"Not found"}', 404, mimetype="application/json")(
                    environ, start_response
                )
            data, mimetype = self.content[message_id]
            return Response(data, 200, mimetype=mimetype)(environ, start_response)
        if request.path == "/v2/bot/message/quota":
            if self.quota_limit is None:
                payload = {"type": "none"}
            else:
                payload = {"type": "limited", "value": self.quota_limit}
            return Response(json.dumps(payload), 200, mimetype="application/json")(
                environ, start_response
            )
        if request.path == "/v2/bot/message/quota/consumption":
            return Response(
                json.dumps({"totalUsage": self.used}), 200, mimetype="application/json"
            )(environ, start_response)
        audience = self._audience(request, record)
        if audience is not None:
            return audience(environ, start_response)
        if request.path == "/v2/bot/message/progress/narrowcast":
            return self._progress(request.args.get("requestId", ""))(environ, start_response)
        if multicast and len(record.json.get("to") or []) > 500:
            return Response(
                '{"message":"The request body has 1 error(s)","details":[{"message":"Size must be'
                ' between 1 and 500","property":"to"}]}',
                400,
                mimetype="application/json",
            )(environ, start_response)
        refused = (
            _refused_quick_reply(record) if request.path.endswith(("/push", "/reply")) else None
        )
        if refused is not None:
            return Response(refused, 400, mimetype="application/json")(environ, start_response)
        key = request.headers.get("X-Line-Retry-Key")
        if key:
            with self.lock:
                repeated = key in self.accepted_keys
                self.accepted_keys.add(key)
            if repeated:
                return Response(
                    '{"message":"The retry key is already accepted"}',
                    409,
                    mimetype="application/json",
                    headers={"x-line-accepted-request-id": self.key_requests.get(key, "fake")},
                )(environ, start_response)
        if request.path == "/v2/bot/message/narrowcast":
            audience_id = (record.json.get("recipient") or {}).get("audienceGroupId")
            with self.lock:
                users = self.audience_size(audience_id) if audience_id in self.audiences else 0
                request_id = f"nc-{len(self.narrowcast_requests) + 1}"
                self.narrowcast_requests[request_id] = (audience_id, users)
                if key:
                    self.key_requests[key] = request_id
                if users >= 50:
                    self.narrowcast_users += users
                    self.used += users
            return Response(
                "{}", 202, mimetype="application/json", headers={"X-Line-Request-Id": request_id}
            )(environ, start_response)
        if multicast:
            with self.lock:
                users = len(record.json.get("to") or [])
                self.multicast_users += users
                self.multicast_calls += 1
                self.used += users
            return Response("{}", 200, mimetype="application/json")(environ, start_response)
        if request.path.endswith("/push"):
            with self.lock:
                self.used += 1
        # LINE answers push and reply with the messages it sent.
        count = max(len(record.json.get("messages", [])), 1) if body else 1
        sent = {"sentMessages": [{"id": f"{n + 1}", "quoteToken": "q"} for n in range(count)]}
        return Response(json.dumps(sent), 200, mimetype="application/json")(environ, start_response)

    def _audience(self, request: Request, record: Recorded) -> Response | None:
        """The audience endpoints; None for any other path."""
        path = request.path
        if path == "/v2/bot/audienceGroup/upload" and request.method in ("POST", "PUT"):
            payload = record.json
            ids = [a.get("id") for a in payload.get("audiences") or []]
            if len(ids) > 10_000:
                return _json({"message": "audiences: size must be between 0 and 10000"}, 400)
            with self.lock:
                if request.method == "POST":
                    audience_id = 1000 + len(self.audiences) + len(self.deleted_audiences)
                    self.audiences[audience_id] = ids if self.record_multicast else len(ids)
                    answer = {**_audience_group(audience_id, len(ids)), "expireTimestamp": 0}
                    answer.pop("status"), answer.pop("audienceCount")
                    return _json(answer, 202)  # LINE accepts an upload with 202
                audience_id = payload.get("audienceGroupId")
                if audience_id not in self.audiences:
                    return _json({"message": "audience not found"}, 400)
                held = self.audiences[audience_id]
                if isinstance(held, int):
                    self.audiences[audience_id] = held + len(ids)
                else:
                    held.extend(ids)
            return _json({}, 202)
        if path.startswith("/v2/bot/audienceGroup/") and path.rsplit("/", 1)[1].isdigit():
            audience_id = int(path.rsplit("/", 1)[1])
            with self.lock:
                if audience_id not in self.audiences:
                    return _json({"message": "audience not found"}, 404)
                if request.method == "DELETE":
                    del self.audiences[audience_id]
                    self.deleted_audiences.append(audience_id)
                    return _json({})
                size = self.audience_size(audience_id)
            return _json({"audienceGroup": _audience_group(audience_id, size), "jobs": []})
        return None

    def _progress(self, request_id: str) -> Response:
        with self.lock:
            found = self.narrowcast_requests.get(request_id)
        if found is None:
            return _json({"message": "request not found"}, 404)
        _audience_id, users = found
        accepted = "2026-12-03T10:15:30.121Z"
        if users < 50:
            return _json(
                {
                    "phase": "failed",
                    "failedDescription": "audience too small",
                    "errorCode": 4,
                    "acceptedTime": accepted,
                    "completedTime": accepted,
                }
            )
        return _json(
            {
                "phase": "succeeded",
                "successCount": users,
                "failureCount": 0,
                "targetCount": users,
                "acceptedTime": accepted,
                "completedTime": accepted,
            }
        )


def _refused_quick_reply(record: Recorded) -> str | None:
    """LINE's 400 for quick replies it does not show: more than 13 buttons, or a label longer
    than 20 characters (the SDK's models check neither)."""
    for n, message in enumerate(record.json.get("messages") or []):
        items = (message.get("quickReply") or {}).get("items") or []
        problem = None
        if len(items) > 13:
            problem = ("Size must be between 1 and 13", f"messages[{n}].quickReply.items")
        for i, item in enumerate(items):
            if len((item.get("action") or {}).get("label") or "") > 20:
                problem = (
                    "Length must be between 0 and 20",
                    f"messages[{n}].quickReply.items[{i}].action.label",
                )
        if problem:
            return json.dumps(
                {
                    "message": "The request body has 1 error(s)",
                    "details": [{"message": problem[0], "property": problem[1]}],
                }
            )
    return None


def _json(payload, status: int = 200) -> Response:
    return Response(json.dumps(payload), status, mimetype="application/json")


def _audience_group(audience_id: int, size: int) -> dict:
    return {
        "audienceGroupId": audience_id,
        "type": "UPLOAD",
        "description": f"audience {audience_id}",
        "status": "READY",
        "audienceCount": size,
        "created": int(time.time()),
        "permission": "READ_WRITE",
        "createRoute": "MESSAGING_API",
        "isIfaAudience": False,
    }


def start_fake_line():
    fake = FakeLine()
    server = make_server("127.0.0.1", 0, fake, threaded=True)
    fake.url = f"http://127.0.0.1:{server.server_port}"
    serve_in_thread(server, "fake-line")
    return fake, server
