"""Where other packages plug into the kernel without consult importing them.

A channel adds a panel to the ticket page (its own details, e.g. the phone log) and actions to
the ticket page; the navigation gets links from the packages that create_app() registered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from consult.models import Ticket


@dataclass(frozen=True)
class TicketPanel:
    """Returns (template, context) for a ticket, or None when it has nothing to show."""

    name: str
    render: Callable[[Ticket], tuple[str, dict] | None]


@dataclass(frozen=True)
class NavLink:
    endpoint: str
    label: str
    roles: tuple[str, ...]
    order: int = 100


ticket_panels: list[TicketPanel] = []
nav_links: list[NavLink] = []
# Static paths (relative to the app's static folder or a blueprint's) of scripts that every
# signed-in staff page loads, e.g. live updates; each names an endpoint and a filename.
staff_scripts: list[tuple[str, str]] = []


def add_staff_script(endpoint: str, filename: str) -> None:
    if (endpoint, filename) not in staff_scripts:
        staff_scripts.append((endpoint, filename))


def add_ticket_panel(panel: TicketPanel) -> None:
    if all(p.name != panel.name for p in ticket_panels):
        ticket_panels.append(panel)


def add_nav_link(link: NavLink) -> None:
    if all(existing.endpoint != link.endpoint for existing in nav_links):
        nav_links.append(link)
        nav_links.sort(key=lambda item: item.order)


# Who is on closed-day duty (閉庁日当番) on a day: the booking package keeps the rota, the handoff
# package offers a closed day's handoffs to that department first. Callables (date) → Department.
duty_lookups: list[Callable] = []


def add_duty_lookup(lookup: Callable) -> None:
    if lookup not in duty_lookups:
        duty_lookups.append(lookup)


def duty_department(day):
    for lookup in duty_lookups:
        found = lookup(day)
        if found is not None:
            return found
    return None


# --- reports: the supervisor's dashboard and CSV exports ------------------------------------


@dataclass(frozen=True)
class ReportSection:
    """One block of the dashboard (and of the quarterly summary), in `order`.

    `render(period)` gets a consult.services.reports.Period (with `.previous_year()` for the
    comparison) and returns (template, context), or None when it has nothing to show. Handoff's
    response times plug in here, so consult never imports handoff.
    """

    name: str
    order: int
    render: Callable[[object], tuple[str, dict] | None]


@dataclass(frozen=True)
class ReportExport:
    """A CSV export for a period: `rows(period, personal)` → (header, iterable of rows).

    `personal` is True only when an administrator asked for personal data (and it is audited).
    """

    name: str
    label: str
    rows: Callable[[object, bool], tuple[list[str], object]]
    order: int = 100


report_sections: list[ReportSection] = []
report_exports: list[ReportExport] = []


def add_report_section(section: ReportSection) -> None:
    if all(s.name != section.name for s in report_sections):
        report_sections.append(section)
        report_sections.sort(key=lambda item: item.order)


def add_report_export(export: ReportExport) -> None:
    if all(e.name != export.name for e in report_exports):
        report_exports.append(export)
        report_exports.sort(key=lambda item: item.order)


# What was done on a case, recorded by other packages (the handoff's 対応記録): the FAQ package
# turns them into the answer of a draft. Sources are callables (ticket) → list[CaseRecord].
@dataclass(frozen=True)
class CaseRecord:
    key: str  # e.g. "handoff:12", to pick one record
    text: str
    department_id: int | None = None


case_record_sources: list[Callable] = []


def add_case_record_source(source: Callable) -> None:
    if source not in case_record_sources:
        case_record_sources.append(source)


def case_records(ticket: Ticket) -> list[CaseRecord]:
    return [record for source in case_record_sources for record in source(ticket)]


# Automatic answers on the channel a citizen used (email, LINE), keyed by the channel's value:
# callables (ticket, text, data) that queue the message and record it on the timeline.
automatic_senders: dict[str, Callable] = {}


def add_automatic_sender(channel: str, sender: Callable) -> None:
    automatic_senders[channel] = sender


# Demo data from the other packages (handoffs, FAQ entries) for `madoguchi seed-demo`: callables
# (members) with the demo staff by login, run in the seed's transaction after the kernel's data.
demo_seeders: list[Callable] = []


def add_demo_seeder(seeder: Callable) -> None:
    if seeder not in demo_seeders:
        demo_seeders.append(seeder)
