"""今日: the signed-in member of staff's day on one page, built from every plugin's block."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user
from markupsafe import Markup

from consult import plugins
from consult.services.actor import DESK_ROLES
from consult.timeutil import tokyo_today, utcnow
from consult.web import roles_required

bp = Blueprint("today", __name__)


@bp.get("/today")
@roles_required(*DESK_ROLES)
def today():
    now = utcnow()
    blocks = []
    for section in plugins.registry().today_sections:
        rendered = section.render(current_user, now)
        if rendered:
            template, context = rendered
            html = render_template(template, now=now, **context)
            blocks.append(Markup(html))  # noqa: S704 (autoescaped template output)
    return render_template("consult/today.html", blocks=blocks, day=tokyo_today(now))
