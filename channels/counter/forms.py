from __future__ import annotations

from wtforms import BooleanField, HiddenField, StringField, TextAreaField
from wtforms.validators import Optional

from channels.counter.models import ROOMS
from consult.forms import (
    Form,
    JapaneseSelectField,
    birth_date_field,
    choices,
    citizen_choice_field,
    coerce_optional_int,
    max_length,
    required,
)


class ReceptionForm(Form):
    category_id = JapaneseSelectField("分類", coerce=coerce_optional_int)
    anonymous = BooleanField("匿名で受け付ける（氏名・電話番号を聞かない）")
    name = StringField("氏名", validators=[Optional(), max_length("氏名", 80)])
    kana = StringField("ふりがな", validators=[Optional(), max_length("ふりがな", 80)])
    birth_date = birth_date_field()
    phone = StringField("電話番号", validators=[Optional(), max_length("電話番号", 30)])
    citizen_id = HiddenField()
    citizen_choice = citizen_choice_field()
    room = JapaneseSelectField(
        "相談室", coerce=coerce_optional_int, choices=choices((r, f"相談室{r}") for r in ROOMS)
    )
    subject = StringField(
        "件名（空欄ならメモの1行目）", validators=[Optional(), max_length("件名", 200)]
    )
    first_note = TextAreaField(
        "最初のメモ（ご用件）",
        validators=[required("最初のメモ"), max_length("最初のメモ", 10_000)],
    )


class VisitForm(Form):
    room = JapaneseSelectField(
        "相談室", coerce=coerce_optional_int, choices=choices((r, f"相談室{r}") for r in ROOMS)
    )
