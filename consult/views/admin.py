"""The administrator's pages: staff accounts, departments, categories, audit log, outbox."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from flask import Blueprint, abort, redirect, render_template, request, url_for

from consult.extensions import db
from consult.forms import (
    CategoryForm,
    ConfirmForm,
    DepartmentForm,
    PasswordResetForm,
    StaffCreateForm,
    StaffEditForm,
    choices,
)
from consult.models import Category, Department, OutboxMessage, Role
from consult.services import audit, merge, outbox, queue, totp
from consult.services import staff as staff_service
from consult.services.audit import ACTION_LABELS, OBJECT_LABELS
from consult.timeutil import TOKYO, in_range
from consult.web import actor, attempt, roles_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _branch_choices():
    return choices(
        ((b.id, b.name) for b in staff_service.list_branch_offices()),
        blank="なし",
    )


def _department_choices():
    return choices(
        (
            (d.id, d.name)
            for d in staff_service.list_departments(active_only=True)
            if not d.is_external
        ),
        blank="なし",
    )


@bp.get("/")
@roles_required(Role.ADMIN)
def index():
    return render_template("consult/admin/index.html")


@bp.get("/staff")
@roles_required(Role.ADMIN)
def staff_list():
    return render_template(
        "consult/admin/staff_list.html", staff=staff_service.list_staff(), form=ConfirmForm()
    )


@bp.route("/staff/new", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def staff_new():
    form = StaffCreateForm()
    form.department_id.choices = _department_choices()
    form.branch_office_id.choices = _branch_choices()
    if form.validate_on_submit():
        ok, _created = attempt(
            lambda: staff_service.create_staff(
                actor(),
                login=form.login.data,
                full_name=form.full_name.data,
                display_name=form.display_name.data,
                role=form.role.data,
                password=form.password.data,
                department_id=form.department_id.data,
                email=form.email.data,
                branch_office_id=form.branch_office_id.data,
            ),
            "職員を登録しました。",
        )
        if ok:
            return redirect(url_for("admin.staff_list"))
    return render_template("consult/admin/staff_form.html", form=form, staff=None), (
        422 if request.method == "POST" else 200
    )


def _staff_or_404(staff_id: int):
    return staff_service.get_staff(staff_id)


@bp.route("/staff/<int:staff_id>", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def staff_edit(staff_id: int):
    member = _staff_or_404(staff_id)
    form = StaffEditForm(
        obj=member,
        data=None if request.method == "POST" else {"role": member.role.value},
    )
    form.department_id.choices = _department_choices()
    form.branch_office_id.choices = _branch_choices()
    if request.method == "GET":
        form.department_id.data = member.department_id
        form.branch_office_id.data = member.branch_office_id
    if form.validate_on_submit():
        ok, _ = attempt(
            lambda: staff_service.update_staff(
                actor(),
                member,
                full_name=form.full_name.data,
                display_name=form.display_name.data,
                role=form.role.data,
                department_id=form.department_id.data,
                email=form.email.data,
                branch_office_id=form.branch_office_id.data,
            ),
            "職員の情報を更新しました。",
        )
        if ok:
            return redirect(url_for("admin.staff_list"))
        member = _staff_or_404(staff_id)
    return render_template(
        "consult/admin/staff_form.html",
        form=form,
        staff=member,
        password_form=PasswordResetForm(),
        confirm_form=ConfirmForm(),
    ), (422 if request.method == "POST" else 200)


@bp.post("/staff/<int:staff_id>/active")
@roles_required(Role.ADMIN)
def staff_active(staff_id: int):
    member = _staff_or_404(staff_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        activate = request.form.get("active") == "1"
        attempt(
            lambda: staff_service.set_active(actor(), member, activate),
            "利用を再開しました。"
            if activate
            else "利用を停止しました。ログイン中の画面も無効になります。",
        )
    return redirect(url_for("admin.staff_list"))


@bp.post("/staff/<int:staff_id>/password")
@roles_required(Role.ADMIN)
def staff_password(staff_id: int):
    member = _staff_or_404(staff_id)
    form = PasswordResetForm()
    if form.validate_on_submit():
        ok, _ = attempt(
            lambda: staff_service.reset_password(actor(), member, form.password.data),
            "パスワードを再設定しました。この職員のログイン中の画面は無効になります。",
        )
        if ok:
            return redirect(url_for("admin.staff_list"))
    return render_template(
        "consult/admin/staff_form.html",
        form=StaffEditForm(obj=member, data={"role": member.role.value}),
        staff=member,
        password_form=form,
        confirm_form=ConfirmForm(),
    ), 422


@bp.post("/staff/<int:staff_id>/two-factor/reset")
@roles_required(Role.ADMIN)
def staff_totp_reset(staff_id: int):
    """A lost phone: the person's two-factor sign-in is cleared (audited); they set it up again."""
    member = _staff_or_404(staff_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        attempt(
            lambda: totp.reset(actor(), member),
            "二要素認証をリセットしました。この職員のログイン中の画面は無効になります。"
            "次回のログインで設定し直します。",
        )
    return redirect(url_for("admin.staff_edit", staff_id=staff_id))


@bp.get("/departments")
@roles_required(Role.ADMIN)
def departments():
    return render_template(
        "consult/admin/departments.html", departments=staff_service.list_departments()
    )


@bp.route("/departments/new", methods=["GET", "POST"])
@bp.route("/departments/<int:department_id>", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def department_edit(department_id: int | None = None):
    department = db.session.get(Department, department_id) if department_id else None
    if department_id and department is None:
        abort(404)
    form = DepartmentForm(obj=department)
    if form.validate_on_submit():
        if department is None:
            operation = lambda: staff_service.create_department(  # noqa: E731
                actor(),
                code=form.code.data or "",
                name=form.name.data,
                is_external=form.is_external.data,
                email=form.email.data,
            )
        else:
            operation = lambda: staff_service.update_department(  # noqa: E731
                actor(),
                department,
                name=form.name.data,
                is_external=form.is_external.data,
                email=form.email.data,
                active=form.active.data,
            )
        ok, _ = attempt(operation, "担当課を保存しました。")
        if ok:
            return redirect(url_for("admin.departments"))
    return render_template(
        "consult/admin/department_form.html", form=form, department=department
    ), (422 if request.method == "POST" else 200)


@bp.get("/categories")
@roles_required(Role.ADMIN)
def categories():
    return render_template(
        "consult/admin/categories.html", categories=staff_service.list_categories()
    )


@bp.route("/categories/new", methods=["GET", "POST"])
@bp.route("/categories/<int:category_id>", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def category_edit(category_id: int | None = None):
    category = db.session.get(Category, category_id) if category_id else None
    if category_id and category is None:
        abort(404)
    form = CategoryForm(obj=category)
    if form.validate_on_submit():
        ok, _ = attempt(
            lambda: staff_service.save_category(
                actor(),
                name=form.name.data,
                name_en=form.name_en.data,
                code=form.code.data,
                category=category,
                sort_order=form.sort_order.data,
                active=form.active.data,
            ),
            "分類を保存しました。",
        )
        if ok:
            return redirect(url_for("admin.categories"))
    return render_template("consult/admin/category_form.html", form=form, category=category), (
        422 if request.method == "POST" else 200
    )


def _date_arg(name: str):
    raw = request.args.get(name, "")
    try:
        day = datetime.fromisoformat(raw).date() if raw else None
    except ValueError:
        return None
    return day if in_range(day) else None  # year 1 or 9999: no filter rather than an overflow


@bp.get("/audit")
@roles_required(Role.ADMIN)
def audit_log():
    since, until = _date_arg("since"), _date_arg("until")
    staff_id = request.args.get("staff", "")
    before = request.args.get("before", "")
    events = audit.search_events(
        staff_id=int(staff_id) if staff_id.isdigit() else None,
        action=request.args.get("action") or None,
        object_type=request.args.get("object_type") or None,
        object_id=(request.args.get("object_id") or "").strip()[:40] or None,
        since=datetime.combine(since, time(), TOKYO) if since else None,
        until=datetime.combine(until, time(), TOKYO) + timedelta(days=1) if until else None,
        before_id=int(before) if before.isdigit() else None,
        limit=100,
    )
    args = {k: v for k, v in request.args.items() if k != "before" and v}
    return render_template(
        "consult/admin/audit.html",
        events=events,
        staff=staff_service.list_staff(),
        args=args,
        action_labels=ACTION_LABELS,
        object_labels=OBJECT_LABELS,
    )


@bp.get("/queue")
@roles_required(Role.ADMIN)
def queue_failed():
    """Every failed item of every queue (outbox, LINE, mail …), each with a retry."""
    return render_template(
        "consult/admin/queue.html", items=queue.failed_items(), form=ConfirmForm()
    )


@bp.post("/queue/<key>/retry")
@roles_required(Role.ADMIN)
def queue_retry(key: str):
    if ConfirmForm().validate_on_submit():
        attempt(lambda: queue.retry(actor(), key), "再試行を予約しました。")
    return redirect(url_for("admin.queue_failed"))


@bp.get("/outbox")
@roles_required(Role.ADMIN)
def outbox_list():
    status = request.args.get("status") or None
    if status not in {None, "pending", "sending", "delivered", "failed"}:
        status = None
    return render_template(
        "consult/admin/outbox.html",
        messages=outbox.list_messages(status),
        status=status,
        form=ConfirmForm(),
    )


@bp.post("/outbox/<int:message_id>/retry")
@roles_required(Role.ADMIN)
def outbox_retry(message_id: int):
    message = db.session.get(OutboxMessage, message_id)
    if message is None:
        abort(404)
    if ConfirmForm().validate_on_submit():
        attempt(lambda: outbox.retry(message), "再送を予約しました。")
    return redirect(url_for("admin.outbox_list"))


@bp.get("/merges")
@roles_required(Role.ADMIN)
def merges():
    """Every merge of citizens and tickets, newest first, with the undo of those still in force.
    Ids and numbers only: no personal data on this page."""
    records = merge.list_records()
    return render_template(
        "consult/admin/merges.html", records=records, labels=merge.labels_for(records)
    )


@bp.route("/merges/<int:record_id>/undo", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def merge_undo(record_id: int):
    """A confirmation page, then the undo itself (POST with CSRF)."""
    try:
        record = merge.get_record(record_id)
    except merge.NotFound:
        abort(404)
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        ok, _ = attempt(lambda: merge.undo(actor(), record), "統合を取り消しました。")
        if ok:
            return redirect(url_for("admin.merges"))
    return render_template(
        "consult/admin/merge_undo.html", record=record, form=form, labels=merge.labels(record)
    )
