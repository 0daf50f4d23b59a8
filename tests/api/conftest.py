"""Fixtures of the API's tests: integrations with chosen scopes, and their bearer headers."""

from __future__ import annotations

import pytest

from consult.extensions import db
from consult.services.actor import SYSTEM

ALL_SCOPES = ("tickets:read", "tickets:write", "personal", "reports", "faq")


@pytest.fixture
def make_token(app):
    """make_token(scopes, **options) → the bearer header of a new integration."""
    from api import services

    counter = {"n": 0}

    def make(scopes=ALL_SCOPES, name=None, **options) -> dict:
        counter["n"] += 1
        created = services.create_integration(
            SYSTEM, name=name or f"連携{counter['n']}", scopes=list(scopes), **options
        )
        db.session.commit()
        return {"Authorization": f"Bearer {created.token}"}

    return make
