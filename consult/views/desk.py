"""The consultant's desk: the queue, search, the ticket page and its actions."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from markupsafe import Markup

from consult import plugins
from consult.forms import (
    AssignForm,
    CitizenForm,
    CloseForm,
    ConfirmForm,
    DetailsForm,
    LinkCitizenForm,
    NoteForm,
    ReopenForm,
    SearchFilterForm,
    SearchForm,
    StatusForm,
    choices,
)
from consult.models import CHANNEL_LABELS, STATUS_LABELS, Channel, Status
from consult.services import callbacks, citizens, safety, tickets
from consult.services import staff as staff_service
from consult.services.actor import DESK_ROLES
from consult.timeutil import utcnow
from consult.web import actor, attempt, roles_required

bp = Blueprint("desk", __name__)


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() else None


def _queue_filter() -> tickets.QueueFilter:
    channel = request.args.get("channel") or None
    status = request.args.get("status") or None
    mine = request.args.get("mine") == "1"
    assignee = request.args.get("assignee", "")
    return tickets.QueueFilter(
        channel=channel if channel in {c.value for c in Channel} else None,
        status=status if status in {s.value for s in Status} else None,
        category_id=_int_arg("category"),
        assignee_id=current_user.id if mine else (int(assignee) if assignee.isdigit() else None),
        unassigned=assignee == "none" and not mine,
        include_closed=request.args.get("closed") == "1",
    )


@bp.get("/tickets")
@roles_required(*DESK_ROLES)
def queue():
    flt = _queue_filter()
    page = tickets.queue(
        actor(),
        flt,
        after=tickets.Cursor.decode(request.args.get("after")),
        before=tickets.Cursor.decode(request.args.get("before")),
        page_size=int(current_app.config["MADOGUCHI"]["QUEUE_PAGE_SIZE"]),
    )
    args = {k: v for k, v in request.args.items() if k not in {"after", "before"} and v}
    callbacks_all = request.args.get("callbacks") == "all"
    return render_template(
        "consult/queue.html",
        page=page,
        flt=flt,
        args=args,
        mine=request.args.get("mine") == "1",
        categories=staff_service.list_categories(),
        desk_staff=tickets.desk_staff(),
        search_form=SearchForm(),
        channel_choices=CHANNEL_LABELS,
        status_choices=STATUS_LABELS,
        repeat_flags=safety.repeated_flags(page.tickets),
        callbacks_all=callbacks_all,
        due_callbacks=callbacks.due(actor(), staff_id=None if callbacks_all else current_user.id),
        now=utcnow(),
    )


# Results on the search page: the best 50 (the filters narrow a longer list).
PAGE = 50


@bp.post("/tickets/search")
@roles_required(*DESK_ROLES)
def search():
    """POST, so that phone numbers and names never appear in URLs or access logs."""
    from consult.services import search as search_index

    form = SearchFilterForm(categories=staff_service.list_categories(), staff=tickets.desk_staff())
    results = None
    if form.validate_on_submit():
        found = tickets.find_by_number(actor(), form.q.data)
        if found is not None:
            return redirect(url_for("desk.ticket", number=found.number))
        filters = search_index.Filters.of_days(
            since=form.since.data,
            until=form.until.data,
            channel=form.channel.data,
            status=form.status.data,
            category_id=form.category_id.data,
            assignee_id=form.assignee_id.data,
        )
        results = tickets.search_results(actor(), form.q.data, limit=PAGE, filters=filters)
    return render_template("consult/search.html", form=form, results=results)


def _load(number: str, audit_view: bool = False):
    return tickets.get_ticket(actor(), number, audit_view=audit_view)


@bp.get("/tickets/<number>")
@roles_required(*DESK_ROLES)
def ticket(number: str):
    item = _load(number, audit_view=True)
    return render_template("consult/ticket.html", **_ticket_context(item))


@bp.get("/tickets/<number>/print")
@roles_required(*DESK_ROLES)
def print_ticket(number: str):
    """The A4 page for the paper file: header, citizen, timeline, 対応記録; no forms. Audited as a
    print of the ticket's personal data (its own action, not a view)."""
    item = tickets.get_ticket(actor(), number, audit_view=False)
    tickets.record_print(actor(), item)
    return render_template(
        "consult/ticket_print.html",
        ticket=item,
        timeline=item.timeline,
        records=plugins.registry().case_records(item),
        callbacks=callbacks.for_ticket(item),
        printed_at=utcnow(),
    )


def _ticket_context(item, **forms):
    allowed = sorted(tickets.TRANSITIONS[item.status], key=list(Status).index)
    status_form = forms.get("status_form") or StatusForm(allowed=allowed)
    assign_form = forms.get("assign_form") or AssignForm(
        assignee_id=item.assignee_id if item.assignee_id else ""
    )
    assign_form.shown_assignee.data = str(item.assignee_id or "none")
    assign_form.assignee_id.choices = choices(
        ((s.id, f"{s.full_name}（{s.role_label}）") for s in tickets.desk_staff()),
        blank="担当者なし",
    )
    details_form = forms.get("details_form") or DetailsForm(
        subject=item.subject, category_id=item.category_id, priority=item.priority.value
    )
    details_form.category_id.choices = choices(
        ((c.id, c.name) for c in staff_service.list_categories(active_only=True)), blank="未分類"
    )
    citizen_form = forms.get("citizen_form") or (
        CitizenForm(obj=item.citizen) if item.citizen else CitizenForm()
    )
    # Each panel renders with its own context: `{% include ... with context %}` in the page
    # would only pass the page's variables, never the panel's.
    panels = []
    for panel in plugins.registry().ticket_panels:
        rendered = panel.render(item)
        if rendered:
            # Jinja's include cannot take a context of its own: render each panel here, with
            # the panel's context. The output of an autoescaped template is safe HTML.
            template, context = rendered
            html = render_template(template, ticket=item, **context)
            panels.append(Markup(html))  # noqa: S704 (autoescaped template output)
    earlier = (
        citizens.recent_tickets(item.citizen_id, exclude_id=item.id) if item.citizen_id else []
    )
    return {
        "ticket": item,
        "timeline": item.timeline,
        "earlier": earlier,
        "panels": panels,
        "note_form": forms.get("note_form") or NoteForm(),
        "status_form": status_form,
        "allowed": allowed,
        "close_form": forms.get("close_form") or CloseForm(summary=item.resolution_summary or ""),
        "reopen_form": forms.get("reopen_form") or ReopenForm(),
        "assign_form": assign_form,
        "details_form": details_form,
        "citizen_form": citizen_form,
        "link_form": LinkCitizenForm(),
        "confirm_form": ConfirmForm(),
    }


def _rerender(item, **forms):
    """A form with errors: the ticket page again, with the messages next to their fields."""
    return render_template("consult/ticket.html", **_ticket_context(item, **forms)), 422


def _back(item):
    return redirect(url_for("desk.ticket", number=item.number) + "#timeline")


def _action(number: str, form, operation, success: str, form_name: str):
    item = _load(number)
    if not form.validate_on_submit():
        return _rerender(item, **{form_name: form})
    ok, _ = attempt(lambda: operation(item, form), success)
    if not ok:
        return _rerender(_load(number), **{form_name: form})
    return _back(item)


@bp.post("/tickets/<number>/note")
@roles_required(*DESK_ROLES)
def add_note(number: str):
    return _action(
        number,
        NoteForm(),
        lambda item, form: tickets.add_note(actor(), item, form.body.data),
        "メモを追加しました。",
        "note_form",
    )


@bp.post("/tickets/<number>/status")
@roles_required(*DESK_ROLES)
def change_status(number: str):
    return _action(
        number,
        StatusForm(allowed=list(Status)),
        lambda item, form: tickets.change_status(actor(), item, form.status.data, form.reason.data),
        "状態を変更しました。",
        "status_form",
    )


@bp.post("/tickets/<number>/close")
@roles_required(*DESK_ROLES)
def close(number: str):
    return _action(
        number,
        CloseForm(),
        lambda item, form: tickets.close(actor(), item, form.summary.data),
        "相談を完了にしました。",
        "close_form",
    )


@bp.post("/tickets/<number>/reopen")
@roles_required(*DESK_ROLES)
def reopen(number: str):
    return _action(
        number,
        ReopenForm(),
        lambda item, form: tickets.reopen(actor(), item, form.reason.data),
        "相談を再開しました。",
        "reopen_form",
    )


def _shown_assignee(value: str | None) -> int | str | None:
    """The assignee the page showed: an id, None for nobody, tickets.NOT_SHOWN without it."""
    if value == "none":
        return None
    return int(value) if (value or "").isdigit() else tickets.NOT_SHOWN


@bp.post("/tickets/<number>/assign")
@roles_required(*DESK_ROLES)
def assign(number: str):
    form = AssignForm()
    form.assignee_id.choices = choices(
        ((s.id, s.full_name) for s in tickets.desk_staff()), blank="担当者なし"
    )
    return _action(
        number,
        form,
        lambda item, form: tickets.assign(
            actor(), item, form.assignee_id.data, shown=_shown_assignee(form.shown_assignee.data)
        ),
        "担当者を変更しました。",
        "assign_form",
    )


@bp.post("/tickets/<number>/details")
@roles_required(*DESK_ROLES)
def details(number: str):
    form = DetailsForm()
    form.category_id.choices = choices(
        ((c.id, c.name) for c in staff_service.list_categories(active_only=True)), blank="未分類"
    )
    return _action(
        number,
        form,
        lambda item, form: tickets.update_details(
            actor(),
            item,
            subject=form.subject.data,
            category_id=form.category_id.data,
            priority=form.priority.data,
        ),
        "相談の内容を更新しました。",
        "details_form",
    )


def _citizen_input(form: CitizenForm) -> citizens.CitizenInput:
    return citizens.CitizenInput(
        name=form.name.data,
        kana=form.kana.data,
        phone=form.phone.data,
        email=form.email.data,
        address=form.address.data,
    )


@bp.post("/tickets/<number>/citizen")
@roles_required(*DESK_ROLES)
def save_citizen(number: str):
    """Create the ticket's citizen, or update the one it has."""

    return _action(
        number,
        CitizenForm(),
        lambda item, form: tickets.save_citizen(actor(), item, _citizen_input(form)),
        "相談者の情報を保存しました。",
        "citizen_form",
    )


@bp.post("/tickets/<number>/citizen/link")
@roles_required(*DESK_ROLES)
def link_citizen(number: str):
    def operation(item, form):
        citizen = citizens.get_citizen(actor(), form.citizen_id.data, audit_view=False)
        tickets.link_citizen(actor(), item, citizen)

    return _action(number, LinkCitizenForm(), operation, "相談者を紐付けました。", "link_form")


@bp.post("/tickets/<number>/citizen/unlink")
@roles_required(*DESK_ROLES)
def unlink_citizen(number: str):
    return _action(
        number,
        ConfirmForm(),
        lambda item, form: tickets.link_citizen(actor(), item, None),
        "相談者の紐付けを外しました。",
        "confirm_form",
    )


@bp.post("/tickets/<number>/session/end")
@roles_required(*DESK_ROLES)
def end_session(number: str):
    return _action(
        number,
        ConfirmForm(),
        lambda item, form: tickets.end_session(actor(), item),
        "対応時間の記録を終了しました。",
        "confirm_form",
    )


@bp.post("/tickets/<number>/callbacks/<int:callback_id>/done")
@roles_required(*DESK_ROLES)
def callback_done(number: str, callback_id: int):
    return _action(
        number,
        ConfirmForm(),
        lambda item, form: callbacks.mark_done(actor(), item, callback_id),
        "折り返しを済みにしました。",
        "confirm_form",
    )


@bp.post("/citizens/match")
@roles_required(*DESK_ROLES)
def match_citizens():
    """Earlier cases of citizens matching what the consultant types (JSON, POST, audited)."""
    form = CitizenForm()
    if not form.validate_on_submit():
        return jsonify({"matches": [], "errors": form.errors}), 422
    matches = citizens.find_matches(
        actor(), phone=form.phone.data, name=form.name.data, email=form.email.data
    )
    return jsonify(
        {
            "matches": [
                {
                    "id": m.citizen.id,
                    "name": m.citizen.name or "（氏名未登録）",
                    "kana": m.citizen.kana or "",
                    "reason": m.reason,
                    "tickets": [
                        {
                            "number": t.number,
                            "subject": t.subject,
                            "status": t.status_label,
                            "url": url_for("desk.ticket", number=t.number),
                        }
                        for t in m.tickets
                    ],
                }
                for m in matches
            ]
        }
    )


@bp.get("/citizens/<int:citizen_id>")
@roles_required(*DESK_ROLES)
def citizen(citizen_id: int):
    item = citizens.get_citizen(actor(), citizen_id)
    return render_template(
        "consult/citizen.html", citizen=item, tickets=citizens.recent_tickets(item.id, limit=100)
    )
