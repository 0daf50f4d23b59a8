"""The administrators' forms for integrations and webhooks (Japanese, CSRF)."""

from __future__ import annotations

from wtforms import BooleanField, DateField, StringField, TextAreaField
from wtforms.validators import Optional

from api.models import Scope, WebhookEvent
from consult.forms import (
    Form,
    JapaneseSelectField,
    MultiCheckboxField,
    choices,
    coerce_optional_int,
    max_length,
    required,
)
from consult.services import staff as staff_service


class IntegrationForm(Form):
    name = StringField("連携名", [required("連携名"), max_length("連携名", 80)])
    scopes = MultiCheckboxField("権限の範囲")
    allowed_addresses = TextAreaField(
        "許可する接続元（IP アドレスまたはネットワーク、1行に1つ。空欄はすべて許可）",
        [max_length("許可する接続元", 2000)],
    )
    expires_on = DateField("有効期限（この日の終わりまで。空欄は無期限）", [Optional()])
    department_id = JapaneseSelectField(
        "担当課のシステム（相談の登録・更新の権限があれば、この課あての引継ぎを操作できます）",
        coerce=coerce_optional_int,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.scopes.choices = choices(Scope.labelled())
        self.department_id.choices = choices(
            ((d.id, d.name) for d in staff_service.list_departments()), blank="なし"
        )


class WebhookForm(Form):
    name = StringField("名前", [required("名前"), max_length("名前", 80)])
    url = StringField("送信先URL", [required("送信先URL"), max_length("送信先URL", 500)])
    events = MultiCheckboxField("送るイベント")
    personal = BooleanField("件名と相談者の氏名を含める（個人情報の範囲）")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.events.choices = choices(WebhookEvent.labelled())
