"""Mail through the outbox to a real SMTP server on 127.0.0.1, and back through the parser."""

from __future__ import annotations

import sqlalchemy as sa

from consult.extensions import db
from consult.models import OutboxMessage, OutboxStatus
from consult.services import mail, outbox


def _deliver_all():
    outbox.run_once()
    db.session.expire_all()
    return list(db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)))


def test_japanese_mail_with_an_invitation_arrives_intact(app_factory, smtp_server):
    app = app_factory(**smtp_server.settings)
    with app.app_context():
        queued = mail.enqueue_mail(
            to="shimin@example.jp",
            subject="【市民相談センター】ご予約を承りました（①番窓口）",
            text="山田様\n\nご予約ありがとうございます。～当日はお気をつけてお越しください～",
            sender_name="やまだ / Yamada",
            attachments=[
                {
                    "filename": "予約.ics",
                    "content_type": "text/calendar; method=REQUEST",
                    "text": "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
                }
            ],
        )
        db.session.commit()
        message_id = queued.headers["message_id"]
        [sent] = _deliver_all()
        assert sent.status is OutboxStatus.DELIVERED

    [(recipients, received)] = smtp_server.messages
    assert recipients == ["shimin@example.jp"]
    assert received["Subject"] == "【市民相談センター】ご予約を承りました（①番窓口）"
    assert received["Message-ID"] == message_id and message_id.endswith("@example.lg.jp>")
    assert received["From"].addresses[0].display_name == "やまだ / Yamada"
    body = received.get_body(("plain",)).get_content()
    assert "～当日はお気をつけてお越しください～" in body
    [invitation] = list(received.iter_attachments())
    assert invitation.get_filename() == "予約.ics"
    assert invitation.get_content_type() == "text/calendar"
    assert invitation.get_param("method") == "REQUEST"


def test_a_refused_recipient_fails_for_good_and_a_busy_server_is_retried(app_factory, smtp_server):
    app = app_factory(**smtp_server.settings)
    with app.app_context():
        mail.enqueue_mail(to="nobody@example.jp", subject="件名", text="本文")
        db.session.commit()
        smtp_server.reject_with = "550 5.1.1 User unknown"
        [failed] = _deliver_all()
        assert failed.status is OutboxStatus.FAILED
        assert "550" in failed.last_error and "User unknown" in failed.last_error

        mail.enqueue_mail(to="later@example.jp", subject="件名", text="本文")
        db.session.commit()
        smtp_server.reject_with = "451 4.3.0 Try again later"
        later = _deliver_all()[-1]
        assert later.status is OutboxStatus.PENDING and "451" in later.last_error
        assert smtp_server.messages == []


def test_without_an_smtp_host_mail_waits_instead_of_vanishing(app):
    mail.enqueue_mail(to="shimin@example.jp", subject="件名", text="本文")
    db.session.commit()
    [waiting] = _deliver_all()
    assert waiting.status is OutboxStatus.PENDING
    assert "MADOGUCHI_SMTP_HOST" in waiting.last_error
