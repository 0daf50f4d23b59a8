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
    StopValidation,
    ValidationError,
)

from channels.booking.services import MAX_CONTENT
from consult.forms import (
    Form,
    JapaneseSelectField,
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
