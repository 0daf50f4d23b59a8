"""Consumer and fraud alerts (消費生活・特殊詐欺の注意喚起), a part of the FAQ package.

They live in faq/ because they are the FAQ's workflow again: made from a case, redacted by the
FAQ's redactor, approved by a supervisor, published on a public page in Japanese and English.
The top level of the repository is fixed (DESIGN.md), so they are a sub-package with the same
rooms (models, services, tasks, forms, views), plugged in as a plugin of their own.
"""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from consult import plugins
    from consult.models import STAFF_ROLES
    from faq.alerts import models, tasks, today, transfer, views  # noqa: F401 (models)
    from faq.alerts.settings import AlertSettings

    plugins.install(
        app,
        plugins.Plugin(
            name="alerts",
            blueprints=(views.bp, views.public_bp),
            nav_links=(plugins.NavLink("alerts.staff_index", "注意喚起", STAFF_ROLES, 62),),
            ticket_panels=(plugins.TicketPanel("alerts", views.ticket_panel),),
            # Also on the officers' home page: every department sees new alerts.
            today_sections=(
                plugins.TodaySection("consumer_alerts", 20, today.section, everyone=True),
            ),
            staff_scripts=(plugins.StaffScript("faq.static", "js/consumer-alerts.js"),),
            worker_tasks=(
                plugins.WorkerTask("alerts.digest", tasks.digest, lane="alerts", interval=60.0),
            ),
            settings=AlertSettings,
            # The public page on the relay: a copy of what is published (faq.alerts.transfer).
            transfer_kinds=(
                plugins.TransferKind(
                    transfer.KIND, transfer.apply, to="relay", snapshot=transfer.snapshot
                ),
            ),
        ),
    )
