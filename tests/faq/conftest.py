"""FAQ fixtures: entries made through the services, published by a second supervisor."""

from __future__ import annotations

import pytest

from consult.extensions import db
from consult.services.actor import Actor


@pytest.fixture
def faq_people(make_staff):
    author = make_staff("consultant")
    approver = make_staff("supervisor")
    return Actor(author, "127.0.0.1"), Actor(approver, "127.0.0.1")


@pytest.fixture
def publish_entry(app, faq_people):
    from faq import services

    author, approver = faq_people

    def make(question, answer, *, visibility="public", keywords="", **kw):
        entry = services.create_entry(
            author,
            question=question,
            answer=answer,
            keywords=keywords,
            visibility=visibility,
            **kw,
        )
        services.submit(author, entry)
        services.approve(approver, entry)
        db.session.commit()
        services.index().sync()
        return entry

    return make
