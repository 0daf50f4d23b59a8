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


def blocks_for(staff, now, *, everyone_only: bool = False) -> list[Markup]:
    """The rendered blocks of the 今日 page for this member of staff; `everyone_only`: only the
    blocks every role sees (TodaySection.everyone), for the home pages of the other roles."""
    blocks = []
    for section in plugins.registry().today_sections:
        if everyone_only and not section.everyone:
            continue
        rendered = section.render(staff, now)
        if rendered:
            template, context = rendered
            html = render_template(template, now=now, **context)
            blocks.append(Markup(html))  # noqa: S704 (autoescaped template output)
    return blocks


@bp.get("/today")
@roles_required(*DESK_ROLES)
def today():
    now = utcnow()
    blocks = blocks_for(current_user, now)
    return render_template("consult/today.html", blocks=blocks, day=tokyo_today(now))
