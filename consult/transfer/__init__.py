"""The relay (internet zone) and the core (LGWAN zone): one codebase, two roles, one link.

See consult.transfer.services for the protocol, consult.transfer.roles for what each role
serves, README (Deployment) for how a city sets it up.
"""

from __future__ import annotations

from flask import Flask

from consult import plugins
from consult.config import CoreSettings, RelaySettings
from consult.settings import section


def register(app: Flask) -> None:
    from consult.transfer import cli, models, roles, services, views  # noqa: F401 (models)

    role = section(CoreSettings, app).role
    config = section(RelaySettings, app)
    tasks = []
    blueprints = []
    if role == "core":
        from consult.transfer import client

        tasks.append(
            plugins.WorkerTask(
                "transfer.run",
                client.worker_round,
                lane="transfer",
                interval=config.interval_seconds,
            )
        )
    if role == "relay":
        blueprints.append(views.bp)
    if role != "all":
        tasks.append(
            plugins.WorkerTask(
                "transfer.housekeeping", services.housekeeping, lane="housekeeping", interval=60
            )
        )
    plugins.install(
        app,
        plugins.Plugin(
            name="transfer",
            blueprints=tuple(blueprints),
            worker_tasks=tuple(tasks),
            commands=(cli.transfer_group, cli.relay_command),
            transfer_kinds=(
                plugins.TransferKind(
                    "outbox", services.apply_outbox, to="relay", after_apply=services.kick_outbox
                ),
                plugins.TransferKind(
                    services.OUTCOME,
                    services.apply_outcome,
                    pending=services.outcome_pending,
                    acknowledge=services.outcome_acknowledge,
                ),
            ),
        ),
    )
    if role == "relay":
        from consult.extensions import csrf

        csrf.exempt(views.bp)
    roles.install(app)
