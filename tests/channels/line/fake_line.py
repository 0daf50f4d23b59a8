"""A fake LINE Messaging API: a real HTTP server on 127.0.0.1 that records what it receives.

The app's real SDK client talks to it through ``Configuration(host=…)``. It answers like LINE:
push and reply 200 ``{}``, multicast 200 ``{}`` (refusing more than 500 ids, as LINE does), a
repeated X-Line-Retry-Key 409, blob downloads from ``content``, and the month's quota
(``/v2/bot/message/quota``: ``quota_limit``, None for no limit; ``/quota/consumption``: what was
sent this month, ``used`` plus one message per user of each push and multicast it accepted);
``script`` queues other answers (429, 500, 400 …) for a path.
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
        multicast = request.path == "/v2/bot/message/multicast"
        with self.lock:
            if self.record_multicast or not multicast:
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
        if multicast and len(record.json.get("to") or []) > 500:
            return Response(
                '{"message":"The request body has 1 error(s)","details":[{"message":"Size must be'
                ' between 1 and 500","property":"to"}]}',
                400,
                mimetype="application/json",
            )(environ, start_response)
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
                    headers={"x-line-accepted-request-id": "fake"},
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


def start_fake_line():
    fake = FakeLine()
    server = make_server("127.0.0.1", 0, fake, threaded=True)
    fake.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, name="fake-line", daemon=True)
    thread.start()
    return fake, server
