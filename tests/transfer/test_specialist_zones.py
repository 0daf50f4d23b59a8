"""Specialist sessions (専門相談) across the zones: the kinds the core's administrators set up
are offered on the relay's /booking/ (without their specialist), a session booked there
reaches the core with its intake answers, and the kind's seats are counted apart."""

from __future__ import annotations

from datetime import datetime, time

import requests
import sqlalchemy as sa

from channels.booking.models import Booking, BookingSlot, SessionKind
from consult.extensions import db
from consult.timeutil import TOKYO
from tests.channels.booking.test_specialist import kind_form, make_kind, weekday_ahead
from tests.channels.line.conftest import new_staff
from tests.transfer.test_booking_zones import core_round


def test_a_specialist_session_is_offered_and_booked_on_the_relay(relay, core):
    counsellor = new_staff("officer", full_name="心理 花子")
    kind = make_kind(new_staff("admin"), specialist_id=counsellor.id)
    kind_id = kind.id
    start = datetime.combine(weekday_ahead(), time(14, 0), TOKYO)
    assert "心理カウンセラー" not in requests.get(relay.url + "/booking/", timeout=10).text
    core_round()

    index = requests.get(relay.url + "/booking/", timeout=10).text
    assert "専門相談" in index and "心理カウンセラー" in index
    assert f"/booking/slots?kind={kind_id}" in index
    assert "心理 花子" not in index
    with relay.context():
        copy = db.session.get(SessionKind, kind_id)
        assert copy.specialist_id is None  # the specialist stays in LGWAN
    english = requests.get(relay.url + "/booking/", params={"lang": "en"}, timeout=10).text
    assert "Psychological counsellor" in english
    details = requests.get(
        relay.url + "/booking/details",
        params={"kind": kind_id, "start": f"{start:%Y-%m-%dT%H:%M}"},
        timeout=10,
    ).text
    assert "今、いちばん困っていることは" in details

    booked = requests.post(
        relay.url + "/booking/details",
        data=kind_form(start, kind),
        allow_redirects=False,
        timeout=10,
    )
    assert booked.status_code == 303, booked.text[-1500:]
    core_round()
    booking = db.session.scalar(sa.select(Booking))
    assert booking.kind_id == kind_id
    assert booking.intake[0] == {
        "label": "今、いちばん困っていることは",
        "answer": "眠れない日が続いています",
    }
    assert {(s.kind_key, s.booked) for s in db.session.scalars(sa.select(BookingSlot))} == {
        (kind_id, 1)
    }
    with relay.context():
        kept = db.session.scalar(sa.select(Booking))
        assert kept.intake is None and kept.name == ""  # taken: the answers leave the relay

    # The kind's one seat is taken: full on the relay too, while the counter's slot is free.
    full = requests.post(
        relay.url + "/booking/details",
        data=kind_form(start, kind, email="other@example.jp"),
        allow_redirects=False,
        timeout=10,
    )
    assert full.status_code == 409 and "満席" in full.text
    with relay.context():
        slots = {(s.kind_key, s.booked) for s in db.session.scalars(sa.select(BookingSlot))}
        assert slots == {(kind_id, 1)}

    # Closed at the core: no longer offered on the relay.
    db.session.get(SessionKind, kind_id).active = False
    db.session.commit()
    core_round()
    assert "心理カウンセラー" not in requests.get(relay.url + "/booking/", timeout=10).text
