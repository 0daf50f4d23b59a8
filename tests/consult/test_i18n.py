"""Public pages speak Japanese or English; the choice is the citizen's and is remembered."""

from __future__ import annotations

from flask import Blueprint, render_template_string

from consult.web import public
from tests.helpers import sign_in


def _app_with_public_page(app_factory):
    app = app_factory()
    page = Blueprint("i18n_probe", __name__)

    @page.route("/i18n-probe")
    @public
    def probe():
        return render_template_string(
            '{% extends "public_base.html" %}{% block content %}'
            "<p id=x>{{ _('市民相談センター') }}</p>{% endblock %}"
        )

    app.register_blueprint(page)
    return app


def test_browser_language_then_switch_and_cookie(app_factory):
    app = _app_with_public_page(app_factory)
    client = app.test_client()
    page = client.get("/i18n-probe").get_data(as_text=True)
    assert '<html lang="ja">' in page and "市民相談センター" in page

    english = client.get("/i18n-probe", headers={"Accept-Language": "en-US,en;q=0.9"})
    text = english.get_data(as_text=True)
    assert '<html lang="en">' in text and "Citizens' Consultation Centre" in text
    assert "Skip to content" in text

    switched = client.get("/i18n-probe?lang=en")
    assert '<html lang="en">' in switched.get_data(as_text=True)
    # Remembered without the parameter, even when the browser prefers Japanese.
    again = client.get("/i18n-probe", headers={"Accept-Language": "ja"})
    assert '<html lang="en">' in again.get_data(as_text=True)
    back = client.get("/i18n-probe?lang=ja").get_data(as_text=True)
    assert '<html lang="ja">' in back and "本文へ移動" in back


def test_unknown_language_falls_back_to_japanese(app_factory):
    app = _app_with_public_page(app_factory)
    page = app.test_client().get("/i18n-probe?lang=xx", headers={"Accept-Language": "fr"})
    assert '<html lang="ja">' in page.get_data(as_text=True)


def test_staff_pages_stay_japanese(app, make_staff):
    client = sign_in(app, make_staff("consultant"))
    page = client.get("/tickets?lang=en").get_data(as_text=True)
    assert "本文へ移動" in page and "Skip to content" not in page


def test_processes_starting_at_once_all_get_the_catalogs(app):
    """gunicorn's workers start together over one instance folder: each compiles the catalogs,
    and none may find another's half-written file (a worker crashed at boot on a shared name)."""
    import shutil
    import threading
    from pathlib import Path

    from consult import i18n

    shutil.rmtree(Path(app.instance_path) / "translations")
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def compile_catalogs():
        start.wait()
        try:
            for _ in range(5):
                i18n._compile(app)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=compile_catalogs) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    compiled = list((Path(app.instance_path) / "translations").rglob("*.mo"))
    assert compiled and not list((Path(app.instance_path) / "translations").rglob("*.tmp"))
