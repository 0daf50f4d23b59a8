"""No phone number, email address, My Number or message text in the logs; no forged lines."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from consult.extensions import db
from consult.logging import scrub
from consult.services import outbox
from tests.conftest import install_channel
from tests.consult.http import call
from tests.helpers import sign_in

PHONE = "090-1234-5678"
PHONE_DIGITS = "09012345678"
EMAIL = "hanako.yamada@example.jp"
NOTE = "夫からの暴力と借金について相談したい"
NAME = "山田 花子"
MY_NUMBER = "1234 5678 9012"

SECRETS = (PHONE, PHONE_DIGITS, "1234-5678", EMAIL, NOTE, "暴力と借金", NAME, MY_NUMBER)


def _assert_clean(caplog):
    texts = [caplog.text]
    for record in caplog.records:
        texts.append(record.getMessage())
        texts.append(str(record.args or ""))
        texts.append(record.exc_text or "")
    blob = "\n".join(texts)
    for secret in SECRETS:
        assert secret not in blob, secret


def test_counter_and_phone_reception_log_no_personal_data(app, make_staff, caplog):
    caplog.set_level(logging.DEBUG)
    browser = sign_in(app, make_staff("consultant"))
    note = f"{NOTE}。連絡先 {EMAIL} / {PHONE}"
    response = call(
        app,
        browser,
        "POST",
        "/counter/new",
        data={"name": NAME, "phone": PHONE, "first_note": note, "room": "1"},
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    number = response.headers["Location"].rsplit("/", 1)[-1]
    response = call(
        app,
        browser,
        "POST",
        "/phone/new",
        data={
            "name": NAME,
            "phone": PHONE,
            "first_note": note,
            "duration_minutes": "5",
            "category_id": "",
        },
    )
    # The same name and phone: the form asks "this person or a new one" (issue 16), and that
    # page logs nothing personal either; then the consultant chooses (here: a new person).
    assert response.status_code == 422, response.get_data(as_text=True)[:2000]
    response = call(
        app,
        browser,
        "POST",
        "/phone/new",
        data={
            "name": NAME,
            "phone": PHONE,
            "first_note": note,
            "duration_minutes": "5",
            "category_id": "",
            "citizen_choice": "new",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    phone_number = response.headers["Location"].rsplit("/", 1)[-1]
    call(
        app,
        browser,
        "POST",
        f"/tickets/{number}/citizen",
        data={"name": NAME, "phone": PHONE, "email": EMAIL},
    )
    call(app, browser, "POST", f"/tickets/{number}/note", data={"body": note})
    call(app, browser, "POST", "/tickets/search", data={"q": PHONE})
    call(app, browser, "POST", "/citizens/match", data={"phone": PHONE, "email": EMAIL})
    # Both ticket pages render with their channel's panel (they used to answer 500).
    page = call(app, browser, "GET", f"/tickets/{number}")
    assert page.status_code == 200 and "受付番号" in page.get_data(as_text=True)
    page = call(app, browser, "GET", f"/tickets/{phone_number}")
    assert page.status_code == 200 and "録音のお知らせ" in page.get_data(as_text=True)
    _assert_clean(caplog)


@pytest.fixture
def crashing_deliverer(app):
    def crash(message):
        # What a mail server's refusal looks like: it names the recipient.
        raise RuntimeError(f"550 5.1.1 <{EMAIL}> rejected; callback {PHONE}")

    install_channel(app, "test-crash", crash)
    return "test-crash"


def test_a_crashing_deliverer_logs_no_personal_data(app, crashing_deliverer, caplog):
    caplog.set_level(logging.DEBUG)
    outbox.enqueue(channel=crashing_deliverer, recipient=EMAIL, body=NOTE, subject=NOTE)
    db.session.commit()
    report = outbox.run_once()
    assert report.retried == 1
    assert "deliverer crashed" in caplog.text  # the crash is logged …
    assert "RuntimeError" in caplog.text  # … with its traceback …
    _assert_clean(caplog)  # … but not the address it named


def test_log_lines_are_scrubbed_as_a_last_line_of_defence(app, caplog):
    caplog.set_level(logging.DEBUG)
    log = logging.getLogger("madoguchi.test")
    log.info("caller %s wrote from %s about %s", PHONE, EMAIL, MY_NUMBER)
    log.info(f"formatted in place: {PHONE_DIGITS} {EMAIL}")
    log.warning("full-width: ０９０－１２３４－５６７８")
    _assert_clean(caplog)
    assert "０９０" not in caplog.text
    assert "[phone]" in caplog.text and "[email]" in caplog.text


def test_crlf_in_a_login_name_cannot_forge_a_log_line(app, caplog):
    caplog.set_level(logging.DEBUG)
    forged = "nobody\r\n2026-11-22 09:00:00 INFO madoguchi login ok staff=1\u2028x"
    response = call(
        app, app.test_client(), "POST", "/login", data={"login": forged, "password": "x" * 12}
    )
    assert response.status_code == 200
    logging.getLogger("madoguchi.auth").warning("login failed for %s", forged)
    logging.getLogger("madoguchi.auth").warning(f"login failed for {forged}")
    assert caplog.records
    for record in caplog.records:
        message = record.getMessage()
        assert "\r" not in message and "\n" not in message and "\u2028" not in message
    lines = caplog.text.splitlines()
    assert not any(line.startswith("2026-11-22 09:00:00") for line in lines)


def test_scrub_keeps_ids_and_numbers_that_are_not_personal():
    assert scrub("ticket=2026-000123 outbox=42 staff=7") == "ticket=2026-000123 outbox=42 staff=7"


# --- database errors ----------------------------------------------------------------------------

CITIZEN_NAME = "髙橋 美智子"
CITIZEN_KANA = "たかはし みちこ"
ADDRESS = "高松市番町一丁目8番15号"
CONTENT = "生活保護の申請について、家賃の滞納と病気のことを相談したい"


def _provoke(statement) -> None:
    """Run a statement that the database refuses, and log the error as Flask does for a 500."""
    import sys

    from flask import current_app

    try:
        db.session.execute(statement)
        db.session.flush()
    except sa.exc.DBAPIError:
        with current_app.test_request_context("/booking/details", method="POST"):
            current_app.log_exception(sys.exc_info())
        db.session.rollback()
    else:  # pragma: no cover - the statement must fail, or the test proves nothing
        raise AssertionError("the database accepted the statement")


def test_a_database_error_logs_no_personal_data(app, caplog, backend):
    """Names, kana, addresses and free text reach neither the log's message nor its traceback.

    A NOT NULL violation carries every value of the row twice: in SQLAlchemy's "[parameters: …]"
    and, on PostgreSQL, in the server's "DETAIL: Failing row contains (…)". A content with a line
    break puts the row's tail on a line of its own.
    """
    from channels.booking.models import Booking

    caplog.set_level(logging.DEBUG)
    secrets = (CITIZEN_NAME, CITIZEN_KANA, ADDRESS, CONTENT, "家賃の滞納", "髙橋", "みちこ")
    row = {
        "reference": "B-TEST1",
        "uid": "uid-test-1",
        "mode": "counter",
        "status": "booked",
        "name": CITIZEN_NAME,
        "kana": CITIZEN_KANA,
        "content": f"{CONTENT}\n住所：{ADDRESS}",
        "language": "ja",
    }
    _provoke(sa.insert(Booking.__table__).values(**row))  # slot_id and times missing
    if backend == "postgresql":
        # A value too long for its column: a DataError, whose parameters are the citizen's.
        _provoke(
            sa.insert(Booking.__table__).values(
                **{**row, "name": CITIZEN_NAME * 20, "slot_id": 1, "sequence": 0}
            )
        )
    text = caplog.text + "\n".join(r.exc_text or "" for r in caplog.records)
    assert "IntegrityError" in text  # the error is logged, with its traceback …
    assert "booking" in text  # … and says which table …
    for secret in secrets:  # … but none of the citizen's words
        assert secret not in text, secret
