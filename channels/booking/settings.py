"""Booking's settings section (MADOGUCHI_BOOKING_*)."""

from __future__ import annotations

from dataclasses import dataclass

from consult.services import meeting
from consult.settings import Section


@dataclass(frozen=True)
class BookingSettings(Section):
    PREFIX = "BOOKING_"

    # Per client address, across every process (limits separated by ';').
    rate_limit: str = "30 per hour;10 per minute"
    # Where a counter session takes place (in the invitation and the confirmation).
    place: str = "市民相談センター 窓口"
    place_en: str = "Citizens' Consultation Centre, counter"
    # 支所からのオンライン相談: the centre's video meeting link, with {code} where each
    # session's random code goes (as MADOGUCHI_HANDOFF_JOINT_MEETING_URL; often the same).
    # Empty: the mode is not offered.
    branch_meeting_url: str = ""

    def __post_init__(self) -> None:
        meeting.check_template(self.variable("branch_meeting_url"), self.branch_meeting_url)
