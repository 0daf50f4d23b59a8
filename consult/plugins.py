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
    from datetime import datetime

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


@dataclass
class DisposalBatch:
    """Tickets whose personal data one transaction of disposal removes (consult.services.retention).

    A disposer (below) is given the batch before the kernel clears its own rows, so it can still
    read the tickets' citizens and timeline data. It changes its package's rows with Core
    statements on `connection`, adds what it removed to `counts` (kind → number; the kinds'
    Japanese labels in `labels`), and lists files in `files`: they are deleted only once the
    transaction has committed. `citizen_ids` are the citizens whose data goes too (no live
    ticket of theirs remains, no legal hold)."""

    connection: Any
    ticket_ids: list[int]
    citizen_ids: list[int]
    now: Any
    counts: dict[str, int] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    # The same counts per ticket, for the 廃棄簿 (what a disposer could attribute).
    by_ticket: dict[int, dict[str, int]] = field(default_factory=dict)

    def count(
        self, kind: str, label: str, number: int, by_ticket: dict[int, int] | None = None
    ) -> None:
        """Add `number` removed items of `kind`; `by_ticket` ({ticket id: n}) says whose."""
        if not number or number <= 0:
            return
        self.counts[kind] = self.counts.get(kind, 0) + number
        self.labels.setdefault(kind, label)
        if by_ticket is None and len(self.ticket_ids) == 1:
            by_ticket = {self.ticket_ids[0]: number}
        for tid, n in (by_ticket or {}).items():
            if n:
                mine = self.by_ticket.setdefault(tid, {})
                mine[kind] = mine.get(kind, 0) + n

    def among(self, column, ids=None):
        """`column IN (the batch's tickets)`, or of `ids`. On PostgreSQL one array parameter
        (`= ANY(...)`), so the statement's text is the same whatever the batch and is prepared
        once, instead of a few hundred placeholders parsed again on every batch."""
        import sqlalchemy as sa

        values = list(self.ticket_ids if ids is None else ids)
        if self.connection.dialect.name == "postgresql":
            from sqlalchemy.dialects import postgresql

            return column == sa.any_(sa.literal(values, postgresql.ARRAY(sa.Integer)))
        return column.in_(values)

    def grouped(self, table, condition) -> dict[int, int]:
        """{ticket id: rows} of `table` (with a ticket_id) matching `condition`: for `count`."""
        import sqlalchemy as sa

        return dict(
            self.connection.execute(
                sa.select(table.c.ticket_id, sa.func.count())
                .where(condition)
                .group_by(table.c.ticket_id)
            ).all()
        )


@dataclass(frozen=True)
class PersonalData:
    """Where a package keeps personal data, for disposal's docs and the 個人情報ファイル簿:
    `table` and its `columns`, what they hold (`label`) and where it comes from (`source`)."""

    table: str
    columns: tuple[str, ...]
    label: str
    source: str


@dataclass(frozen=True)
class Accessor:
    """Someone other than a staff role who reads personal data through a package (a connected
    system's API token with one scope), for the 個人情報ファイル簿's 利用者の範囲: `name` says
    who (in Japanese, as the register prints it) and `may_see` what they may read."""

    name: str
    may_see: str


@dataclass(frozen=True)
class UnlinkedKind:
    """Records of a package that belong to no case (a booking never turned into one, ignored
    mail, LINE events and users without a case): retention counts from the fiscal year after
    the record's own date (consult.services.retention, `unlinked_years`).

    `count(before)` says how many records dated before `before` (a UTC datetime) are still to
    go; `dispose(batch, before, after, limit)` removes the personal data of at most `limit` of
    them whose id is above `after`, in the batch's transaction, counting with `batch.count` and
    listing files in `batch.files`; it returns the last id it looked at, or None when nothing
    is left. Neither may read or return the data itself."""

    name: str
    label: str
    count: Callable[[Any], int]
    dispose: Callable[[DisposalBatch, Any, int, int], int | None]


@dataclass(frozen=True)
class Disposer:
    """A package's part of disposal: `dispose(batch)` (DisposalBatch), and what it holds."""

    name: str
    dispose: Callable[[DisposalBatch], None]
    holds: Sequence[PersonalData] = ()
    # Files of the package's folder under DATA_DIR that no row names (a rollback after the file
    # was written), older than the cutoff (a datetime): `sweep(cutoff)` lists them.
    orphans: Callable[[Any], list[Path]] | None = None
    # Its records that belong to no case, with their own retention (UnlinkedKind).
    unlinked: Sequence[UnlinkedKind] = ()


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
class TransferKind:
    """A kind of item that crosses between the relay and the core (consult.transfer).

    `apply(payload)` runs on the side that receives the item, in its transaction (it flushes,
    never commits); an item whose id was applied before is not applied again. A relay-side
    source that keeps its items in its own table (LINE's raw webhook bodies) gives `pending(limit)`
    (dicts with id, kind, payload) and `acknowledge(ids)` (delete them: the core has them). A
    core-side state the relay keeps a copy of (free slots, the published FAQ) gives `snapshot()`:
    sent whenever it changed, replacing the relay's copy. `after_apply(app)` runs after a batch
    with items of the kind was committed (start processing them at once). `expire(before)`, for
    a relay-side source: forget what the core has not taken since `before` (MADOGUCHI_RELAY_
    HOLD_DAYS: the relay never holds personal data longer) and say how many.
    """

    name: str
    apply: Callable[[dict], None]
    to: str = "core"  # the role that applies it: "core" (intake) or "relay" (what goes out)
    pending: Callable[[int], list[dict]] | None = None
    acknowledge: Callable[[list[str]], None] | None = None
    snapshot: Callable[[], dict | None] | None = None
    after_apply: Callable[[Flask], None] | None = None
    expire: Callable[[datetime], int] | None = None


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
    # On the core (MADOGUCHI_ROLE=core), what the relay needs to deliver an outbox row without
    # the core's tables: {recipient, subject, body, headers}, or raise outbox.PermanentFailure.
    # None: the row as it is (a mail's recipient is its address already).
    relay_form: Callable[[OutboxMessage], dict] | None = None


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
    # Its part of disposal of expired tickets' personal data (Disposer): every package that
    # stores personal data has one, or disposal leaves its copy behind.
    disposers: Sequence[Disposer] = ()
    # Who reads personal data through the package besides the staff roles (Accessor): the
    # 個人情報ファイル簿 lists them after the roles (consult.services.retention).
    accessors: Sequence[Accessor] = ()
    # What crosses between the relay and the core for this package (TransferKind).
    transfer_kinds: Sequence[TransferKind] = ()
    # Personal strings of citizens kept in the package's own tables (a LINE user id), {ids} →
    # [strings]: what protection.scrub() hides for a protected person (consult/services/protection).
    citizen_secrets: Callable[[list[int]], list[str]] | None = None
    # What the package holds about a citizen, for the disclosure bundle (開示請求):
    # citizen id → list of DisclosureSection (consult/services/disclosure.py).
    disclosure_source: Callable[[int], list[Any]] | None = None
    # The FAQ's redactor, offered to the kernel: (text, known names) → (redacted text, kinds).
    redactor: Callable[[str, list[str]], tuple[str, list[str]]] | None = None
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
    def disposers(self) -> list[Disposer]:
        return list(self._each("disposers"))

    @property
    def accessors(self) -> list[Accessor]:
        return list(self._each("accessors"))

    @property
    def transfer_kinds(self) -> dict[str, TransferKind]:
        return {kind.name: kind for kind in self._each("transfer_kinds")}

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

    def citizen_secrets(self, citizen_ids: list[int]) -> list[str]:
        return [
            secret
            for plugin in self.plugins.values()
            if plugin.citizen_secrets is not None
            for secret in plugin.citizen_secrets(citizen_ids)
        ]

    def disclosure_sections(self, citizen_id: int) -> list:
        return [
            section
            for plugin in self.plugins.values()
            if plugin.disclosure_source is not None
            for section in plugin.disclosure_source(citizen_id)
        ]

    @property
    def redactor(self) -> Callable | None:
        for plugin in self.plugins.values():
            if plugin.redactor is not None:
                return plugin.redactor
        return None

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
