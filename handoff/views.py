"""Handoff pages: the ticket's panel, the officer's inbox, the external link, the overview."""

from __future__ import annotations

from datetime import UTC, timedelta

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import (
    Response as HttpResponse,
)
from flask_login import current_user

from consult.forms import choices
from consult.models import Role
from consult.services import reports, tickets
from consult.services.actor import DESK_ROLES
from consult.services.errors import ValidationFailed
from consult.timeutil import TOKYO, tokyo_today, utcnow
from consult.web import (
    actor,
    attempt,
    flash_errors,
    public,
    roles_required,
    ticket_page_with_errors,
)
from handoff import joint, services
from handoff.forms import (
    ActionForm,
    EtaForm,
    ExternalRecordForm,
    HandoffForm,
    InfoForm,
    JointSessionForm,
    ReasonForm,
    RecordForm,
    SessionAnswerForm,
)
from handoff.models import Response, SessionMode, Urgency

bp = Blueprint("handoff", __name__)

OFFICER_AND_DESK = (Role.OFFICER, *DESK_ROLES)


# --- the ticket page's panel -------------------------------------------------------------------


def _target_choices(duty=None):
    """Departments, then external bodies; on a closed day the duty department comes first."""
    internal, external, first = [], [], []
    for department in services.handoff_targets():
        label = department.name
        if department.parent_name:
            label = f"{department.name}（{department.parent_name}）"
        if duty is not None and department.id == duty.id:
            first.append((department.id, f"【本日の当番】{label}"))
        elif department.is_external:
            external.append((department.id, f"【外部】{label}"))
        else:
            internal.append((department.id, label))
    return choices(first + internal + external)


def ticket_panel(ticket):
    duty = services.duty_department_today()
    form = g.get("handoff_form")
    if form is None:
        form = HandoffForm(prefix="handoff", departments=[str(duty.id)] if duty else [])
    form.departments.choices = _target_choices(duty)
    return (
        "handoff/panel.html",
        {
            "handoffs": services.for_ticket(ticket),
            "handoff_form": form,
            "duty": duty,
            "info_form": InfoForm(),
            "cancel_form": ReasonForm(),
            "action_form": ActionForm(),
            "now": utcnow(),
            "expectation": services.citizen_expectation,
            "session_form": _session_form,
            "span_text": joint.span_text,
        },
    )


def _session_form(handoff, form: JointSessionForm | None = None) -> JointSessionForm:
    """The joint-session form of one handoff on the ticket page: the one just refused (with
    its messages and what was typed), else a fresh one showing the current session."""
    form = form or g.get("session_forms", {}).get(handoff.id)
    if form is None:
        form = JointSessionForm(prefix=f"session{handoff.id}", formdata=None)
        session = handoff.session
        if session is not None and session.is_live:
            form.starts_at.data = session.starts_at.astimezone(TOKYO).replace(tzinfo=None)
            form.minutes.data = str(
                int((session.ends_at - session.starts_at).total_seconds() // 60)
            )
            form.mode.data = session.mode.value
    modes = SessionMode.labelled()
    if not joint.video_available():
        modes = [(m, label) for m, label in modes if m == SessionMode.COUNTER]
    form.mode.choices = choices(modes)
    return form


def _ticket(number: str):
    return tickets.get_ticket(actor(), number, audit_view=False)


def _back_to_ticket(number: str):
    return redirect(url_for("desk.ticket", number=number) + "#handoffs")


@bp.post("/tickets/<number>/handoffs")
@roles_required(*DESK_ROLES)
def create(number: str):
    ticket = _ticket(number)
    form = HandoffForm(prefix="handoff")
    form.departments.choices = _target_choices(services.duty_department_today())
    if not form.validate_on_submit():
        g.handoff_form = form
        return ticket_page_with_errors(number)
    due_at = None
    if form.due_at.data:
        due_at = form.due_at.data.replace(tzinfo=TOKYO).astimezone(UTC)
    requests = [
        services.Request(
            department_id=department_id,
            summary=form.summary.data,
            response=Response(form.response.data),
            urgency=Urgency(form.urgency.data),
            due_at=due_at,
        )
        for department_id in form.department_ids
    ]
    ok, created = attempt(lambda: services.create(actor(), ticket, requests))
    if not ok:
        g.handoff_form = form
        return ticket_page_with_errors(number)
    flash(f"{len(created)}件の引継ぎを依頼しました。", "success")
    return _back_to_ticket(number)


@bp.get("/tickets/<number>/handoffs.json")
@roles_required(*DESK_ROLES)
def ticket_live(number: str):
    """Polled by the ticket page: the panel's HTML and a version that changes with any change."""
    ticket = _ticket(number)
    version = ticket.last_activity_at.isoformat()
    if request.args.get("since") == version:
        return "", 204  # nothing new: the cheap answer most polls get
    context = ticket_panel(ticket)[1]
    html = render_template("handoff/_list.html", ticket=ticket, **context)
    return jsonify(version=version, html=html)


@bp.get("/handoffs/live.json")
@roles_required(*DESK_ROLES)
def queue_live():
    """Polled by the queue: the open handoffs of the tickets shown, by ticket id."""
    raw = request.args.get("tickets", "")
    ids = [int(part) for part in raw.split(",")[:200] if part.isdigit()]
    states = services.live_states(ids)
    return jsonify(
        {
            str(ticket_id): [
                {
                    "department": h.department.name,
                    "state": h.state.value,
                    "label": h.state_label,
                    "eta_minutes": h.eta_minutes,
                    "eta_at": h.eta_at.astimezone(TOKYO).strftime("%H:%M") if h.eta_at else None,
                }
                for h in handoffs
            ]
            for ticket_id, handoffs in states.items()
        }
    )


def _handoff(handoff_id: int):
    return services.get(actor(), handoff_id)


# --- joint sessions (合同相談) -------------------------------------------------------------------


@bp.post("/handoffs/<int:handoff_id>/session")
@roles_required(*DESK_ROLES)
def session_set(handoff_id: int):
    handoff = _handoff(handoff_id)
    form = _session_form(handoff, JointSessionForm(prefix=f"session{handoff_id}"))
    if form.validate_on_submit():
        starts_at = form.starts_at.data.replace(tzinfo=TOKYO).astimezone(UTC)
        ok, _ = attempt(
            lambda: joint.schedule(
                actor(),
                handoff,
                starts_at=starts_at,
                minutes=int(form.minutes.data),
                mode=SessionMode(form.mode.data),
            ),
            "合同相談の案内（カレンダーの招待付き）を送りました。",
        )
        if ok:
            return _back_to_ticket(handoff.ticket.number)
    g.session_forms = {handoff_id: form}
    return ticket_page_with_errors(handoff.ticket.number)


@bp.post("/handoffs/<int:handoff_id>/session/cancel")
@roles_required(*DESK_ROLES)
def session_cancel(handoff_id: int):
    handoff = _handoff(handoff_id)
    if ActionForm().validate_on_submit():
        attempt(
            lambda: joint.cancel(actor(), handoff), "合同相談を取り消し、取消の案内を送りました。"
        )
    return _back_to_ticket(handoff.ticket.number)


def _ics(handoff):
    session = handoff.session
    if session is None:
        abort(404)
    method = "REQUEST" if session.is_live else "CANCEL"
    return HttpResponse(
        joint.invitation(handoff, session, method),
        mimetype="text/calendar",
        headers={"Content-Disposition": "attachment; filename=joint-session.ics"},
    )


@bp.get("/handoffs/<int:handoff_id>/session.ics")
@roles_required(*OFFICER_AND_DESK)
def session_ics(handoff_id: int):
    return _ics(_handoff(handoff_id))


@bp.post("/handoffs/<int:handoff_id>/session/answer")
@roles_required(Role.OFFICER)
def session_answer(handoff_id: int):
    handoff = _handoff(handoff_id)
    form = SessionAnswerForm(prefix="session")
    form.by_name.data = form.by_name.data or actor().staff.full_name
    if form.validate_on_submit():
        ok, _ = attempt(
            lambda: joint.answer(
                handoff,
                accepted="accept" in request.form,
                note=form.note.data,
                by_name=form.by_name.data,
                actor=actor(),
            ),
            "合同相談への回答を相談センターに伝えました。",
        )
        if ok:
            return redirect(url_for("handoff.detail", handoff_id=handoff_id))
    page = render_template("handoff/detail.html", **_detail_context(handoff, session_form=form))
    return page, 422


@bp.post("/handoffs/<int:handoff_id>/info")
@roles_required(*DESK_ROLES)
def add_information(handoff_id: int):
    handoff = _handoff(handoff_id)
    form = InfoForm()
    if form.validate_on_submit():
        attempt(
            lambda: services.add_information(actor(), handoff, form.text.data),
            "追加情報を送りました。",
        )
    else:
        flash_errors(form)
    return _back_to_ticket(handoff.ticket.number)


@bp.post("/handoffs/<int:handoff_id>/cancel")
@roles_required(*DESK_ROLES)
def cancel(handoff_id: int):
    handoff = _handoff(handoff_id)
    form = ReasonForm()
    if form.validate_on_submit():
        attempt(
            lambda: services.cancel(actor(), handoff, form.reason.data),
            "引継ぎを取り消しました。",
        )
    else:
        flash_errors(form)
    return _back_to_ticket(handoff.ticket.number)


@bp.post("/handoffs/<int:handoff_id>/link/reissue")
@roles_required(*DESK_ROLES)
def reissue_link(handoff_id: int):
    handoff = _handoff(handoff_id)
    if ActionForm().validate_on_submit():
        attempt(
            lambda: services.reissue_link(actor(), handoff),
            "外部リンクを再発行し、メールで送りました（以前のリンクは無効です）。",
        )
    return _back_to_ticket(handoff.ticket.number)


@bp.post("/handoffs/<int:handoff_id>/link/revoke")
@roles_required(*DESK_ROLES)
def revoke_link(handoff_id: int):
    handoff = _handoff(handoff_id)
    if ActionForm().validate_on_submit():
        attempt(lambda: services.revoke_links(actor(), handoff), "外部リンクを無効にしました。")
    return _back_to_ticket(handoff.ticket.number)


# --- the officer's inbox and steps -------------------------------------------------------------


@bp.get("/handoffs")
@roles_required(*OFFICER_AND_DESK)
def inbox():
    tab = request.args.get("tab", "new")
    if tab not in services.INBOX_TABS:
        abort(404)
    before = request.args.get("before", type=int)
    rows, next_before = services.inbox(actor(), tab, before_id=before)
    from consult.views.today import blocks_for

    now = utcnow()
    return render_template(
        "handoff/inbox.html",
        # What every department must see (the consumer alerts), from the 今日 page's blocks.
        home_blocks=blocks_for(current_user, now, everyone_only=True),
        tab=tab,
        tabs=services.INBOX_TABS,
        rows=rows,
        next_before=next_before,
        places=services.where_to_go(rows),
        counts=services.inbox_counts(actor()),
        now=now,
    )


@bp.get("/handoffs/<int:handoff_id>")
@roles_required(*OFFICER_AND_DESK)
def detail(handoff_id: int, **forms):
    handoff = _handoff(handoff_id)
    return render_template("handoff/detail.html", **_detail_context(handoff, **forms))


def _detail_context(handoff, **forms):
    return {
        "handoff": handoff,
        "contact": services.contact_for(actor(), handoff),
        "place": services.where_to_go([handoff]).get(handoff.id),
        "expectation": services.citizen_expectation(handoff),
        "is_officer": actor().staff.role == Role.OFFICER,
        "action_form": ActionForm(),
        "eta_form": forms.get("eta_form") or EtaForm(),
        "record_form": forms.get("record_form") or RecordForm(),
        "decline_form": forms.get("decline_form") or ReasonForm(),
        "session_answer_form": forms.get("session_form") or SessionAnswerForm(prefix="session"),
        "span_text": joint.span_text,
        "now": utcnow(),
    }


def _officer_step(handoff_id: int, form, operation, success: str, form_name: str | None = None):
    handoff = _handoff(handoff_id)
    if not form.validate_on_submit():
        page = render_template(
            "handoff/detail.html", **_detail_context(handoff, **{form_name or "x": form})
        )
        return page, 422
    ok, _ = attempt(lambda: operation(handoff), success)
    if not ok and form_name:
        page = render_template(
            "handoff/detail.html", **_detail_context(_handoff(handoff_id), **{form_name: form})
        )
        return page, 422
    return redirect(url_for("handoff.detail", handoff_id=handoff_id))


@bp.post("/handoffs/<int:handoff_id>/accept")
@roles_required(Role.OFFICER)
def accept(handoff_id: int):
    return _officer_step(
        handoff_id,
        ActionForm(),
        lambda h: services.accept(actor(), h),
        "受け付けました。相談センターに伝わりました。",
    )


@bp.post("/handoffs/<int:handoff_id>/on-the-way")
@roles_required(Role.OFFICER)
def on_the_way(handoff_id: int):
    form = EtaForm()
    return _officer_step(
        handoff_id,
        form,
        lambda h: services.on_the_way(actor(), h, form.eta_minutes.data),
        "「向かっています」を窓口に伝えました。",
        "eta_form",
    )


@bp.post("/handoffs/<int:handoff_id>/arrive")
@roles_required(Role.OFFICER)
def arrive(handoff_id: int):
    return _officer_step(
        handoff_id, ActionForm(), lambda h: services.arrive(actor(), h), "到着を記録しました。"
    )


def _record(form) -> services.Record:
    return services.Record(
        action=form.action.data,
        outcome=form.outcome.data,
        follow_up=form.follow_up.data or "",
        follow_up_by=form.follow_up_by.data or "",
    )


@bp.post("/handoffs/<int:handoff_id>/finish")
@roles_required(Role.OFFICER)
def finish(handoff_id: int):
    form = RecordForm()
    return _officer_step(
        handoff_id,
        form,
        lambda h: services.finish(actor(), h, _record(form)),
        "対応記録を登録しました。",
        "record_form",
    )


@bp.post("/handoffs/<int:handoff_id>/decline")
@roles_required(Role.OFFICER)
def decline(handoff_id: int):
    form = ReasonForm()
    return _officer_step(
        handoff_id,
        form,
        lambda h: services.decline(actor(), h, form.reason.data),
        "差し戻しました。相談センターに戻ります。",
        "decline_form",
    )


# --- external bodies ---------------------------------------------------------------------------

REFUSALS = {
    "expired": "このリンクは有効期限が切れています。",
    "revoked": "このリンクは無効になっています。",
    "invalid": "このリンクは正しくありません。",
}


@bp.route("/x/handoff/<token>", methods=["GET", "POST"])
@public
def external(token: str):
    from consult.transfer.services import role

    if role() == "relay":
        return _external_on_relay(token)
    try:
        handoff = services.open_link(token, request.remote_addr)
    except services.LinkRefused as refusal:
        return render_template("handoff/external_refused.html", message=REFUSALS[str(refusal)]), (
            410 if str(refusal) in ("expired", "revoked") else 404
        )
    form = ExternalRecordForm(prefix="record")
    decline_form = ReasonForm(prefix="decline")
    session_form = SessionAnswerForm(prefix="session")
    status = 200
    if request.method == "POST" and handoff.is_active:
        if "session-by_name" in request.form:
            if session_form.validate_on_submit():
                ok, _ = attempt(
                    lambda: joint.answer(
                        handoff,
                        accepted="accept" in request.form,
                        note=session_form.note.data,
                        by_name=session_form.by_name.data,
                    ),
                    "合同相談へのご回答を相談センターにお伝えしました。",
                )
                if ok:
                    return redirect(url_for("handoff.external", token=token))
            status = 422
        elif "decline-reason" in request.form:
            if decline_form.validate_on_submit():
                ok, _ = attempt(
                    lambda: services.decline_external(handoff, decline_form.reason.data)
                )
                if ok:
                    return render_template("handoff/external_done.html", declined=True)
            status = 422
        elif form.validate_on_submit():
            ok, _ = attempt(
                lambda: services.finish_external(handoff, _record(form), form.author_name.data)
            )
            if ok:
                return render_template("handoff/external_done.html", declined=False)
            status = 422
        else:
            status = 422
    return (
        render_template(
            "handoff/external.html",
            handoff=handoff,
            contact=services.external_contact(handoff, request.remote_addr),
            form=form,
            decline_form=decline_form,
            session_form=session_form,
            span_text=joint.span_text,
            token=token,
        ),
        status,
    )


def _external_on_relay(token: str):
    """The same page on the relay, from the core's copy; what the external body does becomes
    an item for the core (handoff.transfer), which applies it through the same services."""
    from handoff import transfer

    try:
        copy = transfer.open_copy(token)
    except services.LinkRefused as refusal:
        return render_template("handoff/external_refused.html", message=REFUSALS[str(refusal)]), (
            410 if str(refusal) in ("expired", "revoked") else 404
        )
    handoff = transfer.as_handoff(copy)
    address = request.remote_addr
    form = ExternalRecordForm(prefix="record")
    decline_form = ReasonForm(prefix="decline")
    session_form = SessionAnswerForm(prefix="session")
    status = 200
    # Each use of the link is audited at the core, as open_link does on one server.
    transfer.record_on_relay(copy, "open", address)
    if request.method == "POST" and handoff.is_active:
        status = 422
        if "session-by_name" in request.form:
            if handoff.session is not None and session_form.validate_on_submit():
                transfer.record_on_relay(
                    copy,
                    "session",
                    address,
                    accepted="accept" in request.form,
                    note=session_form.note.data,
                    by_name=session_form.by_name.data,
                )
                flash("合同相談へのご回答を相談センターにお伝えしました。", "success")
                return redirect(url_for("handoff.external", token=token))
        elif "decline-reason" in request.form:
            if decline_form.validate_on_submit():
                transfer.record_on_relay(copy, "decline", address, reason=decline_form.reason.data)
                return render_template("handoff/external_done.html", declined=True)
        elif form.validate_on_submit():
            record = _record(form)
            transfer.record_on_relay(
                copy,
                "finish",
                address,
                author_name=form.author_name.data,
                record_action=record.action,
                outcome=record.outcome,
                follow_up=record.follow_up,
                follow_up_by=record.follow_up_by,
            )
            return render_template("handoff/external_done.html", declined=False)
    return (
        render_template(
            "handoff/external.html",
            handoff=handoff,
            contact=copy.data["page"].get("contact") if handoff.is_active else None,
            form=form,
            decline_form=decline_form,
            session_form=session_form,
            span_text=lambda session: session.span,
            token=token,
        ),
        status,
    )


@bp.get("/x/handoff/<token>/session.ics")
@public
def external_ics(token: str):
    from consult.transfer.services import role

    if role() == "relay":
        from handoff import transfer

        try:
            copy = transfer.open_copy(token)
        except services.LinkRefused:
            abort(404)
        session = copy.data["page"].get("session")
        if session is None:
            abort(404)
        return HttpResponse(
            session["ics"],
            mimetype="text/calendar",
            headers={"Content-Disposition": "attachment; filename=joint-session.ics"},
        )
    try:
        handoff = services.open_link(token, request.remote_addr)
    except services.LinkRefused:
        abort(404)
    return _ics(handoff)


# --- the supervisor's overview -----------------------------------------------------------------


def _period():
    """The period asked for, or the last 30 days; bad dates give the 30 days and a message."""
    today = tokyo_today()
    default = reports.Period(today - timedelta(days=29), today, "直近30日")
    if not (request.args.get("start") or request.args.get("end")):
        return default, None
    try:
        return reports.parse_period(request.args), None
    except ValidationFailed as error:
        return default, error.message


@bp.get("/handoffs/overview")
@roles_required(Role.SUPERVISOR, Role.ADMIN)
def overview():
    period, error = _period()
    figures = services.overview(
        actor(), period.start_utc.astimezone(UTC), period.end_utc.astimezone(UTC)
    )
    overdue = services.overdue_now(actor())
    return render_template(
        "handoff/overview.html",
        figures=figures,
        overdue=overdue,
        start=period.start,
        end=period.end,
        error=error,
        now=utcnow(),
    ), (422 if error else 200)
