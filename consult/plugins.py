"""The plugin contract: how a package plugs into the kernel, described by one object.

A package (a channel, handoff, the FAQ) builds one `Plugin` that lists everything it adds:
blueprints, navigation, ticket panels, staff scripts, worker tasks, command groups, settings,
translations, demo data, home pages per role, report sections and exports, case-record sources,
signal receivers and, for channels, a `Channel` (name, label, deliverer, automatic answer).
`install(app, plugin)` keeps it in the app's own registry (`app.extensions`), never in module
globals, so a test can build many apps without leaks or double registration (as CTFd's
registries and indico's plugin engine do, without their global state).

Code that needs what plugins added asks the registry of the app at hand: `registry()` (the
current app) or `registry(app)`.

Adding a channel means writing one package with a `register(app)` that calls
`install(app, Plugin(name=..., channel=Channel(...), ...))`, and naming it in `create_app()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app

if TYPE_CHECKING:  # pragma: no cover
    import click
    from blinker import Signal

    from consult.models import OutboxMessage, Ticket

EXTENSION_KEY = "madoguchi.plugins"


# --- what a plugin can add --------------------------------------------------------------------


@dataclass(frozen=True)
class NavLink:
    endpoint: str
    label: str
    roles: tuple[str, ...]
    order: int = 100


@dataclass(frozen=True)
class TicketPanel:
    """Returns (template, context) for a ticket, or None when it has nothing to show."""

    name: str
    render: Callable[[Ticket], tuple[str, dict] | None]


@dataclass(frozen=True)
class StaffScript:
    """A script every signed-in staff page loads: `url_for(endpoint, filename=filename)`."""

    endpoint: str
    filename: str


@dataclass(frozen=True)
class ReportSection:
    """One block of the dashboard (and of the quarterly summary), in `order`.

    `render(period)` gets a consult.services.reports.Period (with `.previous_year()` for the
    comparison) and returns (template, context), or None when it has nothing to show.
    """

    name: str
    order: int
    render: Callable[[Any], tuple[str, dict] | None]


@dataclass(frozen=True)
class ReportExport:
    """A CSV export for a period: `rows(period, personal)` → (header, iterable of rows).

    `personal` is True only when an administrator asked for personal data (and it is audited).
    """

    name: str
    label: str
    rows: Callable[[Any, bool], tuple[list[str], Any]]
    order: int = 100


@dataclass(frozen=True)
class CaseRecord:
    """What was done on a case, recorded by a plugin (the handoff's 対応記録).

    The FAQ turns these into the answer of a draft.
    """

    key: str  # e.g. "handoff:12", to pick one record
    text: str
    department_id: int | None = None
    label: str = ""  # what staff see, e.g. 「市民課の対応記録」


@dataclass(frozen=True)
class VisitInfo:
    """Where a citizen is waiting in person: the room of the visit and the reception number the
    citizen is called by. Numbers only (no personal data), so staff pages and the live channel
    may carry them; the counter answers it, the handoff asks it without importing the counter."""

    room: int
    reception_number: int


@dataclass(frozen=True)
class TodaySection:
    """One block of the 今日 page for the signed-in member of staff, in `order`.

    `render(staff, now)` returns (template, context), or None when the block does not apply to
    them (a role that does not review FAQ drafts). Each block should cost a fixed number of
    queries whatever its length: the page's count is pinned by a test.

    `everyone`: the block is also shown on the home page of the roles that have no 今日 page
    (an officer's inbox), for what every department must see (the consumer alerts).
    """

    name: str
    order: int
    render: Callable[[Any, Any], tuple[str, dict] | None]
    everyone: bool = False


@dataclass(frozen=True)
class SearchTexts:
    """Texts a package adds to the "who" field of tickets' search documents (an email sender's
    name and address as received, before anyone registers the citizen).

    `texts(connection, ticket_ids)` returns {ticket id: [texts]}; a flushed change to a row of
    `model` (which has a `ticket_id`) rewrites that ticket's document in the same transaction."""

    model: type
    texts: Callable[[Any, list[int]], dict[int, list[str]]]


@dataclass(frozen=True)
class WorkerTask:
    """A job the worker runs again and again, in its own app context; it owns its transactions.

    Tasks in different lanes run in different threads of `madoguchi worker` (or in different
    processes with `--lane`), so a slow kind of work (an SMTP server that hangs) never holds up
    another (LINE). `interval` is the pause between two rounds when a round found nothing.
    """

    name: str
    run: Callable[[], Any]
    lane: str = "default"
    interval: float = 2.0


@dataclass(frozen=True)
class Channel:
    """A way citizens reach the centre and get answers.

    `deliver(message)` sends one outbox row (raising outbox.TemporaryFailure or
    PermanentFailure); `send_automatic(ticket, text, *, automatic, faq_entry_id=None)` queues an
    automatic answer (the FAQ's out-of-hours answer) through tickets.record_outgoing, which
    records it on the timeline; the caller asked consult.services.auto_answer first. Either may
    be None (the counter and the phone deliver nothing).
    """

    name: str
    label: str
    deliver: Callable[[OutboxMessage], None] | None = None
    send_automatic: Callable[..., Any] | None = None
    lane: str | None = None  # the worker lane that delivers its outbox rows (default: its name)


@dataclass(frozen=True)
class Plugin:
    """Everything one package adds to the kernel. Every field is optional but `name`."""

    name: str
    blueprints: Sequence[Any] = ()
    nav_links: Sequence[NavLink] = ()
    ticket_panels: Sequence[TicketPanel] = ()
    staff_scripts: Sequence[StaffScript] = ()
    worker_tasks: Sequence[WorkerTask] = ()
    commands: Sequence[click.Command] = ()
    translations: Path | None = None
    demo_seeder: Callable[[dict], None] | None = None
    home_pages: dict[str, str] = field(default_factory=dict)  # role → endpoint
    report_sections: Sequence[ReportSection] = ()
    today_sections: Sequence[TodaySection] = ()
    report_exports: Sequence[ReportExport] = ()
    case_record_source: Callable[[Ticket], list[CaseRecord]] | None = None
    # The in-person visits of some tickets: {ticket id: VisitInfo} for those that have one (the
    # counter). Takes a list, so a page of a hundred handoffs asks once.
    visit_lookup: Callable[[list[Ticket]], dict[int, VisitInfo]] | None = None
    # (signal, receiver): the receiver runs only for apps that installed this plugin.
    receivers: Sequence[tuple[Signal, Callable]] = ()
    channel: Channel | None = None
    # Its settings section (a consult.settings.Section dataclass), parsed at install.
    settings: type | None = None
    # The work queues of the package (consult.services.queue.QueueSpec): their failed rows are
    # listed on the administrators' page and by `madoguchi queue failed`, with a retry.
    queues: Sequence[Any] = ()
    # The desk's search: each takes the query (SearchTerms of consult.services.tickets) and
    # returns a SELECT of ticket ids from the package's own tables (the email sender's name as
    # received), joined to the search's other matches; None when it has nothing to add.
    ticket_search: Sequence[Callable[[Any], Any]] = ()
    # Texts for the search index's documents (SearchTexts), and the hiragana reading of a text
    # (one run per phrase), so that words typed without kana-kanji conversion are found.
    search_texts: Sequence[SearchTexts] = ()
    text_reading: Callable[[str], list[str]] | None = None
    # Anything the fields above cannot say (a WSGI intake in front of Flask, a search index);
    # called last, with the app.
    setup: Callable[[Flask], None] | None = None


# --- the per-app registry ---------------------------------------------------------------------


class Registry:
    """The plugins one app installed, with the views of them the kernel needs."""

    def __init__(self) -> None:
        self.plugins: dict[str, Plugin] = {}

    def add(self, plugin: Plugin) -> None:
        if plugin.name in self.plugins:
            raise ValueError(f"plugin {plugin.name!r} is installed twice")
        self.plugins[plugin.name] = plugin

    def _each(self, attribute: str) -> Iterable:
        for plugin in self.plugins.values():
            yield from getattr(plugin, attribute)

    @property
    def nav_links(self) -> list[NavLink]:
        return sorted(self._each("nav_links"), key=lambda link: link.order)

    @property
    def ticket_panels(self) -> list[TicketPanel]:
        return list(self._each("ticket_panels"))

    @property
    def staff_scripts(self) -> list[StaffScript]:
        return list(self._each("staff_scripts"))

    @property
    def worker_tasks(self) -> list[WorkerTask]:
        return list(self._each("worker_tasks"))

    @property
    def ticket_search(self) -> list[Callable[[Any], Any]]:
        return list(self._each("ticket_search"))

    @property
    def search_texts(self) -> list[SearchTexts]:
        return list(self._each("search_texts"))

    @property
    def queues(self) -> list:
        return list(self._each("queues"))

    @property
    def report_sections(self) -> list[ReportSection]:
        return sorted(self._each("report_sections"), key=lambda item: item.order)

    @property
    def today_sections(self) -> list[TodaySection]:
        return sorted(self._each("today_sections"), key=lambda item: item.order)

    @property
    def report_exports(self) -> list[ReportExport]:
        return sorted(self._each("report_exports"), key=lambda item: item.order)

    @property
    def channels(self) -> dict[str, Channel]:
        return {p.channel.name: p.channel for p in self.plugins.values() if p.channel is not None}

    @property
    def demo_seeders(self) -> list[Callable[[dict], None]]:
        return [p.demo_seeder for p in self.plugins.values() if p.demo_seeder is not None]

    @property
    def translation_dirs(self) -> list[Path]:
        return [p.translations for p in self.plugins.values() if p.translations is not None]

    def home_endpoint(self, role: str) -> str | None:
        for plugin in self.plugins.values():
            if role in plugin.home_pages:
                return plugin.home_pages[role]
        return None

    def deliverer(self, channel: str) -> Callable | None:
        found = self.channels.get(channel)
        return found.deliver if found is not None else None

    def automatic_sender(self, channel: str) -> Callable | None:
        found = self.channels.get(channel)
        return found.send_automatic if found is not None else None

    def case_records(self, ticket: Ticket) -> list[CaseRecord]:
        return [
            record
            for plugin in self.plugins.values()
            if plugin.case_record_source is not None
            for record in plugin.case_record_source(ticket)
        ]

    def visits(self, tickets: list[Ticket]) -> dict[int, VisitInfo]:
        """{ticket id: VisitInfo} for the tickets with an in-person visit, from every plugin."""
        found: dict[int, VisitInfo] = {}
        if not tickets:
            return found
        for plugin in self.plugins.values():
            if plugin.visit_lookup is not None:
                found.update(plugin.visit_lookup(tickets))
        return found

    def receivers_of(self, signal: Signal) -> list[Callable]:
        return [
            receiver
            for plugin in self.plugins.values()
            for connected, receiver in plugin.receivers
            if connected is signal
        ]


def registry(app: Flask | None = None) -> Registry:
    """The registry of `app`, or of the current app."""
    target = app if app is not None else current_app
    return target.extensions[EXTENSION_KEY]


def init_app(app: Flask) -> Registry:
    found = app.extensions.get(EXTENSION_KEY)
    if found is None:
        found = app.extensions[EXTENSION_KEY] = Registry()
    return found


def install(app: Flask, plugin: Plugin) -> None:
    """Add a plugin to an app: register what Flask must know now, keep the rest for lookups."""
    init_app(app).add(plugin)
    if plugin.settings is not None:
        from consult import settings

        settings.add_section(app, plugin.settings)
    for blueprint in plugin.blueprints:
        app.register_blueprint(blueprint)
    for command in plugin.commands:
        app.cli.add_command(command)
    for signal, _receiver in plugin.receivers:
        _dispatch_through_app(signal)
    if plugin.setup is not None:
        plugin.setup(app)


_dispatching: set[int] = set()


def _dispatch_through_app(signal: Signal) -> None:
    """Connect the signal once per process to a dispatcher that asks the current app.

    blinker signals are process-wide; connecting each plugin's receiver directly would make every
    app in the process (tests build many) run every receiver. The dispatcher runs only the
    receivers of plugins that the app sending the signal installed.
    """
    if id(signal) in _dispatching:
        return
    _dispatching.add(id(signal))

    def dispatch(sender, **kwargs):
        from flask import has_app_context

        if not has_app_context():
            return None
        for receiver in registry().receivers_of(signal):
            receiver(sender, **kwargs)
        return None

    signal.connect(dispatch, weak=False)
