"""The staff form of an 「ご意見と回答」 entry."""

from __future__ import annotations

from wtforms import TextAreaField
from wtforms.validators import Optional

from consult.forms import Form, max_length, required
from faq.opinions.services import MAX_TEXT


class OpinionForm(Form):
    opinion = TextAreaField(
        "ご意見（要旨）", validators=[required("ご意見"), max_length("ご意見", MAX_TEXT)]
    )
    answer = TextAreaField("回答", validators=[required("回答"), max_length("回答", MAX_TEXT)])
    opinion_en = TextAreaField(
        "ご意見（英語・任意）", validators=[Optional(), max_length("ご意見（英語）", MAX_TEXT)]
    )
    answer_en = TextAreaField(
        "回答（英語・任意）", validators=[Optional(), max_length("回答（英語）", MAX_TEXT)]
    )
