"""Handoff fixtures: the centre's video meeting template, for the tests of joint sessions."""

from __future__ import annotations

import pytest

from consult.settings import override as override_settings

MEETING = "https://meet.city.example.lg.jp/madoguchi/{code}"


@pytest.fixture
def joint_meeting(app) -> str:
    """The app has the centre's video meeting template set, so joint sessions by video are
    offered; returns the template (a test compares the invitation's URL with it)."""
    override_settings(app, HANDOFF_JOINT_MEETING_URL=MEETING)
    return MEETING
