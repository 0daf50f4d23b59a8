"""記録の保存・廃棄: retention classes (administrators), the month's 廃棄予定一覧 and its approval,
legal holds (supervisors), and the 廃棄簿. No page here shows personal data: numbers, classes,
categories, dates and counts only."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for

from consult.extensions import db
from consult.forms import (
    AuditRetentionForm,
    ConfirmForm,
    HoldBackForm,
    HoldBackKindForm,
    LegalHoldForm,
    LiftHoldForm,
    RetentionClassForm,
    UnlinkedRetentionForm,
)
from consult.models import (
    Category,
    Channel,
    Citizen,
    DisposalList,
    LegalHold,
    Role,
    Ticket,
)
from consult.services import retention
from consult.services import staff as staff_service
from consult.services.errors import ValidationFailed
from consult.web import actor, attempt, flash_errors, roles_required

bp = Blueprint("records", __name__, url_prefix="/records")

READERS = (Role.SUPERVISOR, Role.ADMIN)


@bp.get("/")
@roles_required(*READERS)
def index():
    return render_template(
        "consult/records/index.html",
        due=retention.due_summary(actor()),
        unlinked=retention.unlinked_due(actor()),
        lists=retention.lists(actor())[:12],
        holds=retention.holds(actor(), active_only=True),
        form=ConfirmForm(),
        may_approve=actor().may(*retention.APPROVER_ROLES),
    )


# --- 保存期間 (administrators) -------------------------------------------------------------------


@bp.get("/retention")
@roles_required(Role.ADMIN)
def retention_settings():
    rows = []
    for category in staff_service.list_categories():
        form = RetentionClassForm(prefix=f"c{category.id}")
        form.years.data = str(category.retention_years or "")
        rows.append((category, retention.years_of(category), form))
    audit_form = AuditRetentionForm(years=retention.audit_years())
    unlinked_form = UnlinkedRetentionForm(years=str(retention.unlinked_years()))
    return render_template(
        "consult/records/retention.html",
        rows=rows,
        audit_form=audit_form,
        unlinked_form=unlinked_form,
        unlinked_kinds=retention.unlinked_kinds(),
        defaults=retention.DEFAULT_YEARS,
        fallback=retention.FALLBACK_YEARS,
    )


@bp.post("/retention/categories/<int:category_id>")
@roles_required(Role.ADMIN)
def retention_category(category_id: int):
    category = db.session.get(Category, category_id)
    if category is None:
        abort(404)
    form = RetentionClassForm(prefix=f"c{category.id}")
    if form.validate_on_submit():
        attempt(
            lambda: retention.set_category_years(actor(), category, form.years.data),
            f"「{category.name}」の保存期間を保存しました。",
        )
    else:
        flash_errors(form)
    return redirect(url_for("records.retention_settings"))


@bp.post("/retention/audit")
@roles_required(Role.ADMIN)
def retention_audit():
    form = AuditRetentionForm()
    if form.validate_on_submit():
        attempt(
            lambda: retention.set_audit_years(actor(), form.years.data),
            "監査ログの保存期間を保存しました。",
        )
    else:
        flash_errors(form)
    return redirect(url_for("records.retention_settings"))


@bp.post("/retention/unlinked")
@roles_required(Role.ADMIN)
def retention_unlinked():
    form = UnlinkedRetentionForm()
    if form.validate_on_submit():
        attempt(
            lambda: retention.set_unlinked_years(actor(), form.years.data),
            "相談に結び付かない記録の保存期間を保存しました。",
        )
    else:
        flash_errors(form)
    return redirect(url_for("records.retention_settings"))


# --- 廃棄予定一覧 ---------------------------------------------------------------------------


@bp.post("/lists")
@roles_required(Role.SUPERVISOR)
def prepare():
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    ok, found = attempt(
        lambda: retention.prepare_list(actor()), "今月の廃棄予定一覧を作成しました。"
    )
    if not ok:
        return redirect(url_for("records.index"))
    return redirect(url_for("records.list_page", list_id=found.id))


def _list_or_404(list_id: int) -> DisposalList:
    found = db.session.get(DisposalList, list_id)
    if found is None:
        abort(404)
    return found


@bp.get("/lists/<int:list_id>")
@roles_required(*READERS)
def list_page(list_id: int):
    found = _list_or_404(list_id)
    return render_template(
        "consult/records/list.html",
        found=found,
        summary=retention.list_summary(actor(), found),
        items=retention.list_items(actor(), found),
        unlinked=retention.list_unlinked(actor(), found),
        form=ConfirmForm(),
        hold_form=HoldBackForm(),
        kind_form=HoldBackKindForm(),
        may_approve=actor().may(*retention.APPROVER_ROLES),
    )


@bp.post("/lists/<int:list_id>/approve")
@roles_required(Role.SUPERVISOR)
def approve(list_id: int):
    found = _list_or_404(list_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    attempt(
        lambda: retention.approve(actor(), found),
        "廃棄予定一覧を承認しました。保留したものを除き、次の廃棄処理で廃棄されます。",
    )
    return redirect(url_for("records.list_page", list_id=list_id))


@bp.post("/lists/<int:list_id>/hold-back")
@roles_required(Role.SUPERVISOR)
def hold_back(list_id: int):
    found = _list_or_404(list_id)
    form = HoldBackForm()
    if form.validate_on_submit():
        back = form.release.data != "1"
        attempt(
            lambda: retention.hold_back(actor(), found, form.number.data, back=back),
            "廃棄を保留しました。" if back else "保留を取り消しました。",
        )
    else:
        flash_errors(form)
    return redirect(url_for("records.list_page", list_id=list_id))


@bp.post("/lists/<int:list_id>/hold-back-kind")
@roles_required(Role.SUPERVISOR)
def hold_back_kind(list_id: int):
    found = _list_or_404(list_id)
    form = HoldBackKindForm()
    if form.validate_on_submit():
        back = form.release.data != "1"
        attempt(
            lambda: retention.hold_back_unlinked(actor(), found, form.kind.data, back=back),
            "この種類の記録の廃棄を保留しました。" if back else "保留を取り消しました。",
        )
    else:
        flash_errors(form)
    return redirect(url_for("records.list_page", list_id=list_id))


# --- 訴訟ホールド ---------------------------------------------------------------------------


@bp.route("/holds", methods=["GET", "POST"])
@roles_required(*READERS)
def holds():
    form = LegalHoldForm()
    if request.method == "POST":
        if not actor().may(*retention.APPROVER_ROLES):
            abort(403)
        if form.validate_on_submit():
            ok, _ = attempt(lambda: _set_hold(form), "訴訟ホールドを設定しました。")
            if ok:
                return redirect(url_for("records.holds"))
    return render_template(
        "consult/records/holds.html",
        holds=retention.holds(actor()),
        form=form,
        lift_form=LiftHoldForm(),
        may_approve=actor().may(*retention.APPROVER_ROLES),
    ), (422 if request.method == "POST" else 200)


def _set_hold(form: LegalHoldForm):
    import sqlalchemy as sa

    number = (form.ticket_number.data or "").strip()
    ticket = citizen = None
    if number:
        ticket = db.session.scalar(sa.select(Ticket).where(Ticket.number == number))
        if ticket is None:
            raise ValidationFailed(f"相談番号「{number}」の相談はありません。")
    if form.citizen_id.data:
        citizen = db.session.get(Citizen, form.citizen_id.data)
        if citizen is None:
            raise ValidationFailed(f"相談者番号「{form.citizen_id.data}」の相談者はいません。")
    return retention.set_hold(actor(), ticket=ticket, citizen=citizen, reason=form.reason.data)


@bp.post("/holds/<int:hold_id>/lift")
@roles_required(Role.SUPERVISOR)
def lift(hold_id: int):
    hold = db.session.get(LegalHold, hold_id)
    if hold is None:
        abort(404)
    form = LiftHoldForm()
    if form.validate_on_submit():
        attempt(
            lambda: retention.lift_hold(actor(), hold, form.reason.data),
            "訴訟ホールドを解除しました。",
        )
    else:
        flash_errors(form)
    return redirect(url_for("records.holds"))


# --- 廃棄簿 ---------------------------------------------------------------------------------


@bp.get("/register")
@roles_required(*READERS)
def register():
    return render_template(
        "consult/records/register.html",
        rows=retention.register_rows(actor()),
        labels={**retention.KERNEL_LABELS, **_plugin_labels()},
        channels={member: member.label for member in Channel},
    )


def _plugin_labels() -> dict[str, str]:
    return {
        "mail_raw": "受信メールの原本",
        "mail_attachment": "受信メールの添付ファイル",
        "mail_sender": "メールの差出人",
        "line_event": "LINEのメッセージ内容",
        "line_delivery": "LINEから届いた原本",
        "line_media": "LINEで届いた画像・ファイル",
        "line_contact": "LINEのユーザーID",
        "line_contact_unlinked": "お知らせ登録を残したLINE利用者の相談者との結び付き",
        "booking": "予約の氏名・連絡先・相談内容",
        "handoff_text": "引継ぎの概要・対応記録",
        "faq_source": "FAQの元になった相談への参照",
        "webhook_body": "送信待ちのWebhook本文",
        "audit_event": "保存期間を過ぎた監査ログ",
    }
