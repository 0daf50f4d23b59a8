"""The FAQ's forms: Japanese labels and messages (the public ones are translated in templates)."""

from __future__ import annotations

from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import Optional

from consult.forms import (
    Form,
    JapaneseSelectField,
    choices,
    coerce_optional_int,
    max_length,
    required,
)
from faq.models import Visibility
from faq.services import MAX_ANSWER, MAX_KEYWORDS, MAX_QUESTION


class EntryForm(Form):
    question = TextAreaField(
        "質問", validators=[required("質問"), max_length("質問", MAX_QUESTION)]
    )
    answer = TextAreaField(
        "回答（Markdown）", validators=[required("回答"), max_length("回答", MAX_ANSWER)]
    )
    keywords = StringField(
        "キーワード（読点・カンマ区切り）",
        validators=[Optional(), max_length("キーワード", MAX_KEYWORDS)],
    )
    category_id = JapaneseSelectField("分類", coerce=coerce_optional_int)
    department_id = JapaneseSelectField("担当課", coerce=coerce_optional_int)
    visibility = JapaneseSelectField("公開範囲", choices=choices(Visibility.labelled()))
    # The entry's revision when the edit page was shown: a save over a newer one is refused.
    revision = HiddenField()


class ActionForm(Form):
    """A button that changes state: only the CSRF token."""


class SynonymForm(Form):
    text = TextAreaField(
        "同義語（1行に1組、「語＝語＝語」）", validators=[max_length("同義語", 20_000)]
    )


class HelpfulForm(Form):
    back = HiddenField()
