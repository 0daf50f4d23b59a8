"""Handoffs on the supervisor's dashboard and in the CSV exports (plugged into reports)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import sqlalchemy as sa

from consult import charts
from consult.extensions import db
from consult.models import Citizen, Department, Ticket
from consult.timeutil import format_tokyo
from handoff.models import Handoff, HandoffState, Response
from handoff.services import department_figures


def section(period):
    """Handoffs by department: how many, median minutes to accept and to arrive, bounces."""
    figures = department_figures(period.start_utc, period.end_utc)
    before = {
        f.department: f.handoffs
        for f in department_figures(
            period.previous_year().start_utc, period.previous_year().end_utc
        )
    }
    figures.sort(key=lambda f: (-f.handoffs, f.department))
    items = [(f.department, f.handoffs, before.get(f.department, 0)) for f in figures[:15]]
    return "handoff/report_section.html", {
        "figures": figures,
        "total": sum(f.handoffs for f in figures),
        "bounces": sum(f.bounces for f in figures),
        "chart": charts.hbars(items, title="担当課別の引継ぎ件数（上位）") if items else None,
    }


def rows(period, personal: bool) -> tuple[list[str], Iterable[list]]:
    """Handoffs of the period; never the summary or the record (free text) unless asked."""
    header = [
        "相談番号",
        "依頼日時",
        "引継ぎ先",
        "求める対応",
        "状態",
        "受付日時",
        "到着日時",
        "完了日時",
        "差し戻し",
    ]
    columns = [
        Ticket.number,
        Handoff.created_at,
        Department.name,
        Handoff.response,
        Handoff.state,
        Handoff.accepted_at,
        Handoff.arrived_at,
        Handoff.done_at,
        Handoff.declined_at,
    ]
    if personal:
        header += ["伝達事項", "対応内容", "結果"]
        columns += [Handoff.summary, Handoff.record_action, Handoff.record_outcome]
        columns += [Citizen.use_stopped]
    query = (
        sa.select(*columns)
        .select_from(Handoff)
        .join(Ticket, Ticket.id == Handoff.ticket_id)
        .join(Department, Department.id == Handoff.department_id)
        .where(Handoff.created_at >= period.start_utc, Handoff.created_at < period.end_utc)
        .order_by(Handoff.created_at, Handoff.id)
        .execution_options(yield_per=2000)
    )
    secrets = None
    if personal:
        from consult.services import protection

        query = query.outerjoin(Citizen, Citizen.id == Ticket.citizen_id)
        # 支援措置: no protected person's whereabouts in the free text of an export.
        secrets = protection.all_protected_secrets()

    def personal_values(values) -> list:
        """The free text, blank for a person whose use is stopped (利用停止)."""
        *texts, stopped = values
        if stopped:
            return ["（利用停止）", "", ""]
        return [secrets.scrub(t) if t and secrets else t for t in texts]

    def generate() -> Iterator[list]:
        for row in db.session.execute(query):
            values = [
                row[0],
                format_tokyo(row[1]),
                row[2],
                Response(row[3]).label,
                HandoffState(row[4]).label,
                format_tokyo(row[5]),
                format_tokyo(row[6]),
                format_tokyo(row[7]),
                "あり" if row[8] else "",
                *(personal_values(row[9:]) if personal else ()),
            ]
            yield ["" if v is None else v for v in values]

    return header, generate()
