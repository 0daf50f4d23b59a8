"""Requests from several test clients at once (sign them in with tests.helpers.sign_in).

The ``app`` fixture keeps an application context pushed for the whole test, and Flask reuses it
for every request, so ``g`` (where Flask-Login caches the current user) would leak from one
client's request into the next. In production each request has its own context; here each
request gets a fresh one, so each client is judged only by its own cookie.
"""

from __future__ import annotations

from consult.extensions import db


def call(app, client, method: str, url: str, **kwargs):
    # End the test's own transaction first: on SQLite it holds the write lock (BEGIN IMMEDIATE).
    db.session.commit()
    with app.app_context():
        response = client.open(url, method=method, **kwargs)
        response.close()
        return response
