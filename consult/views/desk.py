"""The consultant's desk: the queue, search, the ticket page and its actions."""

from __future__ import annotations

from urllib.parse import quote

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_login import current_user
from markupsafe import Markup

from consult import plugins
from consult.forms import (
    AssignForm,
    AttachmentForm,
    CitizenFlagForm,
    CitizenForm,
    CloseForm,
    ConfirmForm,
    DetailsForm,
    DisclosureForm,
    HandOverForm,
    LinkCitizenForm,
    MergeCitizenForm,
    MergeTicketForm,
    NoteForm,
    RelatedTicketForm,
    ReopenForm,
    SearchFilterForm,
    SearchForm,
    StatusForm,
    choices,
)
from consult.models import Channel, Role, Status
from consult.services import (
    attachments,
    callbacks,
    citizens,
    disclosure,
    disclosure_jobs,
    merge,
    protection,
    safety,
    tickets,
)
from consult.services import staff as staff_service
from consult.services.actor import DESK_ROLES
from consult.services.errors import NotFound
from consult.services.normalize import nfkc
from consult.timeutil import utcnow
from consult.web import (
    actor,
    attempt,
    attempt_intake,
    attempt_on_field,
    body_limit,
    passive,
    roles_required,
)

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
        channel_choices=Channel,
        status_choices=Status,
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
    item = _load(number, audit_view=False)
    if item.merged_into_id:
        survivor = merge.resolve_ticket(item)
        flash(f"相談 {item.number} は相談 {survivor.number} に統合されています。", "info")
        return redirect(url_for("desk.ticket", number=survivor.number))
    tickets.record_view(actor(), item)
    return render_template("consult/ticket.html", **_ticket_context(item))


@bp.get("/tickets/<number>/live")
@passive  # asked by the page itself on another person's event: not the user's activity
@roles_required(*DESK_ROLES)
def ticket_live(number: str):
    """The header and timeline of an open ticket page, for its live refresh (JSON of HTML).

    Not the whole page again: no panels rendered, and the view is audited at most once per
    person and ticket in ten minutes (`tickets.record_live_view`), not once per event."""
    item = _load(number)
    tickets.record_live_view(actor(), item)
    timeline, _merged = merge.timeline_of(item)
    moved = None
    if item.merged_into_id:  # merged while the page was open: it says where the case went
        survivor = merge.resolve_ticket(item)
        moved = {
            "text": f"この相談は相談 {survivor.number} に統合されました。",
            "href": url_for("desk.ticket", number=survivor.number),
            "link": f"相談 {survivor.number} を開く",
        }
    response = jsonify(
        moved=moved,
        head=render_template("consult/_ticket_meta.html", ticket=item),
        timeline=render_template(
            "consult/_timeline.html",
            ticket=item,
            timeline=timeline,
            entry_attachments=_entry_attachments(timeline),
        ),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _entry_attachments(timeline) -> dict:
    return attachments.by_ids(
        [e.data["attachment_id"] for e in timeline if "attachment_id" in (e.data or {})]
    )


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
        timeline=merge.timeline_of(item)[0],
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
    colleagues = tickets.desk_staff()
    assign_form.assignee_id.choices = choices(
        ((s.id, f"{s.full_name}（{s.role_label}）") for s in colleagues),
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
    if item.citizen and not protection.may_see_whereabouts(actor(), item.citizen):
        citizen_form.address.data = ""  # 支援措置: not shown, and left as it is when saved
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
    handover_form = forms.get("handover_form") or HandOverForm()
    handover_form.colleague_id.choices = choices(
        (
            (s.id, f"{s.full_name}（{s.role_label}）")
            for s in colleagues
            if s.id != item.assignee_id
        ),
        blank="選んでください",
    )
    timeline, merged_numbers = merge.timeline_of(item)
    return {
        "ticket": item,
        "timeline": timeline,
        "entry_attachments": _entry_attachments(timeline),
        "handover_form": handover_form,
        "merged_numbers": merged_numbers,
        "related": merge.related(item),
        "related_form": forms.get("related_form") or RelatedTicketForm(),
        "merge_form": forms.get("merge_form") or MergeTicketForm(),
        "can_merge": current_user.role in merge.MERGE_ROLES,
        "candidates": forms.get("candidates") or [],
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
        birth_date=form.birth_date.data,
    )


@bp.post("/tickets/<number>/citizen")
@roles_required(*DESK_ROLES)
def save_citizen(number: str):
    """Create the ticket's citizen, or update the one it has."""

    item = _load(number)
    form = CitizenForm()
    if not form.validate_on_submit():
        return _rerender(item, citizen_form=form)
    ok, _, candidates = attempt_intake(
        lambda: tickets.save_citizen(
            actor(), item, _citizen_input(form), choice=form.citizen_choice.data
        ),
        "相談者の情報を保存しました。",
    )
    if not ok:
        item = _load(number)
        return _rerender(item, citizen_form=form, candidates=candidates)
    return _back(item)


def render_choice(item, candidates, form: CitizenForm | None = None):
    """The ticket page asking this person or a new one, for an intake begun elsewhere (the
    email panel's 差出人を登録): the citizen form holds what is known of the sender."""
    return _rerender(item, citizen_form=form or CitizenForm(), candidates=candidates)


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
        actor(),
        phone=form.phone.data,
        name=form.name.data,
        email=form.email.data,
        kana=form.kana.data,
        birth_date=form.birth_date.data,
    )
    return jsonify(
        {
            "matches": [
                {
                    "id": m.citizen.id,
                    "name": m.citizen.name or "（氏名未登録）",
                    "kana": m.citizen.kana or "",
                    "reason": m.reason,
                    "score": m.score,
                    "strong": m.strong,
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


def _citizen_or_404(citizen_id: int, audit_view: bool = False):
    return citizens.get_citizen(actor(), citizen_id, audit_view=audit_view, follow=False)


def _citizen_page(item, merge_form=None, status=200, flag_forms=None):
    """The citizen's page: details, cases, possible duplicates, corrections, and (for a
    supervisor) merge, 支援措置, 利用停止 and the disclosure bundle."""
    # Duplicates are looked for with the person's own phones and emails: not for a reader
    # who may not see a protected person's whereabouts (the lookup itself would reveal them).
    duplicates = []
    if protection.may_see_whereabouts(actor(), item):
        duplicates = [
            c
            for c in citizens.match(actor(), citizens.CitizenInput.of(item), with_tickets=False)
            if c.citizen.id != item.id
        ]
    supervisor = current_user.role == Role.SUPERVISOR
    flag_forms = flag_forms or {}
    return render_template(
        "consult/citizen.html",
        citizen=item,
        tickets=citizens.recent_tickets(item.id, limit=100),
        duplicates=duplicates,
        merge_form=merge_form or MergeCitizenForm(),
        can_merge=current_user.role in merge.MERGE_ROLES,
        revisions=citizens.revisions(actor(), item),
        field_labels=citizens.FIELD_LABELS,
        supervisor=supervisor,
        protect_form=flag_forms.get("protected")
        or CitizenFlagForm(on="0" if item.protected else "1"),
        stop_form=flag_forms.get("use_stopped")
        or CitizenFlagForm(on="0" if item.use_stopped else "1"),
        flag_history=protection.flag_history(actor(), item),
        disclosure_form=DisclosureForm(),
    ), status


@bp.post("/citizens/<int:citizen_id>/<any(protected, use_stopped):flag>")
@roles_required(Role.SUPERVISOR)
def citizen_flag(citizen_id: int, flag: str):
    """Set or lift 支援措置 / 利用停止, with a reason (supervisors; audited)."""
    item = _citizen_or_404(citizen_id)
    form = CitizenFlagForm()
    if not form.validate_on_submit() or form.on.data not in ("0", "1"):
        if form.on.data not in ("0", "1"):
            form.reason.errors = [*form.reason.errors, "操作が正しくありません。"]
        return _citizen_page(item, status=422, flag_forms={flag: form})
    on = form.on.data == "1"
    operation = {
        ("protected", True): protection.protect,
        ("protected", False): protection.unprotect,
        ("use_stopped", True): protection.stop_use,
        ("use_stopped", False): protection.resume_use,
    }[(flag, on)]
    label = "支援措置" if flag == "protected" else "利用停止"
    attempt(
        lambda: operation(actor(), item, form.reason.data),
        f"{label}を{'設定' if on else '解除'}しました。",
    )
    return redirect(url_for("desk.citizen", citizen_id=item.id))


@bp.get("/citizens/<int:citizen_id>/disclosure")
@roles_required(*disclosure.DISCLOSE_ROLES)
def disclosure_page(citizen_id: int):
    """The disclosure bundle's page: the bundles asked for, 作成中… until the worker has made
    them (the live channel reloads the page), then the download; a failure with its reason."""
    item = _citizen_or_404(citizen_id)
    return render_template(
        "consult/disclosure.html",
        citizen=item,
        jobs=disclosure_jobs.jobs_of(actor(), item),
        formats=disclosure_jobs.FORMATS,
        keep_days=disclosure_jobs.KEEP_DAYS,
        slow=disclosure_jobs.slow_ids(actor(), item),
        form=DisclosureForm(),
    )


@bp.post("/citizens/<int:citizen_id>/disclosure")
@roles_required(*disclosure.DISCLOSE_ROLES)
def disclosure_produce(citizen_id: int):
    """Ask the worker for the PDF or the JSON (the request audited); back to the page."""
    item = _citizen_or_404(citizen_id)
    form = DisclosureForm()
    if not form.validate_on_submit() or form.fmt.data not in disclosure_jobs.FORMATS:
        abort(400)
    label = disclosure_jobs.FORMATS[form.fmt.data][1]
    attempt(
        lambda: disclosure_jobs.request_bundle(actor(), item, form.fmt.data),
        f"{label}の作成を依頼しました。できあがるとこの画面に表示されます。",
    )
    return redirect(url_for("desk.disclosure_page", citizen_id=item.id))


@bp.post("/citizens/<int:citizen_id>/disclosure/<int:job_id>/retry")
@roles_required(*disclosure.DISCLOSE_ROLES)
def disclosure_retry(citizen_id: int, job_id: int):
    item = _citizen_or_404(citizen_id)
    form = DisclosureForm()
    if not form.validate_on_submit():
        abort(400)
    job = disclosure_jobs.get_job(item, job_id)
    attempt(
        lambda: disclosure_jobs.retry(actor(), job),
        "もう一度作成を依頼しました。できあがるとこの画面に表示されます。",
    )
    return redirect(url_for("desk.disclosure_page", citizen_id=item.id))


@bp.get("/citizens/<int:citizen_id>/disclosure/<int:job_id>/download")
@roles_required(*disclosure.DISCLOSE_ROLES)
def disclosure_download(citizen_id: int, job_id: int):
    """The stored bundle, to the roles that may produce it; every download audited."""
    item = _citizen_or_404(citizen_id)
    job = disclosure_jobs.get_job(item, job_id)
    path, name, mimetype = disclosure_jobs.download(actor(), job)
    response = send_file(path, mimetype=mimetype, as_attachment=True, max_age=0, etag=False)
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(name)}"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    # The bundle is the person's own data for the person: never scrubbed on the way out.
    response.direct_passthrough = True
    return response


@bp.get("/citizens/<int:citizen_id>")
@roles_required(*DESK_ROLES)
def citizen(citizen_id: int):
    item = _citizen_or_404(citizen_id)
    if item.merged_into_id:
        survivor = citizens.resolve(item)
        flash(f"相談者番号 {item.id} は相談者番号 {survivor.id} に統合されています。", "info")
        return redirect(url_for("desk.citizen", citizen_id=survivor.id))
    citizens.get_citizen(actor(), item.id)  # audited view
    return _citizen_page(item)


def _merge_step(source, target, form, field):
    """Both merge forms: the service decides between confirming and merging; its refusal is
    shown next to the field that named the other record, and nothing is changed."""
    return attempt_on_field(
        lambda: merge.merge_step(
            actor(), source, target, form.reason.data or "", form.confirmed.data == "1"
        ),
        field,
    )


@bp.post("/citizens/<int:citizen_id>/merge")
@roles_required(Role.SUPERVISOR)
def merge_citizen(citizen_id: int):
    """Two steps: the form names the duplicate, a page shows both side by side, and only the
    confirmed second post merges the duplicate into this citizen."""
    target = _citizen_or_404(citizen_id)
    form = MergeCitizenForm()
    if not form.validate_on_submit():
        return _citizen_page(target, merge_form=form, status=422)
    try:
        source = citizens.get_citizen(actor(), form.other_id.data, audit_view=False, follow=False)
    except NotFound as error:
        form.other_id.errors.append(error.message)
        return _citizen_page(target, merge_form=form, status=422)
    ok, record = _merge_step(source, target, form, form.other_id)
    if not ok:
        return _citizen_page(target, merge_form=form, status=422)
    if record is None:
        return render_template(
            "consult/merge_citizens.html",
            source=citizens.get_citizen(actor(), source.id, follow=False),  # shown: audited
            target=target,
            source_tickets=citizens.recent_tickets(source.id, limit=20),
            target_tickets=citizens.recent_tickets(target.id, limit=20),
            form=form,
        )
    flash(
        f"相談者番号 {source.id} を統合しました。元に戻すには管理者に依頼してください。", "success"
    )
    return redirect(url_for("desk.citizen", citizen_id=target.id))


@bp.post("/tickets/<number>/merge")
@roles_required(Role.SUPERVISOR)
def merge_ticket(number: str):
    """This ticket (the duplicate) into another, in two steps as for citizens."""
    item = _load(number)
    form = MergeTicketForm()
    if not form.validate_on_submit():
        return _rerender(item, merge_form=form)
    target_number = nfkc(form.target.data or "").strip()
    try:
        target = tickets.get_ticket(actor(), target_number, audit_view=False)
    except NotFound:
        form.target.errors.append(f"相談番号 {target_number} の相談が見つかりません。")
        return _rerender(item, merge_form=form)
    ok, record = _merge_step(item, target, form, form.target)
    if not ok:
        return _rerender(_load(number), merge_form=form)
    if record is None:
        return render_template("consult/merge_tickets.html", source=item, target=target, form=form)
    flash(f"相談 {item.number} を相談 {target.number} に統合しました。", "success")
    return redirect(url_for("desk.ticket", number=target.number) + "#timeline")


@bp.post("/tickets/<number>/related")
@roles_required(*DESK_ROLES)
def add_related(number: str):
    item = _load(number)
    form = RelatedTicketForm()
    if not form.validate_on_submit():
        return _rerender(item, related_form=form)
    other_number = nfkc(form.other.data or "").strip()
    try:
        other = tickets.get_ticket(actor(), other_number, audit_view=False)
    except NotFound:
        form.other.errors.append(f"相談番号 {other_number} の相談が見つかりません。")
        return _rerender(item, related_form=form)
    ok, _ = attempt(
        lambda: merge.link_tickets(actor(), item, other),
        f"相談 {other.number} を関連する相談にしました。",
    )
    if not ok:
        return _rerender(item, related_form=form)
    return redirect(url_for("desk.ticket", number=item.number) + "#related")


@bp.post("/tickets/<number>/related/<int:link_id>/remove")
@roles_required(*DESK_ROLES)
def remove_related(number: str, link_id: int):
    return _action(
        number,
        ConfirmForm(),
        lambda item, form: merge.unlink_tickets(actor(), item, link_id),
        "関連付けを外しました。",
        "confirm_form",
    )


@bp.post("/tickets/<number>/handover")
@roles_required(*DESK_ROLES)
def hand_over(number: str):
    form = HandOverForm()
    form.colleague_id.choices = choices(
        ((s.id, s.full_name) for s in tickets.desk_staff()), blank="選んでください"
    )
    return _action(
        number,
        form,
        lambda item, form: tickets.hand_over(
            actor(), item, int(form.colleague_id.data), form.handover_note.data
        ),
        "相談を引き継ぎました。",
        "handover_form",
    )


def attachments_panel(item):
    """The ticket page's 添付ファイル panel: the files and the form to add one."""
    from consult.services import safe_files

    listed = attachments.for_ticket(item)
    return "consult/_attachments_panel.html", {
        "attachments": listed,
        "safe": safe_files.for_source("attachment", [a.id for a in listed]),
        "attachment_form": AttachmentForm(),
        "max_label": attachments.size_label(attachments.max_bytes()),
        "allowed": attachments.ALLOWED_TEXT,
    }


@bp.post("/tickets/<number>/attachments")
@roles_required(*DESK_ROLES)
@body_limit(lambda: attachments.max_bytes() + 64 * 1024)
def add_attachment(number: str):
    """Up to ATTACHMENT_MAX_BYTES (a larger body is cut off with 413 before it is read)."""
    form = AttachmentForm()
    item = _load(number)
    if not form.validate_on_submit():
        return _rerender(item)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        ok, _ = attempt(lambda: attachments.add(actor(), item, "", b""))
    else:
        try:
            data = upload.read(attachments.max_bytes() + 1)
        finally:
            upload.close()  # a large upload is spooled to a temporary file
        ok, _ = attempt(
            lambda: attachments.add(actor(), item, upload.filename, data),
            "ファイルを添付しました。",
        )
    if not ok:
        return _rerender(_load(number))
    return _back(item)


@bp.get("/tickets/<number>/attachments/<int:attachment_id>")
@roles_required(*DESK_ROLES)
def attachment(number: str, attachment_id: int):
    """The file is never served as it was stored: this leads to its converted form (無害化,
    consult.views.files), where every view is audited. Another ticket's file: 404."""
    from consult.services import safe_files

    row = safe_files.of_source("attachment", attachment_id)
    if row is None or row.ticket.number != number:
        abort(404)
    return redirect(url_for("files.show", file_id=row.id))
