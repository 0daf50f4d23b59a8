"""The handoffs' settings section (MADOGUCHI_HANDOFF_*)."""

from __future__ import annotations

from dataclasses import dataclass

from consult.services import meeting
from consult.settings import Section


@dataclass(frozen=True)
class HandoffSettings(Section):
    PREFIX = "HANDOFF_"

    # Links that let an external body answer a handoff expire after this many days.
    link_days: int = 14

    # The centre's video meeting link for joint sessions (合同相談), with {code} where the
    # meeting's random code goes, e.g. https://meet.city.example.lg.jp/madoguchi/{code}.
    # madoguchi does not run video itself; empty means joint sessions are at the counter only.
    joint_meeting_url: str = ""

    def __post_init__(self) -> None:
        meeting.check_template(self.variable("joint_meeting_url"), self.joint_meeting_url)
