"""The overview's rollup (handoff_daily) always equals the figures counted from the handoffs."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from consult.extensions import db
from consult.models import Channel
from consult.rollup import ranges
from consult.services import staff as staff_service
from consult.services import tickets
from consult.services.actor import Actor
from consult.services.errors import InvalidTransition
from consult.timeutil import TOKYO
from handoff import rollup, services
from handoff.models import Handoff, HandoffState, Response
from handoff.services import figures
from tests.handoff.clock import set_clock


def tokyo(*args) -> datetime:
    return datetime(*args, tzinfo=TOKYO)


class Clock:
    """The handoff services' clock, moved by the test (tests.handoff.clock)."""

    def __init__(self, monkeypatch, start: datetime):
        self.now = start
        set_clock(monkeypatch, lambda: self.now)

    def at(self, moment: datetime) -> Clock:
        self.now = moment
        return self

    def after(self, **delta) -> Clock:
        self.now += timedelta(**delta)
        return self


def build_centre(tag: str = "") -> dict:
    """Two departments with an officer each, an external body, a consultant (through services)."""
    made = {}
    for key, external in (("shimin", False), ("zeimu", False), ("outside", True)):
        made[key] = staff_service.create_department(
            None,
            code=f"{key}{tag}",
            name=f"{key}{tag}課",
            is_external=external,
            email=f"{key}@city.example.jp",
        )
    db.session.flush()
    for key in ("shimin", "zeimu"):
        made[f"{key}_officer"] = Actor(
            staff_service.create_staff(
                None,
                login=f"{key}-officer{tag}",
                full_name="試験 太郎",
                display_name="しけん / Shiken",
                role="officer",
                password="correct-horse-battery",
                department_id=made[key].id,
            )
        )
    made["desk"] = Actor(
        staff_service.create_staff(
            None,
            login=f"desk{tag}",
            full_name="試験 花子",
            display_name="しけん / Shiken",
            role="consultant",
            password="correct-horse-battery",
        )
    )
    db.session.commit()
    return made


def build_handoffs(centre: dict, clock: Clock, days: list[date]) -> list[Handoff]:
    """Handoffs in every state on each day, some requested just before Tokyo midnight."""
    desk = centre["desk"]
    made = []

    def hand(key: str, response=Response.VISIT) -> Handoff:
        ticket = tickets.create_ticket(desk, channel=Channel.COUNTER, subject="転入の手続き")
        [handoff] = services.create(
            desk, ticket, [services.Request(centre[key].id, "窓口で確認してください。", response)]
        )
        db.session.commit()
        made.append(handoff)
        return handoff

    record = services.Record("説明しました", "解決")
    for index, day in enumerate(days):
        shimin, zeimu = centre["shimin_officer"], centre["zeimu_officer"]
        # Just before midnight: accepted and arrived on the next Tokyo day, counted on this one.
        clock.at(tokyo(day.year, day.month, day.day, 23, 50, 10))
        late = hand("shimin")
        clock.after(minutes=12, seconds=30)  # exactly half a minute: rounds up to 13
        services.accept(shimin, late)
        clock.after(minutes=7 + index)
        services.arrive(shimin, late)
        clock.after(minutes=20)
        services.finish(shimin, late, record)
        db.session.commit()

        clock.at(tokyo(day.year, day.month, day.day, 10, 0, 0, 123456))
        waiting = hand("shimin")  # stays requested
        on_the_way = hand("zeimu")
        bounced = hand("zeimu", Response.CALLBACK)
        accepted_then_declined = hand("shimin", Response.CALLBACK)
        cancelled = hand("shimin")
        written = hand("outside", Response.WRITTEN)
        refused = hand("outside", Response.WRITTEN)
        clock.after(minutes=3 + index, seconds=29, microseconds=999000)  # rounds down
        services.on_the_way(zeimu, on_the_way, 5)  # accepts on the way
        services.decline(zeimu, bounced, "所管外です")
        services.accept(shimin, accepted_then_declined)
        services.accept(shimin, cancelled)
        db.session.commit()
        clock.after(minutes=4)
        services.arrive(zeimu, on_the_way)
        services.decline(shimin, accepted_then_declined, "福祉課の所管でした")
        services.cancel(desk, cancelled, "相談者が帰られました")
        services.reissue_link(desk, written)
        services.add_information(desk, waiting, "追加の書類があります")
        db.session.commit()
        clock.after(hours=26)
        services.finish_external(written, record, "消費 太郎")
        services.decline_external(refused, "当機関では扱えません")
        db.session.commit()
        assert waiting.state == HandoffState.REQUESTED
    return made


def assert_in_step() -> None:
    db.session.expire_all()
    assert rollup.stored() == rollup.recount()


def assert_figures_agree(start: datetime, end: datetime) -> list:
    from_rollup = services.department_figures(start, end)
    assert from_rollup == figures._department_figures_from_rows(start, end), (start, end)
    return from_rollup


DAYS = [date(2026, 10, 30), date(2026, 10, 31), date(2026, 11, 1), date(2026, 11, 30)]


def test_the_rollup_follows_every_step_and_equals_the_rows(app, monkeypatch):
    centre = build_centre()
    clock = Clock(monkeypatch, tokyo(2026, 10, 30, 9, 0))
    made = build_handoffs(centre, clock, DAYS)
    assert_in_step()

    # A failed step and a rolled-back one change nothing.
    done = made[0]
    with pytest.raises(InvalidTransition):
        services.accept(centre["shimin_officer"], done)
    db.session.rollback()
    requested = next(h for h in made if h.state == HandoffState.REQUESTED)
    services.accept(centre["shimin_officer"], requested)
    db.session.flush()
    db.session.rollback()
    assert_in_step()

    # A data fix outside the services: a timestamp cleared, another moved, a department changed.
    arrived = next(h for h in reversed(made) if h.arrived_at is not None)
    arrived.arrived_at = None
    moved = next(h for h in made[1:] if h.accepted_at is not None and h.id != arrived.id)
    moved.accepted_at = moved.accepted_at + timedelta(minutes=42)
    db.session.commit()
    db.session.expire_all()  # the next change is made to an object read afresh
    bounced = next(h for h in made if h.state == HandoffState.DECLINED and h.accepted_at)
    assert bounced.department_id == centre["shimin"].id
    bounced.department = centre["zeimu"]
    db.session.commit()
    assert_in_step()

    # Whole days (month rows and day rows), one day, and arbitrary moments (part-days).
    periods = [
        (tokyo(2026, 10, 1), tokyo(2026, 12, 1)),  # two whole months
        (tokyo(2026, 10, 30), tokyo(2026, 12, 2)),  # ragged days and a whole month
        (tokyo(2026, 10, 31), tokyo(2026, 11, 1)),  # one day
        (tokyo(2026, 10, 30, 23, 50, 11), tokyo(2026, 11, 30, 10, 0)),  # part-days at both ends
        (tokyo(2026, 10, 30, 12), tokyo(2026, 10, 31, 1)),  # no whole day at all
        (tokyo(2025, 10, 1), tokyo(2025, 11, 1)),  # nothing
    ]
    for start, end in periods:
        assert_figures_agree(start, end)

    figures = {f.department: f for f in assert_figures_agree(*periods[0])}
    assert sum(f.handoffs for f in figures.values()) == 8 * len(DAYS)
    assert figures["shimin課"].handoffs == 4 * len(DAYS) - 1  # one moved to 税務課
    assert figures["zeimu課"].bounces + figures["shimin課"].bounces == 2 * len(DAYS)
    assert figures["outside課"].bounces == len(DAYS)
    assert figures["outside課"].median_accept_minutes is not None
    # The late handoff of the first day alone: 12 min 30 s to accept rounds up to 13.
    figures = services.department_figures(tokyo(2026, 10, 30, 23), tokyo(2026, 10, 31))
    [late] = [f for f in figures if f.handoffs]  # the others: only overdue now
    assert late.median_accept_minutes == 13.0 and late.median_arrive_minutes == 20.0


def test_a_whole_year_reads_the_month_rows(app, monkeypatch):
    centre = build_centre()
    clock = Clock(monkeypatch, tokyo(2026, 1, 1, 9, 0))
    build_handoffs(centre, clock, [date(2026, 1, 15), date(2026, 6, 30), date(2026, 7, 1)])
    assert ranges(date(2026, 1, 10), date(2026, 7, 5))[0][0].value == "month"
    for start, end in (
        (tokyo(2026, 1, 10), tokyo(2026, 7, 6)),
        (tokyo(2026, 1, 1), tokyo(2027, 1, 1)),
        (tokyo(2026, 6, 30, 23, 55), tokyo(2026, 7, 2)),
    ):
        assert_figures_agree(start, end)
    rebuilt = rollup.rebuild()
    assert rebuilt == 8 * 3
    assert_in_step()


def test_rebuild_from_the_command_line_after_a_write_around_the_orm(app, monkeypatch):
    centre = build_centre()
    build_handoffs(centre, Clock(monkeypatch, tokyo(2026, 10, 30, 9, 0)), DAYS[:1])
    db.session.execute(sa.update(Handoff).values(arrived_at=None))  # around the flush hook
    db.session.commit()
    assert rollup.stored() != rollup.recount()
    result = app.test_cli_runner().invoke(args=["handoffs", "rebuild"])
    assert result.exit_code == 0 and "引継ぎ8件" in result.output, result.output
    assert_in_step()
