"""来庁して対応 says where to go (room, reception number, the consultant's display name), and an
external body asked to call back sees the number to call, each view audited."""

from __future__ import annotations

import json
import pathlib

import sqlalchemy as sa

from channels.counter import services as counter
from consult.extensions import db
from consult.live.models import LiveEvent
from consult.models import AuditEvent
from consult.services import citizens
from consult.services.actor import Actor
from handoff import services
from handoff.models import Response
from tests.consult.http import call
from tests.handoff import test_handoff as base
from tests.handoff.test_handoff import _link_path, hand, mails
from tests.helpers import sign_in

setup = base.setup  # the fixtures of the handoff tests
external = base.external

CITIZEN = "高松 花子"
PHONE = "09012345678"


def walk_in(setup, room=3):
    """A walk-in received at the counter (room 3), with the citizen's name and phone."""
    visit = counter.receive(
        Actor(setup["consultant"], "127.0.0.1"),
        counter.WalkIn(
            category_id=None, room=room, first_note="転入届について", name=CITIZEN, phone=PHONE
        ),
    )
    db.session.commit()
    setup["ticket"] = visit.ticket
    return visit


def test_come_to_counter_names_the_room_the_number_and_the_consultant(app, setup):
    visit = walk_in(setup)
    handoff = hand(setup, Response.VISIT)
    consultant = setup["consultant"].display_name
    officer = sign_in(app, setup["officer"])

    inbox = call(app, officer, "GET", "/handoffs?tab=new").get_data(as_text=True)
    place = f"相談室3・受付番号 {visit.reception_number}・担当 {consultant}"
    assert place in inbox
    detail = call(app, officer, "GET", f"/handoffs/{handoff.id}").get_data(as_text=True)
    assert "<dt>相談室</dt><dd data-handoff-room>相談室3</dd>" in detail
    assert f"<dd data-handoff-reception>{visit.reception_number}</dd>" in detail
    assert f"<dd data-handoff-consultant>{consultant}</dd>" in detail
    # Staff-facing: the display name, never the consultant's full name nor the citizen's.
    for page in (inbox, detail):
        assert setup["consultant"].full_name not in page and CITIZEN not in page

    # The live event of the new handoff carries where to go, and nothing personal.
    event = db.session.scalar(
        sa.select(LiveEvent).where(LiveEvent.kind == "handoff").order_by(LiveEvent.id.desc())
    )
    assert event.payload["room"] == 3
    assert event.payload["reception_number"] == visit.reception_number
    assert event.payload["consultant"] == consultant
    raw = json.dumps(event.payload, ensure_ascii=False)
    assert CITIZEN not in raw and PHONE not in raw and setup["consultant"].full_name not in raw


def test_other_responses_and_a_phone_case_say_no_room(app, setup):
    callback = hand(setup, Response.CALLBACK)  # a phone ticket, no counter visit
    visit_by_phone = hand(setup, Response.VISIT, department=setup["other"])
    officer = sign_in(app, setup["officer"])
    inbox = call(app, officer, "GET", "/handoffs?tab=new").get_data(as_text=True)
    assert "data-handoff-place" not in inbox  # a callback has no place to go
    stranger = sign_in(app, setup["stranger"])
    detail = call(app, stranger, "GET", f"/handoffs/{visit_by_phone.id}").get_data(as_text=True)
    assert "（窓口の受付はありません）" in detail
    assert callback.id != visit_by_phone.id


def test_the_handoff_package_does_not_import_the_counter():
    """The visit comes through the plugin contract (Plugin.visit_lookup), not an import."""
    package = pathlib.Path(services.__file__).parent.parent  # handoff/, services/ included
    for source in package.rglob("*.py"):
        assert "channels" not in source.read_text(encoding="utf-8"), source.name


# --- external bodies asked to call back ---------------------------------------------------------


def _with_citizen(setup):
    citizen = citizens.create_citizen(
        Actor(setup["consultant"]), citizens.CitizenInput(name=CITIZEN, phone=PHONE)
    )
    setup["ticket"].citizen = citizen
    db.session.commit()


def _contact_views():
    db.session.expire_all()
    return db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "external_view_contact")
    ).all()


def test_an_external_body_asked_to_call_back_sees_the_phone_and_the_number(app, setup, external):
    _with_citizen(setup)
    handoff = hand(setup, Response.CALLBACK, department=external)
    path = _link_path(mails()[0])
    browser = app.test_client()

    page = browser.get(path, environ_base={"REMOTE_ADDR": "192.0.2.7"}).get_data(as_text=True)
    assert "090-1234-5678" in page
    assert f"<dt>相談番号</dt><dd>{setup['ticket'].number}</dd>" in page
    assert CITIZEN not in page  # a call needs the number, not the name

    [row] = _contact_views()
    assert (row.staff_id, row.object_type, row.object_id) == (None, "handoff", str(handoff.id))
    assert row.address == "192.0.2.7"
    assert row.detail == f"department:{external.id} number,phones"
    # No row the external body's visits wrote carries the values themselves.
    for audit_row in db.session.scalars(sa.select(AuditEvent).where(AuditEvent.staff_id.is_(None))):
        text = f"{audit_row.detail} {audit_row.object_id}"
        assert PHONE not in text and "1234" not in text and setup["ticket"].number not in text

    # Revoked: the page shows nothing, and nothing more is audited as seen.
    services.revoke_links(Actor(setup["consultant"]), handoff)
    db.session.commit()
    revoked = browser.get(path)
    assert revoked.status_code == 410
    assert "090-1234-5678" not in revoked.get_data(as_text=True)
    assert len(_contact_views()) == 1


def test_no_contact_for_a_response_that_does_not_need_it_nor_once_answered(app, setup, external):
    _with_citizen(setup)
    hand(setup, Response.VISIT, department=external)
    page = app.test_client().get(_link_path(mails()[0])).get_data(as_text=True)
    assert "1234" not in page and setup["ticket"].number not in page
    assert _contact_views() == []

    callback = hand(setup, Response.CALLBACK, department=external)
    path = _link_path(mails()[1])
    services.finish_external(callback, services.Record("電話しました", "解決"), "消費 太郎")
    db.session.commit()
    page = app.test_client().get(path).get_data(as_text=True)
    assert "1234" not in page and "受付を終了しています" in page
    assert _contact_views() == []
