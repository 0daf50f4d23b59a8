"""The alerts' forms: Japanese labels and messages."""

from __future__ import annotations

from wtforms import StringField, TextAreaField
from wtforms.validators import Optional

from consult.forms import Form, max_length, required


class AlertForm(Form):
    title = StringField("件名", validators=[required("件名"), max_length("件名", 120)])
    method = TextAreaField("手口", validators=[required("手口"), max_length("手口", 4000)])
    area = StringField("地域", validators=[Optional(), max_length("地域", 200)])
    phrases = TextAreaField(
        "犯人がよく使う言葉（1行に1つ）",
        validators=[Optional(), max_length("犯人がよく使う言葉", 2000)],
    )
    advice = TextAreaField("対処法", validators=[required("対処法"), max_length("対処法", 4000)])
    title_en = StringField(
        "英語の件名（英語ページ用・任意）", validators=[Optional(), max_length("英語の件名", 200)]
    )
    method_en = TextAreaField(
        "英語の手口（英語ページ用・任意）",
        validators=[Optional(), max_length("英語の手口", 4000)],
    )
    area_en = StringField(
        "英語の地域（英語ページ用・任意）", validators=[Optional(), max_length("英語の地域", 200)]
    )
    advice_en = TextAreaField(
        "英語の対処法（英語ページ用・任意）",
        validators=[Optional(), max_length("英語の対処法", 4000)],
    )

    def values(self) -> dict:
        return {name: getattr(self, name).data or "" for name in self.FIELDS}

    FIELDS = (
        *("title", "method", "area", "phrases", "advice"),
        *("title_en", "method_en", "area_en", "advice_en"),
    )


class ActionForm(Form):
    """A button that changes state: only the CSRF token."""
