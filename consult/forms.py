"""Forms of the kernel, with Japanese labels and messages."""

from __future__ import annotations

from datetime import date

from flask_babel import lazy_gettext
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DateTimeField,
    DateTimeLocalField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.fields.core import UnboundField
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget

from consult.models import RETENTION_YEARS, Priority, Role, Status
from consult.services.normalize import has_controls, strip_controls
from consult.timeutil import OUT_OF_RANGE, in_range

REQUIRED = "{label}を入力してください。"
CONTROLS = (
    "{label}に使用できない文字（制御文字など）が含まれていたため、取り除きました。"
    "内容を確かめて、もう一度送信してください。"
)
# The public forms' message (msgid of the kernel's catalog), shown next to its field.
CONTROLS_PUBLIC = lazy_gettext(
    "使用できない文字（制御文字など）が含まれていたため、取り除きました。"
    "内容を確かめて、もう一度送信してください。"
)


def _is_public(form) -> bool:
    """Public forms (locales = False) have their messages translated by Flask-Babel."""
    return form.meta.locales is False


def clean_text_filter(multiline: bool):
    """The filter of every text field: control characters out, so the form shows them gone."""

    def clean(value):
        return strip_controls(value, multiline) if isinstance(value, str) else value

    clean.madoguchi_text_guard = True
    return clean


def refuse_controls(form, field) -> None:
    """The validator of every visible text field: the person is told what was removed.

    The filter already took the characters out; refusing once, with the cleaned text back in
    the field, lets the person see what will be stored before it is.
    """
    if any(isinstance(raw, str) and has_controls(raw) for raw in field.raw_data or ()):
        if _is_public(form):
            raise ValidationError(CONTROLS_PUBLIC)
        raise ValidationError(CONTROLS.format(label=field.label.text))


refuse_controls.madoguchi_text_guard = True


def refuse_out_of_range(form, field) -> None:
    """Every date and date-time field: years the system (and datetime's UTC) cannot handle."""
    if isinstance(field.data, date) and not in_range(field.data):
        raise ValidationError(f"{field.label.text}は{OUT_OF_RANGE}")


def guard_field(unbound: UnboundField) -> UnboundField:
    """The kernel's checks added to a field: text cleaned and refused, dates within range.

    Applied to every field of every `Form`, so a new form (in any package) has them without
    asking; tests/test_hostile_input.py walks all forms to prove it.
    """
    cls = unbound.field_class
    is_text = issubclass(cls, StringField)
    is_date = issubclass(cls, DateTimeField) and not issubclass(cls, TimeField)
    if not (is_text or is_date):
        return unbound
    args, kwargs = list(unbound.args), dict(unbound.kwargs)
    validators = list(args.pop(1) if len(args) > 1 else kwargs.get("validators") or ())
    if is_text:
        multiline = issubclass(cls, TextAreaField)
        kwargs["filters"] = [*kwargs.get("filters", ()), clean_text_filter(multiline)]
        if not issubclass(cls, HiddenField):  # hidden values are cleaned, nobody typed them
            validators.insert(0, refuse_controls)
    else:
        validators.append(refuse_out_of_range)
    kwargs["validators"] = validators
    return UnboundField(cls, *args, name=unbound.name, **kwargs)


class Form(FlaskForm):
    """Every form: CSRF from Flask-WTF, WTForms' own messages in Japanese, and the kernel's
    checks of text (control characters) and dates (range) on every field."""

    class Meta:
        locales = ("ja_JP", "ja")

        def bind_field(self, form, unbound_field, options):
            return super().bind_field(form, guard_field(unbound_field), options)


def required(label: str) -> DataRequired:
    return DataRequired(message=REQUIRED.format(label=label))


def max_length(label: str, limit: int) -> Length:
    return Length(max=limit, message=f"{label}は{limit:,}文字以内で入力してください。")


def choices(pairs, blank: str | None = None) -> list[SelectChoice]:
    items = [SelectChoice("", blank)] if blank is not None else []
    return items + [SelectChoice(str(value), label) for value, label in pairs]


def coerce_optional_int(value):
    if value in (None, "", "None"):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1  # not a choice: pre_validate refuses it with a Japanese message


class JapaneseSelectField(SelectField):
    """A select whose 'not a valid choice' message is Japanese."""

    def pre_validate(self, form):
        values = {str(choice.value) for choice in self.choices}
        if str(self.data if self.data is not None else "") not in values:
            # WTForms 3 only turns ValidationError into a field error; ValueError would be a 500.
            raise ValidationError(f"{self.label.text}の選択肢から選んでください。")


class LoginForm(Form):
    login = StringField(
        "ログインID", validators=[required("ログインID"), max_length("ログインID", 64)]
    )
    password = PasswordField(
        "パスワード", validators=[required("パスワード"), max_length("パスワード", 256)]
    )
    next = HiddenField()


class CodeForm(Form):
    """The second step of signing in: a code from the authenticator app, or a recovery code."""

    code = StringField(
        "確認コード",
        validators=[required("確認コード"), max_length("確認コード", 32)],
        render_kw={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True},
    )


class EnrolForm(Form):
    code = StringField(
        "認証アプリに表示された6桁のコード",
        validators=[required("確認コード"), max_length("確認コード", 32)],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"},
    )


class NoteForm(Form):
    body = TextAreaField("メモ", validators=[required("メモ"), max_length("メモ", 10_000)])


class StatusForm(Form):
    status = JapaneseSelectField(
        "状態", validators=[DataRequired(message="変更先の状態を選んでください。")]
    )
    reason = TextAreaField("理由・対応結果", validators=[Optional(), max_length("理由", 2_000)])

    def __init__(self, *args, current: Status | None = None, allowed=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.status.choices = choices(
            [(s.value, s.label) for s in allowed], blank="変更先を選んでください"
        )


class CloseForm(Form):
    summary = TextAreaField(
        "対応結果の要約",
        validators=[required("対応結果の要約"), max_length("対応結果の要約", 10_000)],
    )


class ReopenForm(Form):
    reason = TextAreaField(
        "再開の理由", validators=[required("再開の理由"), max_length("再開の理由", 2_000)]
    )


class AssignForm(Form):
    assignee_id = JapaneseSelectField("担当者", coerce=coerce_optional_int)
    # Who the page showed as the assignee ("none" for nobody): a change over a newer one is
    # refused, and its sender is told who has the case now.
    shown_assignee = HiddenField()


class DetailsForm(Form):
    subject = StringField("件名", validators=[required("件名"), max_length("件名", 200)])
    category_id = JapaneseSelectField("分類", coerce=coerce_optional_int)
    priority = JapaneseSelectField("優先度", choices=choices(Priority.labelled()))


def _check_birth_date(form, field) -> None:
    from consult.services.citizens import parse_birth_date
    from consult.services.errors import ValidationFailed

    try:
        parse_birth_date(field.data)
    except ValidationFailed as error:
        raise ValidationError(error.message) from None


def birth_date_field() -> StringField:
    """生年月日 (optional): text, so that a wrong value gets a Japanese message, not WTForms'."""
    return StringField(
        "生年月日（わかれば）",
        validators=[Optional(), max_length("生年月日", 20), _check_birth_date],
        render_kw={"type": "date", "autocomplete": "off"},
    )


def citizen_choice_field() -> HiddenField:
    """この方 (a citizen id) or 新しい相談者 ("new"), as chosen among the candidates shown."""
    return HiddenField(validators=[Optional(), max_length("相談者の選択", 20)])


class CitizenForm(Form):
    name = StringField("氏名", validators=[Optional(), max_length("氏名", 80)])
    kana = StringField("ふりがな", validators=[Optional(), max_length("ふりがな", 80)])
    birth_date = birth_date_field()
    phone = StringField("電話番号", validators=[Optional(), max_length("電話番号", 30)])
    email = StringField(
        "メールアドレス", validators=[Optional(), max_length("メールアドレス", 254)]
    )
    address = StringField("住所", validators=[Optional(), max_length("住所", 200)])
    citizen_choice = citizen_choice_field()


class CitizenFlagForm(Form):
    """支援措置 / 利用停止 を設定・解除する（センター責任者）: 理由は必須。"""

    on = HiddenField()
    reason = TextAreaField(
        "理由（必須・センター責任者のみ閲覧）",
        validators=[required("理由"), max_length("理由", 500)],
    )


class DisclosureForm(Form):
    fmt = HiddenField()


class MergeCitizenForm(Form):
    other_id = IntegerField(
        "統合する相談者の番号（重複して登録された方）",
        validators=[
            InputRequired("統合する相談者の番号を入力してください。"),
            # A number beyond the column's range would reach the database and fail there.
            NumberRange(1, 2**31 - 1, "相談者の番号が正しくありません。数字で入力してください。"),
        ],
    )
    reason = StringField("統合の理由（任意）", validators=[Optional(), max_length("理由", 200)])
    confirmed = HiddenField()


class MergeTicketForm(Form):
    target = StringField(
        "統合先の相談番号（この相談を含める相談）",
        validators=[required("統合先の相談番号"), max_length("相談番号", 20)],
    )
    reason = StringField("統合の理由（任意）", validators=[Optional(), max_length("理由", 200)])
    confirmed = HiddenField()


class RelatedTicketForm(Form):
    other = StringField(
        "関連する相談の相談番号",
        validators=[required("関連する相談の相談番号"), max_length("相談番号", 20)],
    )


class LinkCitizenForm(Form):
    citizen_id = IntegerField("相談者番号", validators=[InputRequired("相談者を選んでください。")])


class SearchForm(Form):
    q = StringField(
        "電話番号・氏名", validators=[required("電話番号または氏名"), max_length("検索語", 100)]
    )


class SearchFilterForm(SearchForm):
    """The search page: the words, and the filters of the results (the choices are the queue's)."""

    channel = JapaneseSelectField("経路", coerce=lambda v: None if v in (None, "", "None") else v)
    status = JapaneseSelectField("状態", coerce=lambda v: None if v in (None, "", "None") else v)
    category_id = JapaneseSelectField("分類", coerce=coerce_optional_int)
    assignee_id = JapaneseSelectField("担当者", coerce=coerce_optional_int)
    since = DateField("最終更新日（から）", validators=[Optional()])
    until = DateField("最終更新日（まで）", validators=[Optional()])

    def __init__(self, *args, categories=(), staff=(), **kwargs):
        from consult.models import Channel

        super().__init__(*args, **kwargs)
        self.channel.choices = choices(Channel.labelled(), blank="すべて")
        self.status.choices = choices(Status.labelled(), blank="すべて")
        self.category_id.choices = choices(((c.id, c.name) for c in categories), blank="すべて")
        self.assignee_id.choices = choices(((s.id, s.full_name) for s in staff), blank="すべて")

    def validate_until(self, field):
        if field.data and self.since.data and field.data < self.since.data:
            raise ValidationError("期間の終わりは始まり以降の日付にしてください。")


class StaffCreateForm(Form):
    login = StringField(
        "ログインID", validators=[required("ログインID"), max_length("ログインID", 64)]
    )
    full_name = StringField("氏名", validators=[required("氏名"), max_length("氏名", 80)])
    display_name = StringField(
        "表示名（姓のみ・ひらがな / ローマ字）",
        validators=[required("表示名"), max_length("表示名", 80)],
    )
    role = JapaneseSelectField("役割", choices=choices(Role.labelled()))
    department_id = JapaneseSelectField("所属担当課", coerce=coerce_optional_int)
    branch_office_id = JapaneseSelectField("支所（役割「支所」のとき）", coerce=coerce_optional_int)
    email = StringField(
        "業務用メールアドレス（通知用・任意）",
        validators=[Optional(), max_length("メールアドレス", 254)],
    )
    password = PasswordField(
        "初期パスワード",
        validators=[
            required("初期パスワード"),
            Length(min=10, max=256, message="パスワードは10文字以上256文字以内にしてください。"),
        ],
    )


class StaffEditForm(Form):
    full_name = StringField("氏名", validators=[required("氏名"), max_length("氏名", 80)])
    display_name = StringField(
        "表示名（姓のみ・ひらがな / ローマ字）",
        validators=[required("表示名"), max_length("表示名", 80)],
    )
    role = JapaneseSelectField("役割", choices=choices(Role.labelled()))
    department_id = JapaneseSelectField("所属担当課", coerce=coerce_optional_int)
    branch_office_id = JapaneseSelectField("支所（役割「支所」のとき）", coerce=coerce_optional_int)
    email = StringField(
        "業務用メールアドレス（通知用・任意）",
        validators=[Optional(), max_length("メールアドレス", 254)],
    )


class PasswordResetForm(Form):
    password = PasswordField(
        "新しいパスワード",
        validators=[
            required("新しいパスワード"),
            Length(min=10, max=256, message="パスワードは10文字以上256文字以内にしてください。"),
        ],
    )


class PasswordChangeForm(Form):
    """A member of staff choosing their own password (policy: auth.check_password_strength)."""

    current_password = PasswordField(
        "現在のパスワード",
        validators=[required("現在のパスワード"), max_length("現在のパスワード", 256)],
    )
    new_password = PasswordField(
        "新しいパスワード",
        validators=[required("新しいパスワード"), max_length("新しいパスワード", 256)],
    )
    new_password_again = PasswordField(
        "新しいパスワード（確認のためもう一度）",
        validators=[
            required("確認のための新しいパスワード"),
            max_length("確認のための新しいパスワード", 256),
        ],
    )


class AttachmentForm(Form):
    """The file itself is read from request.files by the view (FileField would need a
    separate dependency for what one line does)."""


class HandOverForm(Form):
    """Hand a case to a colleague, with a note for them (field names unlike AssignForm's, so
    that the two forms on the ticket page have distinct ids)."""

    colleague_id = JapaneseSelectField(
        "引き継ぐ相手", validators=[DataRequired(message="引き継ぐ相手を選んでください。")]
    )
    handover_note = TextAreaField(
        "引継ぎのメモ",
        validators=[required("引継ぎのメモ"), max_length("引継ぎのメモ", 2000)],
    )


class ConfirmForm(Form):
    """A button that changes state: just the CSRF token."""


class DepartmentForm(Form):
    code = StringField("コード（半角英数字）", validators=[Optional(), max_length("コード", 40)])
    name = StringField("名称", validators=[required("名称"), max_length("名称", 120)])
    is_external = BooleanField("関係機関（市の外部）")
    email = StringField(
        "連絡先メールアドレス",
        validators=[Optional(), max_length("メールアドレス", 254)],
    )
    active = BooleanField("有効", default=True)


class CategoryForm(Form):
    code = StringField("コード（半角英数字）", validators=[Optional(), max_length("コード", 40)])
    name = StringField("分類名", validators=[required("分類名"), max_length("分類名", 80)])
    name_en = StringField(
        "分類名（英語・公開ページ用、空欄なら日本語の分類名）",
        validators=[Optional(), max_length("分類名（英語）", 80)],
    )
    sort_order = IntegerField(
        "表示順",
        validators=[
            Optional(),
            NumberRange(min=0, max=100000, message="表示順は0〜100000の数字で入力してください。"),
        ],
    )
    active = BooleanField("有効", default=True)


# --- staff safety (カスハラ) -------------------------------------------------------------------


class MultiCheckboxField(SelectMultipleField):
    """Several checkboxes under one label (several categories may apply)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def pre_validate(self, form):
        values = {str(choice.value) for choice in self.choices}
        if any(str(value) not in values for value in self.data or ()):
            raise ValidationError(f"{self.label.text}の選択肢から選んでください。")


class HelpForm(Form):
    place = JapaneseSelectField("場所")
    ticket = HiddenField()


class AlertDeviceForm(Form):
    name = StringField(
        "端末の名前", validators=[required("端末の名前"), max_length("端末の名前", 80)]
    )
    staff_id = JapaneseSelectField(
        "持つ職員（押すとこの職員からの応援要請になります）",
        validators=[DataRequired("端末を持つ職員を選んでください。")],
    )
    place = JapaneseSelectField("設置場所")


class IncidentForm(Form):
    occurred_at = DateTimeLocalField(
        "発生日時",
        format="%Y-%m-%dT%H:%M",
        validators=[InputRequired("発生日時を入力してください（例：2026-11-22 14:05）。")],
    )
    categories = MultiCheckboxField("分類（複数選択可）")
    description = TextAreaField(
        "経過（何があったか）", validators=[required("経過"), max_length("経過", 10_000)]
    )
    involved_ids = MultiCheckboxField("対応していた職員", coerce=int)
    support_ids = MultiCheckboxField("応援に来た職員（サポート室・責任者）", coerce=int)
    follow_ups = MultiCheckboxField("事後対応")
    ticket = HiddenField()


class SafetySettingsForm(Form):
    long_session_minutes = StringField("長時間対応の通知（分）")
    repeat_contacts = StringField("繰り返し要求の判定（件数）")
    repeat_days = StringField("繰り返し要求の判定（日数）")
    alert_mail_to = StringField("応援要請の通知先メールアドレス")
    recording_policy = TextAreaField("録音についてのお知らせ（窓口に表示）")


class ExceptionForm(Form):
    day = DateField("日付", validators=[InputRequired("日付を入力してください。")])
    closed = BooleanField("休業日にする")
    opens = TimeField("開始時刻", validators=[Optional()])
    closes = TimeField("終了時刻", validators=[Optional()])
    note = StringField(
        "メモ（例：設備点検のため短縮）", validators=[Optional(), max_length("メモ", 200)]
    )


class RotaForm(Form):
    first = DateField("開始日", validators=[InputRequired("開始日を入力してください。")])
    last = DateField("終了日", validators=[InputRequired("終了日を入力してください。")])
    departments = SelectMultipleField("当番の担当課（この順に割り当て）", coerce=int)


class ReleaseForm(Form):
    """An administrator releases a quarantined file (無害化): the reason is kept and audited."""

    reason = TextAreaField(
        "解除する理由",
        validators=[required("解除する理由"), max_length("解除する理由", 500)],
    )


# --- retention and disposal (consult.views.records) --------------------------------------------


class RetentionClassForm(Form):
    years = JapaneseSelectField(
        "保存期間",
        choices=choices(((years, f"{years}年") for years in RETENTION_YEARS), blank="既定"),
        validators=[Optional()],
    )


class AuditRetentionForm(Form):
    years = IntegerField(
        "監査ログの保存期間（年）",
        validators=[
            InputRequired(message="監査ログの保存期間を入力してください。"),
            NumberRange(min=5, max=100, message="監査ログの保存期間は5〜100年で入力してください。"),
        ],
    )


class UnlinkedRetentionForm(Form):
    years = JapaneseSelectField(
        "相談に結び付かない記録の保存期間",
        choices=choices((years, f"{years}年") for years in RETENTION_YEARS),
        validators=[required("保存期間")],
    )


class HoldBackKindForm(Form):
    kind = HiddenField(validators=[required("記録の種類"), max_length("記録の種類", 40)])
    release = HiddenField()


class HoldBackForm(Form):
    number = StringField("相談番号", validators=[required("相談番号"), max_length("相談番号", 20)])
    release = HiddenField()


class LegalHoldForm(Form):
    ticket_number = StringField("相談番号", validators=[Optional(), max_length("相談番号", 20)])
    citizen_id = IntegerField(
        "相談者番号",
        validators=[
            Optional(),
            NumberRange(min=1, max=2**31 - 1, message="相談者番号は数字で入力してください。"),
        ],
    )
    reason = StringField(
        "理由（訴訟・不服申立て等。氏名は書かない）",
        validators=[required("理由"), max_length("理由", 200)],
    )


class LiftHoldForm(Form):
    reason = StringField(
        "解除の理由", validators=[required("解除の理由"), max_length("解除の理由", 200)]
    )
