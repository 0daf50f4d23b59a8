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


def add_ticket_panel(panel: TicketPanel) -> None:
    if all(p.name != panel.name for p in ticket_panels):
        ticket_panels.append(panel)


def add_nav_link(link: NavLink) -> None:
    if all(existing.endpoint != link.endpoint for existing in nav_links):
        nav_links.append(link)
        nav_links.sort(key=lambda item: item.order)
