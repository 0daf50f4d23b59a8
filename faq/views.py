"""FAQ pages: the staff blueprint (/staff/faq…) and the citizens' blueprint (/faq…)."""

from __future__ import annotations

import secrets

from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from consult import plugins
from consult.extensions import db
from consult.forms import choices
from consult.models import Role, Status, Ticket
from consult.services import staff as staff_service
from consult.services import tickets
from consult.web import actor, attempt, public, rate_limited, roles_required
from faq import services
from faq.forms import ActionForm, EntryForm, HelpfulForm, SynonymForm
from faq.models import FaqStatus, Visibility

bp = Blueprint("faq", __name__, static_folder="static", static_url_path="/faq-static")
public_bp = Blueprint("faq_public", __name__)

VOTER_COOKIE = "madoguchi_faq_voter"
MAX_QUERY = 200


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 10 else None


# --- staff ------------------------------------------------------------------------------------


def _entry(entry_id: int):
    return services.get_entry(actor(), entry_id)


def _fill_choices(form: EntryForm) -> EntryForm:
    form.category_id.choices = choices(
        ((c.id, c.name) for c in staff_service.list_categories(active_only=True)), blank="未分類"
    )
    form.department_id.choices = choices(
        ((d.id, d.name) for d in staff_service.list_departments()), blank="指定なし"
    )
    return form


@bp.get("/staff/faq")
@roles_required(*services.READ_ROLES)
def staff_index():
    query = request.args.get("q", "")[:MAX_QUERY].strip()
    status = request.args.get("status")
    status = FaqStatus(status) if status in {s.value for s in FaqStatus} else None
    hits = services.search(query, actor=actor(), public=False, limit=20) if query else []
    entries = [] if query else services.list_entries(actor(), status)
    return render_template(
        "faq/staff_index.html", query=query, hits=hits, entries=entries, status=status
    )


@bp.route("/staff/faq/new", methods=["GET", "POST"])
@roles_required(*services.EDIT_ROLES)
def staff_new():
    form = _fill_choices(EntryForm())
    if form.validate_on_submit():
        ok, entry = attempt(
            lambda: services.create_entry(actor(), **_entry_fields(form)), "下書きを保存しました。"
        )
        if ok:
            return redirect(url_for("faq.staff_entry", entry_id=entry.id))
    return render_template("faq/staff_form.html", form=form, entry=None), (
        422 if request.method == "POST" else 200
    )


def _entry_fields(form: EntryForm) -> dict:
    return {
        "question": form.question.data,
        "answer": form.answer.data,
        "keywords": form.keywords.data or "",
        "category_id": form.category_id.data,
        "department_id": form.department_id.data,
        "visibility": form.visibility.data,
    }


@bp.get("/staff/faq/<int:entry_id>")
@roles_required(*services.READ_ROLES)
def staff_entry(entry_id: int):
    entry = services.view_entry(actor(), entry_id)
    remaining = (
        [] if entry.status == FaqStatus.PUBLISHED else services.remaining_personal_data(entry)
    )
    return render_template(
        "faq/staff_entry.html",
        entry=entry,
        answer_html=services.render_markdown(entry.answer),
        revisions=services.revisions(entry),
        remaining=remaining,
        action_form=ActionForm(),
        can_edit=current_role_in(services.EDIT_ROLES),
        can_approve=current_role_in(services.APPROVE_ROLES),
    )


def current_role_in(roles) -> bool:
    staff = actor().staff
    return bool(staff and staff.role in roles)


@bp.route("/staff/faq/<int:entry_id>/edit", methods=["GET", "POST"])
@roles_required(*services.EDIT_ROLES)
def staff_edit(entry_id: int):
    entry = _entry(entry_id)
    if request.method == "GET":
        form = EntryForm(
            obj=entry,
            visibility=entry.visibility.value,
            category_id=entry.category_id or "",
            department_id=entry.department_id or "",
        )
        form.revision.data = str(entry.revision)
    else:
        form = EntryForm()
    _fill_choices(form)
    if form.validate_on_submit():
        seen = form.revision.data or ""
        ok, _result = attempt(
            lambda: services.update_entry(
                actor(),
                entry,
                **_entry_fields(form),
                seen_revision=int(seen) if seen.isdigit() else None,
            ),
            "変更を保存しました。",
        )
        if ok:
            return redirect(url_for("faq.staff_entry", entry_id=entry_id))
        # What they typed stays in the form; the next save is taken over the revision that
        # refused this one, once they have looked at it.
        entry = _entry(entry_id)
        form.revision.data = str(entry.revision)
    return render_template("faq/staff_form.html", form=form, entry=entry), (
        422 if request.method == "POST" else 200
    )


ACTIONS = {
    "submit": (services.submit, "承認を依頼しました。"),
    "approve": (services.approve, "承認し、公開しました。"),
    "send-back": (services.send_back, "下書きに差し戻しました。"),
    "archive": (services.archive, "公開を終了しました。"),
}


@bp.post("/staff/faq/<int:entry_id>/<any(submit, approve, 'send-back', archive):action>")
@roles_required(*services.EDIT_ROLES)
def staff_action(entry_id: int, action: str):
    entry = _entry(entry_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    operation, message = ACTIONS[action]
    attempt(lambda: operation(actor(), entry), message)
    return redirect(url_for("faq.staff_entry", entry_id=entry_id))


@bp.post("/staff/faq/from-ticket/<number>")
@roles_required(*services.EDIT_ROLES)
def from_ticket(number: str):
    """「FAQにする」 on a closed case: a redacted draft, then its page for review."""
    if not ActionForm().validate_on_submit():
        abort(400)
    ticket = tickets.get_ticket(actor(), number, audit_view=False)
    ok, entry = attempt(
        lambda: services.draft_from_ticket(
            actor(), ticket, record_key=request.form.get("record") or None
        ),
        "相談からFAQの下書きを作成しました。個人情報を除いた箇所を確認してください。",
    )
    if not ok:
        return redirect(url_for("desk.ticket", number=number))
    return redirect(url_for("faq.staff_entry", entry_id=entry.id))


@bp.route("/staff/faq/synonyms", methods=["GET", "POST"])
@roles_required(Role.ADMIN, Role.SUPERVISOR)
def synonyms():
    form = SynonymForm()
    if request.method == "GET":
        form.text.data = services.synonym_text()
    elif form.validate_on_submit():
        ok, count = attempt(lambda: services.save_synonyms(actor(), form.text.data or ""))
        if ok:
            flash(f"同義語を{count}組保存しました。", "success")
            return redirect(url_for("faq.synonyms"))
    return render_template("faq/synonyms.html", form=form), (
        422 if request.method == "POST" else 200
    )


@bp.get("/staff/faq/suggest")
@roles_required(*services.READ_ROLES)
def suggest():
    """JSON for the ticket page: FAQ entries and closed cases like what is being typed."""
    text = request.args.get("q", "")[:MAX_QUERY].strip()
    if len(text) < 2:
        return jsonify({"entries": [], "tickets": []})
    hits = services.search(text, actor=actor(), public=False, limit=5)
    exclude = request.args.get("ticket", "")
    cases = [t for t in services.similar_closed_tickets(actor(), text) if t.number != exclude][:5]
    return jsonify(
        {
            "entries": [
                {
                    "id": h.entry.id,
                    "question": h.entry.question,
                    "url": url_for("faq.staff_entry", entry_id=h.entry.id),
                    "public": h.entry.visibility == Visibility.PUBLIC,
                }
                for h in hits
            ],
            "tickets": [
                {
                    "number": t.number,
                    "subject": t.subject,
                    "url": url_for("desk.ticket", number=t.number),
                }
                for t in cases
            ],
        }
    )


def ticket_panel(ticket: Ticket):
    """On every ticket page: suggestions while typing; on a closed case, 「FAQにする」."""
    return (
        "faq/_ticket_panel.html",
        {
            "faq_entries": services.entries_from_ticket(ticket),
            "can_make_faq": ticket.status == Status.CLOSED,
            # What the departments did (handoff 対応記録), received through the kernel: each can
            # become the answer of a draft of its own.
            "case_records": (
                plugins.registry().case_records(ticket) if ticket.status == Status.CLOSED else []
            ),
            "faq_form": ActionForm(),
        },
    )


# --- citizens ---------------------------------------------------------------------------------


@public_bp.get("/faq")
@public
def public_index():
    query = request.args.get("q", "")[:MAX_QUERY].strip()
    category_id = _int(request.args.get("category"))
    categories = services.public_categories()
    hits = services.search(query, public=True, category_id=category_id, limit=20) if query else []
    entries = [] if query else services.public_entries(category_id)
    current = next((c for c, _n in categories if c.id == category_id), None)
    return render_template(
        "faq/public_index.html",
        query=query,
        hits=hits,
        entries=entries,
        categories=categories,
        current_category=current,
    )


@public_bp.get("/faq/<int:entry_id>")
@public
def public_entry(entry_id: int):
    entry = services.get_public_entry(entry_id)
    services.record_view(entry)
    voted = request.args.get("thanks") == "1"
    return render_template(
        "faq/public_entry.html",
        entry=entry,
        answer_html=services.render_markdown(entry.answer),
        related=services.related(entry),
        form=HelpfulForm(),
        voted=voted,
    )


@public_bp.post("/faq/<int:entry_id>/helpful")
@public
@rate_limited("faq_vote", "FAQ_VOTE_RATE_LIMIT", key=lambda entry_id: str(entry_id))
def helpful(entry_id: int):
    entry = services.get_public_entry(entry_id)
    if not HelpfulForm().validate_on_submit():
        abort(400)
    cookie = request.cookies.get(VOTER_COOKIE) or ""
    fresh = not (16 <= len(cookie) <= 64 and cookie.replace("-", "").replace("_", "").isalnum())
    if fresh:
        cookie = secrets.token_urlsafe(24)
    counted = services.vote_helpful(entry, services.voter_key(cookie))
    db.session.flush()
    flash(
        _("ご意見ありがとうございました。")
        if counted
        else _("このページには既に「役に立った」をいただいています。"),
        "success",
    )
    response = redirect(url_for("faq_public.public_entry", entry_id=entry_id, thanks=1))
    if fresh:
        response.set_cookie(
            VOTER_COOKIE,
            cookie,
            max_age=365 * 86400,
            httponly=True,
            samesite="Lax",
            secure=request.is_secure,
        )
    return response


def mark_static_public(app: Flask) -> None:
    """The FAQ's own CSS and JS are served to citizens too: make its static route public."""

    @public
    def static_file(filename: str):
        return bp.send_static_file(filename)

    app.view_functions["faq.static"] = static_file
