"""The FAQ knowledge base: entries from closed cases, redaction, a Japanese search index."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

PACKAGE = Path(__file__).resolve().parent


def _reading(text: str) -> list[str]:
    """The desk's search index reads words as the FAQ's does (こくほ meets 国保)."""
    from faq.analysis import reading

    return reading(text)


def _dispose(batch):
    from faq import disposal

    disposal.dispose(batch)


def register(app: Flask) -> None:
    """Plug the FAQ into the kernel: models, index, blueprints, CLI, ticket panel, catalogs."""
    from consult import plugins, signals
    from consult.models import STAFF_ROLES
    from faq import (
        auto_answer,
        cli,
        models,  # noqa: F401 (the tables must be known to the metadata)
        today,
        transfer,
        views,
    )
    from faq.settings import FaqSettings

    plugins.install(
        app,
        plugins.Plugin(
            name="faq",
            disposers=(plugins.Disposer("faq", _dispose, ()),),
            blueprints=(views.bp, views.public_bp),
            commands=(cli.faq_group,),
            nav_links=(plugins.NavLink("faq.staff_index", "FAQ", STAFF_ROLES, 60),),
            ticket_panels=(plugins.TicketPanel("faq", views.ticket_panel),),
            today_sections=(plugins.TodaySection("faq_review", 50, today.section),),
            translations=PACKAGE / "translations",
            receivers=((signals.message_received, auto_answer.on_message),),
            demo_seeder=_seed_demo,
            settings=FaqSettings,
            text_reading=_reading,
            redactor=_redactor,
            setup=_setup,
            transfer_kinds=(
                plugins.TransferKind(
                    transfer.KIND, transfer.apply, to="relay", snapshot=transfer.snapshot
                ),
            ),
        ),
    )
    from faq import alerts, opinions

    alerts.register(app)
    opinions.register(app)


def _redactor(text, *, known_names=(), public_phones=(), public_terms=()):
    """The redactor offered to the kernel (the disclosure bundle): (text, kinds removed)."""
    from faq.redact import redact
    from faq.services import configured_public_phones

    result = redact(
        text,
        known_names=known_names,
        public_phones=[*public_phones, *configured_public_phones()],
        public_terms=public_terms,
    )
    return result.text, [span.kind for span in result.spans]


def _setup(app: Flask) -> None:
    """The search index of this process, kept in step after each request's commit."""
    from consult.extensions import db
    from consult.services import ratelimit
    from consult.settings import section
    from faq import views
    from faq.search import SearchIndex
    from faq.settings import FaqSettings

    views.mark_static_public(app)
    ratelimit.parse(section(FaqSettings, app).vote_rate_limit)  # refuse a bad setting early
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        # The kernel's SQLite engine takes the write lock at BEGIN (BEGIN IMMEDIATE); the index
        # only reads, so it gets a plain engine of its own and never queues behind a writer.
        import sqlalchemy as sa

        engine = sa.create_engine(engine.url, connect_args={"timeout": 30})
    app.extensions["faq_index"] = SearchIndex(app.config["MADOGUCHI"]["DATA_DIR"], engine)

    @app.teardown_request
    def update_index_after_commit(_error=None):
        # The request has committed (or rolled back) by now: bring this process's index up.
        if db.session.info.pop("faq_changed", False):
            try:
                app.extensions["faq_index"].sync()
            except Exception:
                app.logger.exception("faq index update failed; the next search retries")


def _seed_demo(members: dict) -> None:
    from faq import services

    services.seed_demo(members)
