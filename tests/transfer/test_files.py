"""The file-transfer mode: signed batch files exported on one side, imported on the other."""

from __future__ import annotations

import json

import sqlalchemy as sa

from channels.booking.models import Booking
from channels.line import tasks as line_tasks
from channels.line.models import LineDelivery
from consult.extensions import db
from consult.models import Channel, OutboxMessage, Ticket
from consult.services import outbox
from tests.channels.booking.helpers import slot_in
from tests.transfer.conftest import settle
from tests.transfer.test_booking_zones import book_on_relay
from tests.transfer.test_zones import send_line


def run(app, *args):
    db.session.commit()
    result = app.test_cli_runner().invoke(args=list(args))
    db.session.expire_all()
    return result


def test_batch_files_carry_intake_in_and_mail_out_and_import_once(relay, core, tmp_path):
    assert send_line(relay, "ファイルで運ばれる相談").status_code == 200
    assert book_on_relay(relay, slot_in(7)).status_code == 303
    inbound = tmp_path / "to-core.json"
    with relay.context():
        result = run(relay.app, "transfer", "export", "--out", str(inbound))
        assert result.exit_code == 0, result.output
        assert "2 件" in result.output

    result = run(core, "transfer", "import", str(inbound))
    assert result.exit_code == 0, result.output
    assert "取り込み 2 件" in result.output
    settle()
    line_tasks.worker_task()
    db.session.commit()
    [ticket] = db.session.scalars(sa.select(Ticket).where(Ticket.channel == Channel.LINE)).all()
    assert [e.body for e in ticket.timeline if e.body == "ファイルで運ばれる相談"]
    assert db.session.scalar(sa.select(Booking)).name == "山田 花子"

    # The same file again: nothing changes.
    again = run(core, "transfer", "import", str(inbound))
    assert again.exit_code == 0, again.output
    assert "取り込み 0 件、取り込み済み 2 件" in again.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LineDelivery)) == 1

    # Back to the relay: the confirmation mail, the slots, and what the core has taken.
    outbox.run_once()
    outbound = tmp_path / "to-relay.json"
    result = run(core, "transfer", "export", "--out", str(outbound))
    assert result.exit_code == 0, result.output
    with relay.context():
        result = run(relay.app, "transfer", "import", str(outbound))
        assert result.exit_code == 0, result.output
        assert db.session.scalar(sa.select(sa.func.count()).select_from(LineDelivery)) == 0
        assert db.session.scalar(sa.select(Booking)).name == ""
        [mail] = db.session.scalars(
            sa.select(OutboxMessage).where(OutboxMessage.channel == "email")
        ).all()
        assert mail.recipient == "hanako@example.jp"
        again = run(relay.app, "transfer", "import", str(outbound))
        assert again.exit_code == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 2


def test_a_tampered_or_foreign_file_is_refused(relay, core, tmp_path):
    assert send_line(relay, "改ざんされる相談").status_code == 200
    path = tmp_path / "batch.json"
    with relay.context():
        assert run(relay.app, "transfer", "export", "--out", str(path)).exit_code == 0
    document = json.loads(path.read_text())
    document["batch"]["items"][0]["payload"]["body"] = document["batch"]["items"][0]["payload"][
        "body"
    ].replace("改ざんされる", "書き換えた")
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(document, ensure_ascii=False))
    result = run(core, "transfer", "import", str(tampered))
    assert result.exit_code == 1
    assert "取り込めません" in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LineDelivery)) == 0
    # Its own export fed back to the relay is refused as well.
    with relay.context():
        result = run(relay.app, "transfer", "import", str(path))
        assert result.exit_code == 1
