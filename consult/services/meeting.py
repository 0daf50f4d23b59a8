"""The centre's video meeting links: madoguchi does not run video, it fills in a link template.

An administrator sets a template such as https://meet.city.example.lg.jp/madoguchi/{code};
each session gets a random code of its own. Used by joint sessions (handoff.joint, setting
MADOGUCHI_HANDOFF_JOINT_MEETING_URL) and by sessions from a branch office (channels.booking,
MADOGUCHI_BOOKING_BRANCH_MEETING_URL), so that both check and fill the template alike.
"""

from __future__ import annotations

import secrets

from consult.settings import ConfigError

PLACEHOLDER = "{code}"


def check_template(variable: str, template: str) -> None:
    """Refuse at start-up a template that cannot give one link per session."""
    if template and (
        not template.startswith(("https://", "http://")) or PLACEHOLDER not in template
    ):
        raise ConfigError(
            f"MADOGUCHI_{variable}: expected an http(s) URL with {PLACEHOLDER} where"
            f" the meeting's code goes, got {template!r}"
        )


def new_code() -> str:
    """A meeting code nobody can guess (the link is the meeting's only key)."""
    return secrets.token_urlsafe(12)


def link(template: str, code: str) -> str:
    return template.replace(PLACEHOLDER, code)
