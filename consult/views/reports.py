"""The supervisor's reports: the dashboard, the printable quarterly summary, CSV exports."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    render_template,
    request,
    stream_with_context,
)
from flask_login import current_user
from markupsafe import Markup

from consult import plugins
from consult.models import Role
from consult.services import reports
from consult.services.errors import ValidationFailed
from consult.timeutil import fiscal_year, tokyo_today
from consult.web import actor, roles_required

bp = Blueprint("reports", __name__, url_prefix="/reports")


def _period_or_error():
    try:
        return reports.parse_period(request.args), None
    except ValidationFailed as error:
        return reports.fiscal_period(fiscal_year(tokyo_today())), error.message


def _sections(period, by=None) -> list[Markup]:
    html = []
    for template, context in reports.render_sections(actor(), period, by):
        # Each section renders with its own context (autoescaped template output is safe).
        html.append(Markup(render_template(template, period=period, **context)))  # noqa: S704
    return html


def _page(template: str, by: str | None = None):
    period, error = _period_or_error()
    this_year = fiscal_year(tokyo_today())
    status = 422 if error else 200
    return render_template(
        template,
        period=period,
        previous=period.previous_year(),
        sections=_sections(period, by),
        error=error,
        years=list(range(this_year, this_year - 6, -1)),
        args=request.args,
        exports=plugins.registry().report_exports,
        is_admin=current_user.role == Role.ADMIN,
        months=reports.month_table(period) if template.endswith("quarterly.html") else [],
    ), status


@bp.get("")
@roles_required(*reports.REPORT_ROLES)
def dashboard():
    return _page("consult/reports/dashboard.html", request.args.get("by"))


@bp.get("/quarterly")
@roles_required(*reports.REPORT_ROLES)
def quarterly():
    return _page("consult/reports/quarterly.html", "month")


@bp.get("/export/<name>.csv")
@roles_required(*reports.REPORT_ROLES)
def export(name: str):
    try:
        period = reports.parse_period(request.args)
        personal = request.args.get("personal") == "1"
        chunks = reports.export_csv(actor(), name, period, personal)
    except ValidationFailed as error:
        if "管理者" in error.message:
            abort(403)
        abort(404 if "ありません" in error.message else 400)
    filename = f"{name}_{period.start:%Y%m%d}-{period.end:%Y%m%d}.csv"
    return Response(
        stream_with_context(chunks),
        mimetype="text/csv",
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f"attachment; filename*=UTF-8''{filename}",
        },
    )
