"""The link over HTTPS, as a city runs it: the relay serves TLS with a certificate from the
city's own CA, and the core trusts that CA alone (MADOGUCHI_RELAY_CA_FILE)."""

from __future__ import annotations

import requests
import sqlalchemy as sa

from channels.line import tasks as line_tasks
from channels.line.models import LineDelivery
from consult.extensions import db
from consult.models import Channel, EntryKind, Ticket
from consult.transfer import client
from tests.channels.line.conftest import body_of, text_event
from tests.channels.line.fake_line import sign
from tests.transfer.conftest import core_settings, settle


def test_the_core_pulls_through_https_trusting_only_the_citys_ca(relay, app_factory, tls_pki):
    relay.stop()
    relay.start(ssl_context=tls_pki.server_context())
    assert relay.url.startswith("https://127.0.0.1:")
    body = body_of(text_event("暗号化された経路で届く相談"))
    posted = requests.post(
        relay.url + "/channels/line/webhook",
        data=body.encode(),
        headers={"Content-Type": "application/json", "X-Line-Signature": sign(body)},
        timeout=10,
        verify=str(tls_pki.ca_file),
    )
    assert posted.status_code == 200

    # A core that trusts another CA does not talk to this server: nothing crosses.
    stranger = app_factory(**core_settings(relay.url, RELAY_CA_FILE=str(tls_pki.other_ca_file)))
    with stranger.app_context():
        report = client.run_round()
        assert report.link_down and "SSL" in report.link_down
        assert report.pulled == 0
        db.session.remove()
    with relay.context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(LineDelivery)) == 1

    # The core with the city's CA pulls it over HTTPS, and the relay then holds nothing.
    core = app_factory(**core_settings(relay.url, RELAY_CA_FILE=str(tls_pki.ca_file)))
    with core.app_context():
        report = client.run_round()
        assert report.link_down is None and report.pulled == 1
        settle()
        line_tasks.worker_task()
        db.session.commit()
        [ticket] = db.session.scalars(sa.select(Ticket).where(Ticket.channel == Channel.LINE))
        assert [e.body for e in ticket.timeline if e.kind == EntryKind.MESSAGE_IN] == [
            "暗号化された経路で届く相談"
        ]
        db.session.remove()
    with relay.context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(LineDelivery)) == 0
