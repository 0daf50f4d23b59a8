"""Enums whose members carry their label, so that no table of labels is kept beside them."""

from __future__ import annotations

import enum
from typing import Any


class LabelledEnum(enum.StrEnum):
    """A string enum whose members carry their Japanese label::

        class Channel(LabelledEnum):
            COUNTER = "counter", "窓口"

    ``Channel.COUNTER.value == "counter"`` (what is stored), ``Channel.COUNTER.label == "窓口"``
    (what staff read). Public pages show ``_(member.label)``: the English text is in the
    translation catalogues, beside every other Japanese message.
    """

    label: str

    def __new__(cls, value: str, label: str) -> LabelledEnum:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        return member

    @classmethod
    def labelled(cls) -> list[tuple[str, str]]:
        """(value, label) for every member, in the order declared: a form's choices."""
        return [(member.value, member.label) for member in cls]

    @classmethod
    def label_for(cls, value: Any) -> str:
        """The label of a stored value (a string in JSON, say); an unknown one as it is."""
        try:
            return cls(value).label
        except ValueError:
            return str(value)
