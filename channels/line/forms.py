"""The LINE panel's forms."""

from __future__ import annotations

from wtforms import HiddenField, TextAreaField
from wtforms.validators import Length

from channels.line.services import MAX_TEXT
from consult.forms import Form, JapaneseSelectField, choices, required


class ReplyForm(Form):
    body = TextAreaField(
        "LINEで返信",
        validators=[
            required("返信の本文"),
            Length(max=MAX_TEXT, message=f"返信は{MAX_TEXT:,}文字以内で入力してください。"),
        ],
    )


class ActionForm(Form):
    """A button that only needs its CSRF token (issue a code, link the contact)."""


class NoticeForm(Form):
    """A notice to the citizens of a segment (choices filled in by the view)."""

    text = TextAreaField(
        "お知らせの本文",
        validators=[
            required("お知らせの本文"),
            Length(max=MAX_TEXT, message=f"本文は{MAX_TEXT:,}文字以内で入力してください。"),
        ],
    )
    interest = JapaneseSelectField("お知らせの種類")
    district = JapaneseSelectField("地区")
    age_band = JapaneseSelectField("子どもの年齢（子育て情報のみ）")
    draft_id = HiddenField()


def notice_form(**kwargs) -> NoticeForm:
    from channels.line import notices

    form = NoticeForm(**kwargs)
    form.interest.choices = choices(notices.INTERESTS.items())
    form.district.choices = choices(((d, d) for d in notices.districts()), blank="全地区")
    form.age_band.choices = choices(notices.AGE_BANDS.items(), blank="指定なし")
    return form
