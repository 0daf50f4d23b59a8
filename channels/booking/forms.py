"""Forms: public ones with lazy gettext (Japanese msgids, English catalog), staff ones Japanese."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    StopValidation,
    ValidationError,
)

from channels.booking.services import MAX_CONTENT
from consult.forms import (
    Form,
    JapaneseSelectField,
    MultiCheckboxField,
    citizen_choice_field,
    coerce_optional_int,
    max_length,
    required,
)
from consult.services.normalize import normalize_email, normalize_phone


class PublicForm(Form):
    class Meta:
        locales = False  # messages are ours, translated by Flask-Babel


class DetailsForm(PublicForm):
    """The citizen's details; the slot travels in hidden fields and is checked again."""

    mode = HiddenField()
    start = HiddenField()
    category = HiddenField()
    kind = HiddenField()  # a specialist session's kind
    branch = HiddenField()  # 支所からのオンライン相談: the branch office chosen
    name = StringField(
        _l("氏名"),
        validators=[
            DataRequired(_l("氏名を入力してください。")),
            Length(max=80, message=_l("80文字以内で入力してください。")),
        ],
    )
    kana = StringField(
        _l("ふりがな"),
        validators=[
            DataRequired(_l("ふりがなを入力してください。")),
            Length(max=80, message=_l("80文字以内で入力してください。")),
        ],
    )
    email = StringField(
        _l("メールアドレス"),
        validators=[Length(max=254, message=_l("254文字以内で入力してください。"))],
    )
    phone = StringField(
        _l("電話番号"),
        validators=[Length(max=30, message=_l("30文字以内で入力してください。"))],
    )
    content = TextAreaField(
        _l("相談内容"),
        validators=[
            DataRequired(_l("相談内容を入力してください。")),
            Length(max=MAX_CONTENT, message=_l("相談内容は2,000文字以内で入力してください。")),
        ],
    )
    consent = BooleanField(
        _l("個人情報の取扱いに同意します"),
        validators=[DataRequired(_l("個人情報の取扱いへの同意が必要です。"))],
    )
    # The honeypot: hidden from people (and from assistive technology); bots fill it in.
    website = StringField(_l("この欄は空欄のままにしてください"))

    # Contact rules checked here too (the service checks them again), so that each message
    # appears next to its own field, all at once, rather than one by one above the form.
    def validate_email(self, field):
        if field.data and field.data.strip():
            if normalize_email(field.data) is None:
                raise StopValidation(_l("メールアドレスの形式が正しくありません。"))
        elif self.mode.data == "video":
            raise ValidationError(_l("オンライン相談にはメールアドレスを入力してください。"))
        elif not (self.phone.data and self.phone.data.strip()):
            raise ValidationError(_l("メールアドレスか電話番号のどちらかを入力してください。"))

    def validate_phone(self, field):
        if field.data and field.data.strip():
            if normalize_phone(field.data) is None:
                raise StopValidation(
                    _l("電話番号の形式が正しくありません。市外局番から入力してください。")
                )
        elif self.mode.data == "phone":
            raise ValidationError(_l("電話での相談には電話番号を入力してください。"))
        elif not (self.email.data and self.email.data.strip()):
            raise ValidationError(_l("メールアドレスか電話番号のどちらかを入力してください。"))


def details_form(kind, language: str, formdata):
    """The details form, with one answer field per intake question of a specialist session.

    The questions are the administrator's data in both languages: their labels are chosen by
    language here, never looked up in the catalog. Only the messages are msgids.
    """
    if kind is None or not kind.questions:
        return DetailsForm(formdata)

    class WithAnswers(DetailsForm):
        pass

    for number, question in enumerate(kind.questions):
        checks = [Length(max=500, message=_l("回答は500文字以内で入力してください。"))]
        if question.get("required"):
            checks.insert(0, DataRequired(_l("この質問への回答を入力してください。")))
        else:
            checks.insert(0, Optional())
        setattr(
            WithAnswers,
            f"answer_{number}",
            TextAreaField(kind.question_label(question, language), validators=checks),
        )
    return WithAnswers(formdata)


def answers_of(form) -> dict[int, str]:
    return {
        int(name.removeprefix("answer_")): field.data or ""
        for name, field in form._fields.items()
        if name.startswith("answer_")
    }


class MoveForm(PublicForm):
    start = HiddenField()
    # The booking's sequence when the page was shown: a move from an out-of-date page is refused.
    version = HiddenField()


class StaffBookingForm(Form):
    mode = JapaneseSelectField("方法")
    start = StringField("開始日時（YYYY-MM-DDTHH:MM）", validators=[required("開始日時")])
    category_id = JapaneseSelectField("分類", coerce=coerce_optional_int)
    name = StringField("氏名", validators=[required("氏名"), max_length("氏名", 80)])
    kana = StringField("ふりがな", validators=[required("ふりがな"), max_length("ふりがな", 80)])
    email = StringField(
        "メールアドレス", validators=[Optional(), max_length("メールアドレス", 254)]
    )
    phone = StringField("電話番号", validators=[Optional(), max_length("電話番号", 30)])
    content = TextAreaField(
        "相談内容", validators=[required("相談内容"), max_length("相談内容", MAX_CONTENT)]
    )


class BookingDetailsForm(Form):
    video_url = StringField(
        "会議のURL（オンライン相談）", validators=[Optional(), max_length("URL", 500)]
    )
    staff_id = JapaneseSelectField("担当者", coerce=coerce_optional_int)
    # The booking's SEQUENCE when the page was shown: a save over a newer booking is refused.
    version = HiddenField()


class SettingsForm(Form):
    slot_minutes = IntegerField(
        "1枠の長さ（分）",
        validators=[
            InputRequired("1枠の長さを入力してください。"),
            NumberRange(min=15, max=90, message="1枠の長さは15〜90分で入力してください。"),
        ],
    )


class CheckInForm(Form):
    """受付 of a booking: the citizen chosen among the candidates shown (or a new one)."""

    citizen_choice = citizen_choice_field()


HHMM = r"^([01]?\d|2[0-3]):[0-5]\d$"


class KindForm(Form):
    """A specialist session (administrators): staff form, Japanese only; the English texts are
    the administrator's data."""

    name = StringField("名称", validators=[required("名称"), max_length("名称", 80)])
    name_en = StringField("名称（英語）", validators=[max_length("名称（英語）", 120)])
    description = TextAreaField("説明", validators=[max_length("説明", 2000)])
    description_en = TextAreaField("説明（英語）", validators=[max_length("説明（英語）", 2000)])
    mode = JapaneseSelectField("相談の方法")
    specialist_id = JapaneseSelectField("担当の専門相談員", coerce=coerce_optional_int)
    weekdays = MultiCheckboxField("毎週の曜日（祝日・年末年始は除く）", coerce=int)
    dates_only = BooleanField("選んだ実施日だけ行う（休日の経営相談会など）")
    dates = TextAreaField(
        "実施日（1行に1日、例：2027-01-11）", validators=[max_length("実施日", 8000)]
    )
    opens = StringField(
        "開始時刻（HH:MM）",
        validators=[
            required("開始時刻"),
            Regexp(HHMM, message="開始時刻は 10:00 の形で入力してください。"),
        ],
    )
    closes = StringField(
        "終了時刻（HH:MM）",
        validators=[
            required("終了時刻"),
            Regexp(HHMM, message="終了時刻は 16:00 の形で入力してください。"),
        ],
    )
    slot_minutes = IntegerField(
        "1回の長さ（分）",
        validators=[
            InputRequired("1回の長さを入力してください。"),
            NumberRange(min=15, max=120, message="1回の長さは15〜120分で入力してください。"),
        ],
    )
    capacity = IntegerField(
        "定員（同じ時間に受けられる数）",
        validators=[
            InputRequired("定員を入力してください。"),
            NumberRange(min=1, max=50, message="定員は1〜50で入力してください。"),
        ],
    )
    questions = TextAreaField(
        "事前の質問（1行に1問。必須は先頭に *、英語は | のあとに）",
        validators=[max_length("事前の質問", 4000)],
    )
    active = BooleanField("予約を受け付ける", default=True)


class BranchOfficeForm(Form):
    """A branch office (administrators); the English name is the administrator's data."""

    name = StringField("支所名", validators=[required("支所名"), max_length("支所名", 80)])
    name_en = StringField("支所名（英語）", validators=[max_length("支所名（英語）", 120)])
    address = StringField("所在地", validators=[max_length("所在地", 200)])
    active = BooleanField("予約を受け付ける", default=True)
