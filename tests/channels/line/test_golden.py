"""A consultant's answer as LINE's Messaging API receives it (tests/fixtures/golden/)."""

from __future__ import annotations

import json

from tests.channels.line.conftest import new_staff, run_worker
from tests.channels.line.test_delivery import _start
from tests.golden import assert_golden, replace_patterns
from tests.helpers import sign_in

# What the golden file keeps of the request's headers: the rest is the HTTP library's.
HEADERS = ("Authorization", "Content-Type", "X-Line-Retry-Key")


def test_a_reply_pushed_to_line_is_as_in_the_golden_file(line_client, line_app, fake_line):
    """Display name only, the text as written, a retry key: the push as it goes over the wire."""
    ticket = _start(line_client, line_app, fake_line)
    sign_in(line_client, new_staff(full_name="山田 太郎", display_name="やまだ / Yamada"))
    response = line_client.post(
        f"/channels/line/tickets/{ticket.number}/reply",
        data={"body": "窓口は2階です。\n本日17時15分まで受け付けています。"},
    )
    assert response.status_code == 302
    run_worker(line_app)
    [push] = fake_line.pushes
    headers = "".join(f"{name}: {push.headers[name]}\n" for name in HEADERS)
    # The body as sent, laid out one key a line (order kept) for a readable diff.
    body = json.dumps(json.loads(push.body), ensure_ascii=False, indent=2)
    text = f"{push.method} {push.path}\n{headers}\n{body}\n"
    text = replace_patterns(
        text, {r"^X-Line-Retry-Key: [0-9a-f-]{36}$": "X-Line-Retry-Key: <UUID>"}
    )
    assert_golden("line-push-reply.txt", text)
