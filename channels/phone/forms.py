from __future__ import annotations

from wtforms import (
    BooleanField,
    DateTimeLocalField,
    HiddenField,
    IntegerField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, NumberRange, Optional

from consult.forms import (
    Form,
    JapaneseSelectField,
    birth_date_field,
    citizen_choice_field,
    coerce_optional_int,
    max_length,
    required,
)


class CallForm(Form):
    category_id = JapaneseSelectField("分類", coerce=coerce_optional_int)
    anonymous = BooleanField("匿名（名乗らない）")
    name = StringField("氏名", validators=[Optional(), max_length("氏名", 80)])
    kana = StringField("ふりがな", validators=[Optional(), max_length("ふりがな", 80)])
    phone = StringField(
        "電話番号（発信者番号）", validators=[Optional(), max_length("電話番号", 30)]
    )
    birth_date = birth_date_field()
    citizen_id = HiddenField()
    citizen_choice = citizen_choice_field()
    recording_announced = BooleanField("録音のお知らせ（アナウンス）が流れた")
    duration_minutes = IntegerField(
        "通話時間（分）",
        validators=[
            InputRequired("通話時間を分で入力してください。"),
            NumberRange(min=0, max=600, message="通話時間は0〜600分で入力してください。"),
        ],
    )
    callback_needed = BooleanField("折り返しが必要")
    callback_due_at = DateTimeLocalField(
        "折り返しの期限",
        format="%Y-%m-%dT%H:%M",
        validators=[Optional()],
    )
    subject = StringField(
        "件名（空欄ならメモの1行目）", validators=[Optional(), max_length("件名", 200)]
    )
    first_note = TextAreaField(
        "相談内容のメモ",
        validators=[required("相談内容のメモ"), max_length("相談内容のメモ", 10_000)],
    )
