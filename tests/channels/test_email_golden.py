"""The reply mail as the SMTP server receives it, byte for byte (tests/fixtures/golden/)."""

from __future__ import annotations

from channels.email import services, tasks
from consult.extensions import db
from consult.services import outbox
from consult.services.actor import Actor
from tests.channels.test_email_channel import citizen_mail
from tests.golden import assert_golden, replace_patterns


def test_a_reply_to_a_docomo_address_leaves_as_in_the_golden_file(
    app_factory, smtp_server, make_staff
):
    """ISO-2022-JP for a carrier address, the staff's display name, the thread's headers."""
    app = app_factory(
        **smtp_server.settings, MAIL_ISO2022JP_DOMAINS="docomo.ne.jp", MAIL_AUTO_ACK=False
    )
    with app.app_context():
        ticket = tasks.ingest(citizen_mail()).ticket
        # The number comes from the fiscal year; fixed here so that the encoded Subject, which
        # carries it, does not change every April.
        ticket.number = "2026-000001"
        staff = make_staff("consultant", display_name="やまだ / Yamada")
        services.send_reply(Actor(staff, "127.0.0.1"), ticket, "髙橋様\n①の件、承知しました～。")
        db.session.commit()
        outbox.run_once()
    [raw] = smtp_server.raw
    text = replace_patterns(
        raw.decode("ascii"),
        {
            r"^Date: [^\r\n]*": "Date: <DATE>",
            r"^Message-ID: <[^@>]+@": "Message-ID: <MESSAGE-ID@",
        },
    )
    assert_golden("reply-mail-iso-2022-jp.eml", text)
