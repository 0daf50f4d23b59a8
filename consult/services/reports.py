"""The supervisor's reports: what the centre did in a period, against the same period a year before.

The ticket figures (volume by day and channel, by category, long sessions) are read from the
rollup (report_daily, report_category_daily, report_session_daily; see
consult.services.report_rollup), which the ticket services keep in step in the same transaction:
whole months come from month rows and a period's ragged ends from day rows, so a fiscal year is a
few hundred rows whatever the number of tickets. Open tickets by age are counted from the tickets
(covering index ix_ticket_open_age). Days are Japanese days: the fiscal year turns at 1 April
00:00 Asia/Tokyo, which is 31 March 15:00 UTC.

The dashboard is a list of sections in the plugin registry (consult.plugins); the handoff package
adds its own (response times by department) and its CSV export the same way.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa

from consult import charts, plugins
from consult.extensions import db
from consult.models import (
    Category,
    Channel,
    Citizen,
    Grain,
    Incident,
    IncidentCategory,
    IncidentCategoryMark,
    LongSessionAlert,
    ReportCategoryDaily,
    ReportDaily,
    ReportSessionDaily,
    Role,
    Status,
    Ticket,
)
from consult.services import audit, report_rollup
from consult.services.actor import Actor
from consult.services.errors import ValidationFailed
from consult.services.report_rollup import NO_CATEGORY
from consult.timeutil import (
    TOKYO,
    fiscal_year,
    format_tokyo,
    in_range,
    tokyo_today,
    utcnow,
)

REPORT_ROLES = (Role.SUPERVISOR, Role.ADMIN)
QUARTER_MONTHS = {1: (4, 6), 2: (7, 9), 3: (10, 12), 4: (1, 3)}
MAX_DAYS = 366 * 5 + 1


@dataclass(frozen=True)
class Period:
    """Japanese calendar days, both ends included."""

    start: date
    end: date
    label: str

    @property
    def start_utc(self) -> datetime:
        return datetime.combine(self.start, time(), TOKYO)

    @property
    def end_utc(self) -> datetime:
        """Exclusive: the first moment after the last day."""
        return datetime.combine(self.end + timedelta(days=1), time(), TOKYO)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous_year(self) -> Period:
        return Period(_year_before(self.start), _year_before(self.end), f"{self.label}の前年同期")


def _year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def fiscal_period(year: int, quarter: int | None = None) -> Period:
    """2026年度 = 2026-04-01 … 2027-03-31; its 第4四半期 = 2027-01-01 … 2027-03-31."""
    if quarter is None:
        return Period(date(year, 4, 1), date(year + 1, 3, 31), f"{year}年度")
    if quarter not in QUARTER_MONTHS:
        raise ValidationFailed("四半期は1〜4で指定してください。")
    first, last = QUARTER_MONTHS[quarter]
    calendar_year = year + 1 if quarter == 4 else year
    end = (
        date(calendar_year, last + 1, 1) - timedelta(days=1)
        if last < 12
        else date(calendar_year, 12, 31)
    )
    return Period(date(calendar_year, first, 1), end, f"{year}年度 第{quarter}四半期")


def parse_period(args: dict) -> Period:
    """From the query string: ?fy=2026[&q=1] or ?start=2026-04-01&end=2026-10-31.

    No period: the current fiscal year. Bad input raises ValidationFailed with a Japanese message.
    """
    start, end = (args.get("start") or "").strip(), (args.get("end") or "").strip()
    if start or end:
        try:
            first, last = date.fromisoformat(start), date.fromisoformat(end)
        except ValueError as exc:
            raise ValidationFailed(
                "期間は開始日と終了日を YYYY-MM-DD の形で入力してください。"
            ) from exc
        if not (in_range(first) and in_range(last)):
            raise ValidationFailed(
                "期間は2000年1月1日から2100年12月31日までの日付で指定してください。"
            )
        if last < first:
            raise ValidationFailed("終了日は開始日と同じか、それより後にしてください。")
        if (last - first).days >= MAX_DAYS:
            raise ValidationFailed("期間は5年以内で指定してください。")
        return Period(first, last, f"{first:%Y/%m/%d}〜{last:%Y/%m/%d}")
    fy = (args.get("fy") or "").strip()
    quarter = (args.get("q") or "").strip()
    if not fy:
        return fiscal_period(fiscal_year(tokyo_today()))
    if not fy.isdigit() or not 2000 <= int(fy) <= 2100:
        raise ValidationFailed("年度は西暦の4桁で指定してください（例：2026）。")
    if quarter and (not quarter.isdigit() or int(quarter) not in QUARTER_MONTHS):
        raise ValidationFailed("四半期は1〜4で指定してください。")
    return fiscal_period(int(fy), int(quarter) if quarter else None)


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _in(period: Period):
    return sa.and_(Ticket.created_at >= period.start_utc, Ticket.created_at < period.end_utc)


# --- figures (aggregate SQL) -------------------------------------------------------------------


def _rows(model, period: Period):
    return report_rollup.in_period(model, period.start, period.end)


def total(period: Period) -> int:
    return int(
        db.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(ReportDaily.tickets), 0)).where(
                _rows(ReportDaily, period)
            )
        )
    )


def by_channel(period: Period) -> dict[str, int]:
    rows = db.session.execute(
        sa.select(ReportDaily.channel, sa.func.sum(ReportDaily.tickets))
        .where(_rows(ReportDaily, period))
        .group_by(ReportDaily.channel)
    )
    return {Channel(channel).value: int(count) for channel, count in rows if count}


def _key(value):
    if isinstance(value, Channel):
        return value.value
    return None if value == NO_CATEGORY else value


def by_day_and(period: Period, column) -> dict[tuple[date, object], int]:
    """Tickets per Japanese day and `column` (Ticket.channel or Ticket.category_id)."""
    model, grouped = (
        (ReportDaily, ReportDaily.channel)
        if column.key == "channel"
        else (ReportCategoryDaily, ReportCategoryDaily.category_key)
    )
    rows = db.session.execute(
        sa.select(model.day, grouped, sa.func.sum(model.tickets))
        .where(model.grain == Grain.DAY, model.day >= period.start, model.day <= period.end)
        .group_by(model.day, grouped)
    )
    return {(_as_date(d), _key(key)): int(n) for d, key, n in rows if n}


def by_category(period: Period) -> dict[int | None, int]:
    rows = db.session.execute(
        sa.select(ReportCategoryDaily.category_key, sa.func.sum(ReportCategoryDaily.tickets))
        .where(_rows(ReportCategoryDaily, period))
        .group_by(ReportCategoryDaily.category_key)
    )
    return {_key(key): int(n) for key, n in rows if n}


AGE_BUCKETS = [(1, "1日以内"), (7, "2〜7日"), (30, "8〜30日"), (None, "31日以上")]


def open_by_age(now: datetime | None = None) -> list[tuple[str, int]]:
    """Open tickets now, by how long ago they arrived (one pass with CASE)."""
    now = now or utcnow()
    cases, lower = [], None
    for days, label in AGE_BUCKETS:
        if days is None:
            condition = Ticket.created_at < now - timedelta(days=lower)
        else:
            condition = Ticket.created_at >= now - timedelta(days=days)
            if lower is not None:
                condition = sa.and_(condition, Ticket.created_at < now - timedelta(days=lower))
        cases.append(sa.func.sum(sa.case((condition, 1), else_=0)).label(label))
        lower = days
    row = db.session.execute(sa.select(*cases).where(Ticket.is_open.is_(True))).one()
    return [(label, int(value or 0)) for (_, label), value in zip(AGE_BUCKETS, row, strict=True)]


def incidents_by_category(period: Period) -> dict[str, int]:
    rows = db.session.execute(
        sa.select(IncidentCategoryMark.category, sa.func.count())
        .join(Incident, Incident.id == IncidentCategoryMark.incident_id)
        .where(Incident.occurred_at >= period.start_utc, Incident.occurred_at < period.end_utc)
        .group_by(IncidentCategoryMark.category)
    )
    return {category.value: count for category, count in rows}


def long_sessions(period: Period, thresholds: list[int]) -> dict[str, list[int]]:
    """Sessions (counter, phone…) per channel that ran past each threshold (whole minutes)."""
    minutes, count = ReportSessionDaily.minutes, ReportSessionDaily.sessions
    columns = [sa.func.sum(sa.case((minutes >= m, count), else_=0)) for m in thresholds]
    rows = db.session.execute(
        sa.select(ReportSessionDaily.channel, sa.func.sum(count), *columns)
        .where(_rows(ReportSessionDaily, period))
        .group_by(ReportSessionDaily.channel)
    )
    return {Channel(row[0]).value: [int(v or 0) for v in row[2:]] for row in rows if row[1]}


def long_session_alert_count(period: Period) -> int:
    return db.session.scalar(
        sa.select(sa.func.count(LongSessionAlert.id)).where(
            LongSessionAlert.alerted_at >= period.start_utc,
            LongSessionAlert.alerted_at < period.end_utc,
        )
    )


# --- buckets -----------------------------------------------------------------------------------


def granularity(period: Period, asked: str | None) -> str:
    if asked in {"day", "week", "month"}:
        return asked
    if period.days <= 62:
        return "day"
    if period.days <= 190:
        return "week"
    return "month"


def bucket_of(day: date, by: str) -> date:
    if by == "week":
        return day - timedelta(days=day.weekday())  # weeks start on Monday
    if by == "month":
        return day.replace(day=1)
    return day


def buckets(period: Period, by: str) -> list[date]:
    seen, day = [], period.start
    while day <= period.end:
        key = bucket_of(day, by)
        if not seen or seen[-1] != key:
            seen.append(key)
        day += timedelta(days=1)
    return seen


def bucket_label(day: date, by: str) -> str:
    if by == "month":
        return f"{day.year}/{day.month}"
    return f"{day.month}/{day.day}"


# --- the built-in sections ---------------------------------------------------------------------


def _change(now: int, before: int) -> str:
    if not before:
        return "—"
    return f"{(now - before) / before * 100:+.0f}%"


def volume_section(period: Period, by: str | None = None):
    previous = period.previous_year()
    by = granularity(period, by)
    keys = buckets(period, by)
    index = {key: i for i, key in enumerate(keys)}
    series_values: dict[str, list[int]] = {c.value: [0] * len(keys) for c in Channel}
    # One scan gives both the chart and the period's totals by channel.
    channels_now: dict[str, int] = defaultdict(int)
    for (day, channel), count in by_day_and(period, Ticket.channel).items():
        series_values[channel][index[bucket_of(day, by)]] += count
        channels_now[channel] += count
    channels_before = by_channel(previous)
    now_total, before_total = sum(channels_now.values()), sum(channels_before.values())
    series = [(Channel(c).label, v) for c, v in series_values.items() if any(v)]
    unit = {"day": "日", "week": "週", "month": "月"}[by]
    chart = charts.stacked_bars(
        [bucket_label(k, by) for k in keys],
        series or [("相談", [0] * len(keys))],
        title=f"{unit}ごとの相談件数（経路別）",
    )
    rows = [
        (c.label, channels_now.get(c.value, 0), channels_before.get(c.value, 0)) for c in Channel
    ]
    return "consult/reports/_volume.html", {
        "total": now_total,
        "previous_total": before_total,
        "change": _change(now_total, before_total),
        "previous": previous,
        "rows": [(label, n, b, _change(n, b)) for label, n, b in rows],
        "chart": chart,
        "by": by,
        "unit": unit,
    }


def category_section(period: Period, top: int = 12):
    now, before = by_category(period), by_category(period.previous_year())
    names = dict(db.session.execute(sa.select(Category.id, Category.name)).all())
    ordered = sorted(now.items(), key=lambda item: (-item[1], names.get(item[0], "")))
    items = [(names.get(cid, "未分類"), n, before.get(cid, 0)) for cid, n in ordered[:top]]
    return "consult/reports/_categories.html", {
        "items": items,
        "chart": charts.hbars(items, title="分類別の相談件数（上位）"),
    }


def open_age_section(period: Period):
    items = open_by_age()
    return "consult/reports/_open_age.html", {
        "items": items,
        "total": sum(n for _, n in items),
        "chart": charts.hbars(
            [(label, n, None) for label, n in items], title="未完了の相談（受付からの経過日数）"
        ),
    }


def incident_section(period: Period):
    now, before = incidents_by_category(period), incidents_by_category(period.previous_year())
    items = [
        (c.label, now.get(c.value, 0), before.get(c.value, 0))
        for c in IncidentCategory
        if now.get(c.value) or before.get(c.value)
    ]
    return "consult/reports/_incidents.html", {
        "items": items,
        "chart": charts.hbars(items, title="カスハラ事案（分類別・複数計上）") if items else None,
    }


def long_session_section(period: Period):
    from consult.services.safety import long_session_thresholds

    thresholds = long_session_thresholds()
    rows = long_sessions(period, thresholds)
    return "consult/reports/_long_sessions.html", {
        "thresholds": thresholds,
        "rows": [(Channel(c).label, values) for c, values in rows.items()],
        "alerts": long_session_alert_count(period),
    }


BUILTIN_SECTIONS = tuple(
    plugins.ReportSection(name, order, render)
    for name, order, render in (
        ("volume", 10, volume_section),
        ("categories", 20, category_section),
        ("open_age", 30, open_age_section),
        ("incidents", 50, incident_section),
        ("long_sessions", 60, long_session_section),
    )
)


def render_sections(actor: Actor, period: Period, by: str | None = None) -> list[tuple[str, dict]]:
    actor.require(*REPORT_ROLES)
    rendered = []
    for section in plugins.registry().report_sections:
        result = volume_section(period, by) if section.name == "volume" else section.render(period)
        if result:
            rendered.append(result)
    return rendered


# --- CSV ---------------------------------------------------------------------------------------


def _personal_columns(values) -> list:
    """件名・氏名・ふりがな・住所, left out for a person whose use is stopped (利用停止) and the
    address for a protected person (支援措置): the row still counts in the figures."""
    if not values:
        return []
    subject, name, kana, address, protected, stopped = values
    if stopped:
        return ["（利用停止）", "", "", ""]
    if protected:
        address = "（非表示）"
    return [subject, name, kana, address]


def ticket_rows(period: Period, personal: bool) -> tuple[list[str], Iterable[list]]:
    """Tickets of the period. Without `personal`: no subject, citizen or free text at all."""
    header = ["相談番号", "受付日時", "経路", "分類", "状態", "完了日時", "対応時間（秒）"]
    columns = [
        Ticket.number,
        Ticket.created_at,
        Ticket.channel,
        Category.name,
        Ticket.status,
        Ticket.closed_at,
        Ticket.duration_seconds,
    ]
    if personal:
        header += ["件名", "相談者氏名", "ふりがな", "住所"]
        columns += [Ticket.subject, Citizen.name, Citizen.kana, Citizen.address]
        columns += [Citizen.protected, Citizen.use_stopped]
    query = (
        sa.select(*columns)
        .select_from(Ticket)
        .outerjoin(Category, Category.id == Ticket.category_id)
        .where(_in(period))
        .order_by(Ticket.created_at, Ticket.id)
        .execution_options(yield_per=2000)
    )
    if personal:
        query = query.outerjoin(Citizen, Citizen.id == Ticket.citizen_id)

    def rows() -> Iterator[list]:
        for row in db.session.execute(query):
            values = [
                row[0],
                format_tokyo(row[1]),
                Channel(row[2]).label,
                row[3] or "未分類",
                Status(row[4]).label,
                format_tokyo(row[5]),
                "" if row[6] is None else row[6],
                *_personal_columns(row[7:]),
            ]
            yield ["" if v is None else v for v in values]

    return header, rows()


def export_csv(actor: Actor, name: str, period: Period, personal: bool) -> Iterator[str]:
    """UTF-8 with a BOM (Excel opens Japanese correctly); personal data for administrators only,
    and that export is audited."""
    staff = actor.require(*REPORT_ROLES)
    export = next((e for e in plugins.registry().report_exports if e.name == name), None)
    if export is None:
        raise ValidationFailed("指定された出力はありません。")
    if personal and staff is not None and staff.role != Role.ADMIN:
        raise ValidationFailed("個人情報を含む出力は管理者だけが行えます。")
    audit.record(
        actor,
        "export",
        name,
        None,
        f"csv {period.start}..{period.end} personal={'yes' if personal else 'no'}",
    )
    header, rows = export.rows(period, personal)

    def generate() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(header)
        yield "\ufeff" + buffer.getvalue()
        for count, row in enumerate(rows, 1):
            buffer.seek(0)
            buffer.truncate()
            writer.writerow([_safe_cell(v) for v in row])
            yield buffer.getvalue()
            del count

    return generate()


def _safe_cell(value):
    """Spreadsheet formula injection: a cell that starts with = + - @ is shown as text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def month_table(period: Period) -> list[tuple[str, int]]:
    """Per-month totals, for the printed summary's table."""
    counts: dict[date, int] = defaultdict(int)
    for (day, _channel), n in by_day_and(period, Ticket.channel).items():
        counts[day.replace(day=1)] += n
    return [(f"{k.year}年{k.month}月", counts.get(k, 0)) for k in buckets(period, "month")]


BUILTIN_EXPORTS = (plugins.ReportExport("tickets", "相談", ticket_rows, order=10),)
