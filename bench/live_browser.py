"""In Chromium: from the officer's click (受け付ける / 窓口へ向かいます) to the consultant's ticket
page changing, over the live channel.

    MADOGUCHI_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test \\
      .venv/bin/python bench/live_browser.py --db both --reps 20

Serves the app with gunicorn's gthread worker (pages and /live/ on one server, as `make run`
does), opens two browser contexts in Debian's Chromium (the officer, the consultant), and for
each repetition hands a fresh walk-in to the officer's department (来庁して対応); the consultant
keeps the ticket page open, the officer opens the handoff and clicks, alternately, 受け付ける and
窓口へ向かいます. The click time is taken in the officer's page (a capturing click listener) and
the change in the consultant's page (a MutationObserver on the handoff panel); both read the
same clock (Date.now). Prints p50/p95/max per database. With --screenshot DIR it also saves
the officer's inbox with a come-to-counter handoff (handoff-inbox-visit.png).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    VIEWPORT,
    browser_sign_in,
    build_app,
    free_port,
    kinds,
    launch_chromium,
    log,
    percentiles,
    scratch,
    start_gunicorn,
    stop,
)

PASSWORD = "bench-password-2026"
# Kept in sessionStorage: the click submits a form, and the officer's page navigates.
CLICK_LISTENER = """() => {
  sessionStorage.removeItem("bench.clickAt");
  document.addEventListener("click", () => {
    sessionStorage.setItem("bench.clickAt", String(Date.now()));
  }, true);
}"""
WATCH = """(label) => {
  window.__changedAt = null;
  const panel = document.getElementById("handoffs");
  const seen = () => panel.querySelector(".handoff-live").textContent.includes(label);
  if (seen()) { window.__changedAt = -1; return; }
  new MutationObserver((_, observer) => {
    if (seen()) { window.__changedAt = Date.now(); observer.disconnect(); }
  }).observe(panel, { childList: true, subtree: true, characterData: true });
}"""


def _setup(app) -> dict:
    from consult.extensions import db
    from consult.services import staff as staff_service

    with app.app_context():
        department = staff_service.create_department(None, code="shimin", name="市民課")
        for login, role, display in (
            ("consultant", "consultant", "やまだ / Yamada"),
            ("officer", "officer", "すずき / Suzuki"),
        ):
            staff_service.create_staff(
                None,
                login=login,
                full_name=f"{login} 太郎",
                display_name=display,
                role=role,
                password=PASSWORD,
                department_id=department.id if role == "officer" else None,
            )
        db.session.commit()
        return {"department_id": department.id}


def _hand_over(app, department_id: int, n: int) -> tuple[str, int]:
    """A walk-in at the counter handed to the department (来庁して対応): (number, handoff id)."""
    import sqlalchemy as sa

    from channels.counter import services as counter
    from consult.extensions import db
    from consult.models import Staff
    from consult.services.actor import Actor
    from handoff import services as handoffs
    from handoff.models import Response

    with app.app_context():
        staff = db.session.scalar(sa.select(Staff).where(Staff.login == "consultant"))
        actor = Actor(staff, "127.0.0.1")
        visit = counter.receive(
            actor,
            counter.WalkIn(category_id=None, room=1 + n % 3, first_note=f"転入届について {n}"),
        )
        [handoff] = handoffs.create(
            actor,
            visit.ticket,
            [
                handoffs.Request(
                    department_id, "転入届の記載を窓口で確認してください。", Response.VISIT
                )
            ],
        )
        db.session.commit()
        found = visit.ticket.number, handoff.id
        db.session.remove()
        return found


def run(kind: str, reps: int, screenshot: Path | None) -> dict:
    from playwright.sync_api import expect, sync_playwright

    with scratch(kind, "live-browser") as (tmp, url):
        app = build_app(url, tmp)
        from flask_migrate import upgrade

        with app.app_context():
            upgrade()
        ids = _setup(app)
        port = free_port()
        server = start_gunicorn(
            url,
            tmp,
            port,
            ["-k", "gthread", "-w", "2", "--threads", "20"],
            env={"MADOGUCHI_PASSWORD_HASH_COST": "fast"},
        )
        base = f"http://127.0.0.1:{port}"
        times: list[float] = []
        try:
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                officer_context = browser.new_context(locale="ja-JP", viewport=VIEWPORT)
                desk_context = browser.new_context(locale="ja-JP", viewport=VIEWPORT)
                officer = officer_context.new_page()
                desk = desk_context.new_page()
                browser_sign_in(officer, base, "officer", PASSWORD)
                browser_sign_in(desk, base, "consultant", PASSWORD)
                if screenshot is not None:
                    number, _ = _hand_over(app, ids["department_id"], 0)
                    officer.goto(f"{base}/handoffs")
                    expect(officer.locator("[data-handoff-place]").first).to_be_visible()
                    screenshot.mkdir(parents=True, exist_ok=True)
                    path = screenshot / "handoff-inbox-visit.png"
                    officer.screenshot(path=str(path))
                    log(f"{path}")
                log(f"{kind}: {reps} clicks")
                for n in range(reps + 2):  # the first two warm the pages up and are not counted
                    number, handoff_id = _hand_over(app, ids["department_id"], n + 1)
                    accept = n % 2 == 0
                    label = "受付済" if accept else "向かっています"
                    desk.goto(f"{base}/tickets/{number}")
                    expect(desk.locator("#handoffs")).to_contain_text("依頼中")
                    expect(desk.locator("body")).to_have_attribute("data-live-state", "open")
                    desk.evaluate(WATCH, label)
                    officer.goto(f"{base}/handoffs/{handoff_id}")
                    officer.evaluate(CLICK_LISTENER)
                    if accept:
                        officer.get_by_role("button", name="受け付ける").click()
                    else:
                        officer.locator("input[name=eta_minutes]").fill("5")
                        officer.get_by_role("button", name="窓口へ向かいます").click()
                    officer.wait_for_load_state()
                    clicked = officer.evaluate("Number(sessionStorage.getItem('bench.clickAt'))")
                    deadline = time.monotonic() + 10
                    changed = None
                    while time.monotonic() < deadline:
                        changed = desk.evaluate("window.__changedAt")
                        if changed:
                            break
                        desk.wait_for_timeout(20)
                    if not changed or changed < 0 or not clicked:
                        raise RuntimeError(f"{kind}: the ticket page did not change ({label})")
                    if n >= 2:
                        times.append(float(changed - clicked))
                browser.close()
        finally:
            stop(server)
        figures = percentiles(times)
        log(f"{kind}: click → ticket page changed: {figures}")
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--screenshot", type=Path, default=None)
    args = parser.parse_args()
    results = {kind: run(kind, args.reps, args.screenshot) for kind in kinds(args.db)}
    print()
    print("officer's click → consultant's ticket page changed (Chromium, ms)")
    print(f"{'database':<12}{'n':>4}{'p50':>8}{'p95':>8}{'max':>8}")
    for kind, figures in results.items():
        print(
            f"{kind:<12}{args.reps:>4}{figures['p50']:>8.0f}{figures['p95']:>8.0f}"
            f"{figures['max']:>8.0f}"
        )


if __name__ == "__main__":
    main()
