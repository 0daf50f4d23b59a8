"""Forms of the citizens' voice: the public satisfaction question, and the desk's request forms."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import RadioField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from consult.forms import Form, JapaneseSelectField, choices, max_length, required
from consult.voice.models import SCORES, RequestKind
from consult.voice.services import MAX_ANSWER, MAX_COMMENT

# msgids of the catalog consult/voice/translations (the public page is Japanese and English).
PUBLIC_SCORE_LABELS = {
    5: _l("満足"),
    4: _l("やや満足"),
    3: _l("どちらともいえない"),
    2: _l("やや不満"),
    1: _l("不満"),
}


class ScoreField(RadioField):
    def pre_validate(self, form):
        if str(self.data) not in {str(value) for value, _label in self.choices}:
            raise ValidationError(_l("選択肢から一つ選んでください。"))


class SatisfactionForm(Form):
    class Meta:
        locales = False  # messages are ours, translated by Flask-Babel

    score = ScoreField(
        _l("対応にご満足いただけましたか"),
        coerce=str,
        validators=[DataRequired(message=_l("選択肢から一つ選んでください。"))],
    )
    comment = TextAreaField(
        _l("ご意見（任意）"),
        validators=[
            Optional(),
            Length(max=MAX_COMMENT, message=_l("ご意見は1,000文字以内でお書きください。")),
        ],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.score.choices = [(str(s), PUBLIC_SCORE_LABELS[s]) for s in SCORES]


class MarkForm(Form):
    kind = JapaneseSelectField("種別", validators=[required("種別")])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind.choices = choices(RequestKind.labelled(), blank="選んでください")


class AnswerForm(Form):
    text = TextAreaField(
        "回答（文書回答の本文）", validators=[required("回答"), max_length("回答", MAX_ANSWER)]
    )
