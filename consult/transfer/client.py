"""The core's side of the link: signed requests to the relay, and the rounds of the worker."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from flask import Flask, current_app

from consult.extensions import db
from consult.transfer import services, signing

log = logging.getLogger("madoguchi.transfer")

POOL_KEY = "madoguchi.transfer.pool"


class LinkDown(Exception):
    """The relay could not be reached or did not answer as the relay: everything waits."""


class Relay:
    """Signed POSTs to the relay over one kept-alive connection pool per app."""

    def __init__(self, app: Flask):
        config = services.settings(app)
        self.key = config.key
        self.base = config.url.rstrip("/") + "/relay/v1"  # MADOGUCHI_RELAY_URL: the relay's root
        self.prefix = urlsplit(self.base).path.rstrip("/")
        pool = app.extensions.get(POOL_KEY)
        if pool is None:
            options = {"ca_certs": config.ca_file} if config.ca_file else {}
            pool = app.extensions[POOL_KEY] = urllib3.PoolManager(
                num_pools=2,
                maxsize=2,
                timeout=urllib3.Timeout(total=config.timeout_seconds),
                retries=False,
                **options,
            )
        self.pool = pool

    def post(self, path: str, data: dict) -> dict:
        body = json.dumps(data, ensure_ascii=False, default=str).encode()
        headers = signing.sign_request(self.key, "POST", self.prefix + path, body)
        headers["Content-Type"] = "application/json"
        try:
            answer = self.pool.request("POST", self.base + path, body=body, headers=headers)
        except urllib3.exceptions.HTTPError as exc:
            raise LinkDown(f"relay unreachable ({type(exc).__name__})") from exc
        if answer.status != 200:
            raise LinkDown(f"relay answered {answer.status}")
        try:
            signing.check_response(
                self.key, headers[signing.NONCE], answer.data, answer.headers.get(signing.SIGNATURE)
            )
        except signing.Refused as exc:
            raise LinkDown(str(exc)) from exc
        return json.loads(answer.data)


@dataclass
class RoundReport:
    pulled: int = 0
    pushed: int = 0
    failed: int = 0
    link_down: str | None = None


def pull(relay: Relay, report: RoundReport) -> bool:
    """One batch of intake: apply, commit, acknowledge. True when the batch was full."""
    app = current_app._get_current_object()
    limit = services.settings().batch_size
    db.session.commit()
    answer = relay.post("/pull", {"limit": limit})
    items = answer.get("items") or []
    if not items:
        return False
    received = services.receive(items)
    db.session.commit()
    report.pulled += received.applied
    report.failed += received.failed
    services.after_apply(app, received.kinds)
    if received.accepted:
        relay.post("/ack", {"ids": received.accepted})
    return len(items) >= limit and not received.failed


def push(relay: Relay, report: RoundReport) -> bool:
    """One batch of what goes out (and the snapshots that changed). True when more waits."""
    limit = services.settings().batch_size
    items = services.outgoing(limit)
    full = len(items) >= limit
    changed = services.snapshots()
    db.session.commit()
    if not items and not changed:
        return False
    answer = relay.post("/push", {"items": items + changed})
    accepted = set(answer.get("accepted") or [])
    services.acknowledge([item["id"] for item in items if item["id"] in accepted])
    services.mark_pushed([item for item in changed if item["id"] in accepted])
    db.session.commit()
    report.pushed += sum(1 for item in items if item["id"] in accepted)
    report.failed += len(items) + len(changed) - len(accepted & {i["id"] for i in items + changed})
    return full


def run_round(max_batches: int = 50, *, do_pull: bool = True, do_push: bool = True) -> RoundReport:
    """Only on the core (MADOGUCHI_ROLE=core).

    Pull everything waiting, then push everything waiting (the worker's task).

    The pull comes first, so the free slots pushed after it count the bookings just taken."""
    if services.role() != "core":
        raise RuntimeError("the transfer runs on the core (MADOGUCHI_ROLE=core)")
    report = RoundReport()
    relay = Relay(current_app._get_current_object())
    started = time.monotonic()
    try:
        if do_pull:
            for _ in range(max_batches):
                if not pull(relay, report):
                    break
        if do_push:
            for _ in range(max_batches):
                if not push(relay, report):
                    break
    except LinkDown as exc:
        db.session.rollback()
        report.link_down = str(exc)
        log.warning("transfer: %s; everything waits for the next round", exc)
    if report.pulled or report.pushed or report.failed:
        log.info(
            "transfer: pulled %s, pushed %s, failed %s in %.0f ms",
            report.pulled,
            report.pushed,
            report.failed,
            (time.monotonic() - started) * 1000,
        )
    return report


def worker_round() -> RoundReport:
    return run_round()
