"""The LINE panel's forms."""

from __future__ import annotations

from wtforms import TextAreaField
from wtforms.validators import Length

from channels.line.services import MAX_TEXT
from consult.forms import Form, required


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
