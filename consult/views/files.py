"""Citizens' files in their harmless form (無害化), and the administrators' quarantine.

Staff see a file only through these routes: the viewer page, the converted page images (PNG or
JPEG made anew), the extracted text. The original is served by nothing here until an
administrator has released it (`/admin/quarantine`), and then only as a download. Every view is
audited (consult.services.safe_files).
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response, abort, redirect, render_template, url_for

from consult.forms import ReleaseForm
from consult.models import Role
from consult.services import safe_files
from consult.services.actor import DESK_ROLES
from consult.web import actor, attempt, roles_required

bp = Blueprint("files", __name__)

# A page image needs nothing of ours around it; the browser may only draw it.
IMAGE_CSP = "default-src 'none'; img-src 'self'; sandbox"


def _file(file_id: int, **audit):
    return safe_files.get_for_view(actor(), file_id, **audit)


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/files/<int:file_id>")
@roles_required(*DESK_ROLES)
def show(file_id: int):
    """The viewer: status, the converted pages, the text; or why the file is held."""
    row = _file(file_id)
    return render_template("consult/safe_file.html", item=row, ticket=row.ticket)


@bp.get("/files/<int:file_id>/pages/<int:page>")
@roles_required(*DESK_ROLES)
def page(file_id: int, page: int):
    row = _file(file_id, detail=f" page={page}")
    path = safe_files.page_path(row, page)
    response = Response(path.read_bytes(), mimetype=row.media_type or "image/png")
    extension = "jpg" if row.media_type == "image/jpeg" else "png"
    response.headers["Content-Disposition"] = (
        f'inline; filename="page-{page}.{extension}"; '
        f"filename*=UTF-8''{quote(f'{row.id}-{page}.{extension}')}"
    )
    response.headers["Content-Security-Policy"] = IMAGE_CSP
    return _no_store(response)


@bp.get("/files/<int:file_id>/text")
@roles_required(*DESK_ROLES)
def text(file_id: int):
    """The extracted text, as a plain-text download (never as a page of ours)."""
    row = _file(file_id, action="export", detail=" text")
    if row.status.value != "ready" or not row.text:
        abort(404)
    response = Response(row.text, mimetype="text/plain")
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"text.txt\"; filename*=UTF-8''{quote(f'{row.id}.txt')}"
    )
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return _no_store(response)


@bp.get("/files/<int:file_id>/original")
@roles_required(*DESK_ROLES)
def original(file_id: int):
    """The original, only after an administrator released it: a download, never shown."""
    row = _file(file_id, action="export", detail=" original")
    path = safe_files.released_original(row)
    response = Response(path.read_bytes(), mimetype="application/octet-stream")
    name = row.filename or f"file-{row.id}"
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"file\"; filename*=UTF-8''{quote(name)}"
    )
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return _no_store(response)


def redirect_to(source: str, source_id: int):
    """The channels' old download routes: to the viewer of the converted form."""
    row = safe_files.of_source(source, source_id)
    if row is None:
        abort(404)
    return redirect(url_for("files.show", file_id=row.id))


# --- the quarantine, for administrators ----------------------------------------------------


@bp.get("/admin/quarantine")
@roles_required(Role.ADMIN)
def quarantine():
    return render_template("consult/admin/quarantine.html", items=safe_files.held_files())


@bp.route("/admin/quarantine/<int:file_id>", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def release(file_id: int):
    """One held file: its reason, and the form that releases it (with a reason, audited)."""
    row = safe_files.get_held(actor(), file_id)
    form = ReleaseForm()
    if form.validate_on_submit():
        ok, _ = attempt(
            lambda: safe_files.release(actor(), file_id, form.reason.data),
            "隔離を解除しました。担当者は原本をダウンロードできます（ダウンロードは記録されます）。",
        )
        if ok:
            return redirect(url_for("files.quarantine"))
        row = safe_files.get_held(actor(), file_id)
    status = 422 if form.is_submitted() else 200
    return render_template("consult/admin/quarantine_item.html", item=row, form=form), status
