"""The FAQ knowledge base: entries from closed cases, redaction, a Japanese search index."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

PACKAGE = Path(__file__).resolve().parent


def register(app: Flask) -> None:
    """Plug the FAQ into the kernel: models, index, blueprints, CLI, ticket panel, catalogs."""
    from consult import i18n, registry
    from consult.extensions import db
    from consult.services import ratelimit
    from faq import models  # noqa: F401 (the tables must be known to the metadata)
    from faq.search import SearchIndex

    # 「役に立った」 per address and entry (one per browser is the vote table's own rule): a
    # script that drops its cookie gets this many, not thirty, whatever the number of workers.
    app.config["MADOGUCHI"].setdefault("FAQ_VOTE_RATE_LIMIT", "3 per day")
    ratelimit.parse(app.config["MADOGUCHI"]["FAQ_VOTE_RATE_LIMIT"])  # refuse a bad setting early
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

    from faq import cli, views

    views.register(app)
    cli.register(app)
    i18n.add_translation_dir(PACKAGE / "translations")
    registry.add_ticket_panel(registry.TicketPanel("faq", views.ticket_panel))

    from consult.services import tickets
    from faq import auto_answer

    tickets.message_received.connect(auto_answer.on_message)
    registry.add_demo_seeder(_seed_demo)


def _seed_demo(members: dict) -> None:
    from faq import services

    services.seed_demo(members)
