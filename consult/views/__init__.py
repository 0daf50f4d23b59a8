"""The kernel's blueprints."""

from flask import Flask

from consult import registry
from consult.models import Role


def register(app: Flask) -> None:
    from consult.views import admin, auth, desk

    app.register_blueprint(auth.bp)
    app.register_blueprint(desk.bp)
    app.register_blueprint(admin.bp)
    registry.add_nav_link(
        registry.NavLink("desk.queue", "相談一覧", (Role.CONSULTANT, Role.SUPERVISOR), 10)
    )
    registry.add_nav_link(registry.NavLink("admin.index", "管理", (Role.ADMIN,), 90))
