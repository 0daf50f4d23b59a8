"""Staff accounts, departments and categories: the administrator's work."""

from __future__ import annotations

import re

import sqlalchemy as sa

from consult.extensions import db
from consult.models import BranchOffice, Category, Department, Role, Staff
from consult.services import audit, auth
from consult.services.actor import Actor
from consult.services.errors import NotFound, ValidationFailed
from consult.services.normalize import clean_text, normalize_email

LOGIN_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
CODE_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
DISPLAY_NAME_PATTERN = re.compile(r"[ぁ-ゖー]+\s*/\s*[A-Z][A-Za-z'-]*")


def _department_by_code(code: str | None) -> Department | None:
    if not code:
        return None
    department = db.session.scalar(sa.select(Department).where(Department.code == code))
    if department is None:
        raise ValidationFailed(f"担当課コード「{code}」は登録されていません。")
    return department


def validate_display_name(display_name: str) -> str:
    """The surname only, in hiragana and romaji: 「やまだ / Yamada」 (Iwamizawa's name badges)."""
    value = display_name.strip()
    if not DISPLAY_NAME_PATTERN.fullmatch(value):
        raise ValidationFailed(
            "表示名は姓のみを「ひらがな / ローマ字」で入力してください（例：やまだ / Yamada）。"
        )
    kana, romaji = (part.strip() for part in value.split("/"))
    return f"{kana} / {romaji}"


def create_staff(
    actor: Actor | None,
    *,
    login: str,
    full_name: str,
    display_name: str,
    role: str,
    password: str,
    department_code: str | None = None,
    department_id: int | None = None,
    email: str | None = None,
    branch_office_id: int | None = None,
) -> Staff:
    login = login.strip().lower()
    if not LOGIN_PATTERN.fullmatch(login):
        raise ValidationFailed(
            "ログインIDは半角英小文字・数字・「.」「_」「-」で2〜64文字にしてください。"
        )
    if db.session.scalar(sa.select(Staff.id).where(Staff.login == login)):
        raise ValidationFailed(f"ログインID「{login}」は既に使われています。")
    full_name = full_name.strip()
    if not full_name or len(full_name) > 80:
        raise ValidationFailed("氏名を80文字以内で入力してください。")
    try:
        role_value = Role(role)
    except ValueError as exc:
        raise ValidationFailed(f"役割「{role}」はありません。") from exc
    department = _department_by_code(department_code)
    if department_id is not None:
        department = db.session.get(Department, department_id)
        if department is None:
            raise ValidationFailed("選択された担当課は存在しません。")
    if role_value == Role.OFFICER and department is None:
        raise ValidationFailed("担当課職員には所属する担当課を指定してください。")
    office = _branch_office(role_value, branch_office_id)
    staff = Staff(
        login=login,
        full_name=full_name,
        display_name=validate_display_name(display_name),
        role=role_value,
        department=department,
        branch_office=office,
        password_hash=auth.hash_password(password),
        email=_staff_email(email),
        # An administrator chose it: the person must choose their own at first sign-in. The
        # command line (setting up the first accounts on the server) and seeding do not.
        must_change_password=actor is not None and actor.staff is not None,
    )
    db.session.add(staff)
    db.session.flush()
    if actor is not None:
        audit.record(actor, "create", "staff", staff.id)
    return staff


def _branch_office(role: Role, branch_office_id: int | None) -> BranchOffice | None:
    """A branch account belongs to exactly one branch office; no other role has one."""
    if role != Role.BRANCH:
        if branch_office_id:
            raise ValidationFailed("支所を指定できるのは役割「支所」のアカウントだけです。")
        return None
    office = db.session.get(BranchOffice, branch_office_id) if branch_office_id else None
    if office is None:
        raise ValidationFailed("役割「支所」のアカウントには支所を指定してください。")
    return office


def list_branch_offices() -> list[BranchOffice]:
    return list(db.session.scalars(sa.select(BranchOffice).order_by(BranchOffice.id)))


def _staff_email(raw: str | None) -> str | None:
    if not raw or not raw.strip():
        return None
    address = normalize_email(raw)
    if address is None:
        raise ValidationFailed(
            "メールアドレスの形式が正しくありません（例：taro@city.example.jp）。"
        )
    return address


def update_staff(
    actor: Actor,
    staff: Staff,
    *,
    full_name: str,
    display_name: str,
    role: str,
    department_id: int | None,
    email: str | None = None,
    branch_office_id: int | None = None,
) -> Staff:
    actor.require(Role.ADMIN)
    try:
        role_value = Role(role)
    except ValueError as exc:
        raise ValidationFailed(f"役割「{role}」はありません。") from exc
    department = db.session.get(Department, department_id) if department_id else None
    if department_id and department is None:
        raise ValidationFailed("選択された担当課は存在しません。")
    if role_value == Role.OFFICER and department is None:
        raise ValidationFailed("担当課職員には所属する担当課を指定してください。")
    if staff.id == actor.staff_id and role_value != Role.ADMIN:
        raise ValidationFailed("自分自身の管理者権限は外せません。")
    office = _branch_office(role_value, branch_office_id)
    # Another branch is another set of bookings: as a new role, the person signs in again.
    role_changed = staff.role != role_value or staff.branch_office_id != (
        office.id if office else None
    )
    staff.branch_office = office
    staff.full_name = full_name.strip()
    staff.display_name = validate_display_name(display_name)
    staff.role = role_value
    staff.department = department
    staff.email = _staff_email(email)
    if role_changed:
        # A new role means new permissions: make the person sign in again.
        auth.end_all_sessions(staff, "role_changed")
    audit.record(actor, "update", "staff", staff.id, "role" if role_changed else None)
    return staff


def set_active(actor: Actor, staff: Staff, active: bool) -> None:
    actor.require(Role.ADMIN)
    if staff.id == actor.staff_id and not active:
        raise ValidationFailed("自分自身のアカウントは利用停止にできません。")
    staff.active = active
    if not active:
        auth.end_all_sessions(staff, "deactivated")
    audit.record(actor, "deactivate" if not active else "update", "staff", staff.id)


def reset_password(actor: Actor, staff: Staff, password: str) -> None:
    actor.require(Role.ADMIN)
    if staff.directory_dn:
        raise ValidationFailed(
            "このアカウントのパスワードはディレクトリで管理されています。"
            "ディレクトリ側で変更してください。"
        )
    staff.password_hash = auth.hash_password(password)
    staff.must_change_password = staff.id != actor.staff_id
    auth.end_all_sessions(staff, "password_reset")
    audit.record(actor, "password_reset", "staff", staff.id)


def get_staff(staff_id: int) -> Staff:
    staff = db.session.get(Staff, staff_id)
    if staff is None:
        raise NotFound("職員が見つかりません。")
    return staff


def list_staff(include_inactive: bool = True) -> list[Staff]:
    query = sa.select(Staff).order_by(Staff.role, Staff.login)
    if not include_inactive:
        query = query.where(Staff.active.is_(True))
    return list(db.session.scalars(query))


def create_department(
    actor: Actor | None,
    *,
    code: str,
    name: str,
    is_external: bool = False,
    email: str | None = None,
    parent_name: str | None = None,
) -> Department:
    code = code.strip().lower()
    if not CODE_PATTERN.fullmatch(code):
        raise ValidationFailed(
            "担当課コードは半角英小文字・数字・「_」「-」で40文字以内にしてください。"
        )
    if db.session.scalar(sa.select(Department.id).where(Department.code == code)):
        raise ValidationFailed(f"担当課コード「{code}」は既に使われています。")
    department = Department(code=code)
    _apply_department(department, name, is_external, email, parent_name)
    db.session.add(department)
    db.session.flush()
    if actor is not None:
        audit.record(actor, "create", "department", department.id)
    return department


def update_department(
    actor: Actor,
    department: Department,
    *,
    name: str,
    is_external: bool,
    email: str | None,
    active: bool,
) -> Department:
    actor.require(Role.ADMIN)
    _apply_department(department, name, is_external, email, department.parent_name)
    department.active = active
    audit.record(actor, "update", "department", department.id)
    return department


def _apply_department(
    department: Department,
    name: str,
    is_external: bool,
    email: str | None,
    parent_name: str | None,
) -> None:
    name = name.strip()
    if not name or len(name) > 120:
        raise ValidationFailed("担当課名を120文字以内で入力してください。")
    address = None
    if email and email.strip():
        address = normalize_email(email)
        if address is None:
            raise ValidationFailed("連絡先メールアドレスの形式が正しくありません。")
    department.name = name
    department.is_external = is_external
    department.email = address
    department.parent_name = parent_name


def list_departments(active_only: bool = False) -> list[Department]:
    query = sa.select(Department).order_by(
        Department.is_external, Department.sort_order, Department.id
    )
    if active_only:
        query = query.where(Department.active.is_(True))
    return list(db.session.scalars(query))


def list_categories(active_only: bool = False) -> list[Category]:
    query = sa.select(Category).order_by(Category.sort_order, Category.id)
    if active_only:
        query = query.where(Category.active.is_(True))
    return list(db.session.scalars(query))


def save_category(
    actor: Actor | None,
    *,
    name: str,
    code: str | None = None,
    category: Category | None = None,
    sort_order: int | None = None,
    active: bool = True,
    name_en: str | None = None,
) -> Category:
    name = clean_text(name, "分類名", 80, required=True)
    name_en = clean_text(name_en, "分類名（英語）", 80) or None
    clash = db.session.scalar(sa.select(Category).where(Category.name == name))
    if clash is not None and clash is not category:
        raise ValidationFailed(f"分類「{name}」は既にあります。")
    if category is None:
        code = (code or "").strip().lower()
        if not CODE_PATTERN.fullmatch(code):
            raise ValidationFailed("分類コードは半角英小文字・数字・「_」「-」で入力してください。")
        if db.session.scalar(sa.select(Category.id).where(Category.code == code)):
            raise ValidationFailed(f"分類コード「{code}」は既に使われています。")
        if sort_order is None:
            sort_order = (db.session.scalar(sa.select(sa.func.max(Category.sort_order))) or 0) + 10
        category = Category(code=code, name=name, sort_order=sort_order)
        db.session.add(category)
    else:
        category.name = name
        if sort_order is not None:
            category.sort_order = sort_order
    category.active = active
    category.name_en = name_en
    db.session.flush()
    if actor is not None:
        audit.record(actor, "update", "category", category.id)
    return category


DEFAULT_CATEGORIES = [
    ("procedures", "行政手続き"),
    ("consumer", "消費生活トラブル"),
    ("requests", "市への要望"),
    ("business", "経営相談"),
    ("household", "家計相談"),
    ("worries", "心配事"),
    ("other", "その他"),
]
# Their names on the public English pages (Category.name_en), for the demo centre.
DEFAULT_CATEGORY_NAMES_EN = {
    "procedures": "Administrative procedures",
    "consumer": "Consumer problems",
    "requests": "Requests to the city",
    "business": "Business consultation",
    "household": "Household budget",
    "worries": "Worries",
    "other": "Other",
}
