"""Mail through the outbox to a real SMTP server on 127.0.0.1, and back through the parser."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from consult.config import ConfigError
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


# --- TLS: SMTPS and STARTTLS, verified against MADOGUCHI_MAIL_CA_FILE ---------------------------


def _queue_japanese_mail():
    mail.enqueue_mail(
        to="shimin@example.jp",
        subject="【市民相談センター】ご相談の件（①番窓口）",
        text="山田様\n\nお問い合わせの件、担当課よりご連絡いたします～。",
    )
    db.session.commit()


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_mail_goes_out_over_tls_to_a_server_of_the_configured_ca(
    app_factory, smtp_tls_server, security
):
    server = smtp_tls_server(security)  # STARTTLS is required: no TLS, no MAIL FROM
    app = app_factory(**server.settings)
    with app.app_context():
        _queue_japanese_mail()
        [sent] = _deliver_all()
        assert sent.status is OutboxStatus.DELIVERED, sent.last_error

    [(recipients, received)] = server.messages
    assert recipients == ["shimin@example.jp"]
    assert received["Subject"] == "【市民相談センター】ご相談の件（①番窓口）"
    body = received.get_body(("plain",)).get_content()
    assert "お問い合わせの件、担当課よりご連絡いたします～。" in body


@pytest.mark.parametrize(
    ("security", "wrong_name", "ca", "reason"),
    [
        ("ssl", False, "other", "unable to get local issuer certificate"),
        ("starttls", False, "other", "unable to get local issuer certificate"),
        ("starttls", False, "system", "unable to get local issuer certificate"),
        ("ssl", True, "test", "mismatch, certificate is not valid for '127.0.0.1'"),
    ],
    ids=["smtps-other-ca", "starttls-other-ca", "starttls-system-store", "smtps-wrong-host"],
)
def test_a_certificate_that_does_not_verify_keeps_the_mail_in_the_outbox(
    app_factory, smtp_tls_server, tls_pki, security, wrong_name, ca, reason
):
    server = smtp_tls_server(security, wrong_name=wrong_name)
    settings = dict(server.settings)
    settings["MAIL_CA_FILE"] = {"other": str(tls_pki.other_ca_file), "system": ""}.get(
        ca, str(tls_pki.ca_file)
    )
    app = app_factory(**settings)
    with app.app_context():
        _queue_japanese_mail()
        [waiting] = _deliver_all()
        assert waiting.status is OutboxStatus.PENDING
        assert "SMTPサーバーの証明書を検証できませんでした" in waiting.last_error
        assert reason in waiting.last_error and "MADOGUCHI_MAIL_CA_FILE" in waiting.last_error
    assert server.messages == []

    # Once the configuration is right, the same message goes out (to a correctly named server).
    fixed = smtp_tls_server(security)
    app = app_factory(**fixed.settings)
    with app.app_context():
        outbox.retry(db.session.get(OutboxMessage, waiting.id))
        db.session.commit()
        [sent] = _deliver_all()
        assert sent.status is OutboxStatus.DELIVERED, sent.last_error
    [(_, received)] = fixed.messages
    assert received["Subject"] == "【市民相談センター】ご相談の件（①番窓口）"


def test_a_ca_file_that_cannot_be_read_stops_the_start(app_factory, tmp_path):
    with pytest.raises(ConfigError, match="MADOGUCHI_MAIL_CA_FILE"):
        app_factory(MAIL_CA_FILE=str(tmp_path / "missing.pem"))
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("これは証明書ではありません\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="MADOGUCHI_MAIL_CA_FILE"):
        app_factory(MAIL_CA_FILE=str(not_pem))
