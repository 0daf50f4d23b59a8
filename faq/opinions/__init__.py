"""「寄せられたご意見と回答」: answered requests and letters, redacted, approved, published."""

from __future__ import annotations

from pathlib import Path

from flask import Flask


def register(app: Flask) -> None:
    from consult import plugins
    from consult.models import Role
    from faq.opinions import models, transfer, views  # noqa: F401 (models: metadata)

    plugins.install(
        app,
        plugins.Plugin(
            name="opinions",
            blueprints=(views.bp, views.public_bp),
            nav_links=(
                plugins.NavLink(
                    "opinions.staff_index",
                    "ご意見と回答",
                    (Role.CONSULTANT, Role.SUPERVISOR, Role.ADMIN),
                    66,
                ),
            ),
            translations=Path(__file__).parent / "translations",
            # The public page on the relay: a copy of what is published (faq.opinions.transfer).
            transfer_kinds=(
                plugins.TransferKind(
                    transfer.KIND, transfer.apply, to="relay", snapshot=transfer.snapshot
                ),
            ),
        ),
    )
