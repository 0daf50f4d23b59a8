"""The reply form and the saved-reply (定型文) form."""

from __future__ import annotations

from wtforms import BooleanField, StringField, TextAreaField

from consult.forms import Form, max_length, required


class ReplyForm(Form):
    body = TextAreaField(
        "返信本文", validators=[required("返信本文"), max_length("返信本文", 20000)]
    )


class TemplateForm(Form):
    name = StringField(
        "定型文の名前", validators=[required("定型文の名前"), max_length("定型文の名前", 80)]
    )
    body = TextAreaField("本文", validators=[required("本文"), max_length("本文", 20000)])
    active = BooleanField("使用する", default=True)
