"""Handoff forms: what the centre asks for, and what the officer records."""

from __future__ import annotations

from wtforms import (
    DateTimeLocalField,
    IntegerField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, NumberRange, Optional, ValidationError

from consult.forms import Form, JapaneseSelectField, choices, max_length, required
from handoff.models import (
    SESSION_MINUTES,
    Response,
    SessionMode,
    Urgency,
)


class DepartmentsField(SelectMultipleField):
    def pre_validate(self, form):
        values = {str(choice.value) for choice in self.choices}
        if any(str(value) not in values for value in self.data or ()):
            raise ValidationError("引継ぎ先は一覧から選んでください。")


def _ints(values):
    result = []
    for value in values or ():
        try:
            result.append(int(value))
        except (TypeError, ValueError):
            result.append(-1)
    return result


class HandoffForm(Form):
    departments = DepartmentsField(
        "引継ぎ先（担当課・外部機関）",
        coerce=str,
        validators=[InputRequired(message="引継ぎ先を1つ以上選んでください。")],
    )
    summary = TextAreaField(
        "担当課への伝達事項",
        validators=[required("担当課への伝達事項"), max_length("担当課への伝達事項", 4000)],
    )
    response = JapaneseSelectField(
        "求める対応",
        choices=choices(Response.labelled()),
        default=Response.VISIT.value,
        validators=[required("求める対応")],
    )
    urgency = JapaneseSelectField(
        "緊急度",
        choices=choices(Urgency.labelled()),
        default=Urgency.NORMAL.value,
        validators=[required("緊急度")],
    )
    due_at = DateTimeLocalField(
        "回答期限（空欄なら標準の期限）",
        format="%Y-%m-%dT%H:%M",
        validators=[Optional()],
    )

    @property
    def department_ids(self) -> list[int]:
        return _ints(self.departments.data)


class EtaForm(Form):
    eta_minutes = IntegerField(
        "到着までの時間（分）",
        validators=[
            InputRequired(message="到着までの時間を分で入力してください。"),
            NumberRange(min=1, max=240, message="到着までの時間は1〜240分で入力してください。"),
        ],
    )


class RecordForm(Form):
    action = TextAreaField(
        "対応内容", validators=[required("対応内容"), max_length("対応内容", 4000)]
    )
    outcome = TextAreaField("結果", validators=[required("結果"), max_length("結果", 4000)])
    follow_up = TextAreaField(
        "今後の対応（あれば）", validators=[Optional(), max_length("今後の対応", 4000)]
    )
    follow_up_by = StringField(
        "今後の対応の担当", validators=[Optional(), max_length("今後の対応の担当", 120)]
    )


class ExternalRecordForm(RecordForm):
    author_name = StringField(
        "ご担当者名", validators=[required("ご担当者名"), max_length("ご担当者名", 120)]
    )


class ReasonForm(Form):
    reason = TextAreaField("理由", validators=[required("理由"), max_length("理由", 4000)])


class InfoForm(Form):
    text = TextAreaField(
        "追加情報", validators=[required("追加情報"), max_length("追加情報", 4000)]
    )


class ActionForm(Form):
    """Buttons without fields (accept, arrive): the CSRF token only."""


class JointSessionForm(Form):
    starts_at = DateTimeLocalField(
        "日時",
        format="%Y-%m-%dT%H:%M",
        validators=[InputRequired(message="合同相談の日時を入力してください。")],
    )
    minutes = JapaneseSelectField(
        "所要時間",
        choices=choices((m, f"{m}分") for m in SESSION_MINUTES),
        default="60",
    )
    mode = JapaneseSelectField(
        "方法",
        choices=choices(SessionMode.labelled()),
        default=SessionMode.VIDEO.value,
    )


class SessionAnswerForm(Form):
    """The invitee's answer: 参加します, or another time with what suits them."""

    by_name = StringField("お名前", validators=[required("お名前"), max_length("お名前", 120)])
    note = TextAreaField(
        "別の日時のご希望（参加できる場合は空欄で構いません）",
        validators=[max_length("別の日時のご希望", 2000)],
    )
