"""Japanese and English for the public pages (booking, FAQ), through Flask-Babel.

Message ids are the Japanese text; each package that has public pages keeps its own catalog
(`<package>/translations/en/LC_MESSAGES/messages.po`) and names its folder in its plugin
(`Plugin.translations`). Catalogs are compiled to `.mo` in the instance
folder when the app starts (a few milliseconds), so nothing generated is committed and an
installed package needs no build step.

The language: `?lang=ja|en` (remembered in a cookie), else the cookie, else the browser's
Accept-Language; Japanese when nothing matches.
Staff templates do not call gettext, so they stay Japanese whatever is chosen.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from urllib.parse import urlencode

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, current_app, request
from flask_babel import Babel

LANGUAGES = ("ja", "en")
LANGUAGE_NAMES = {"ja": "日本語", "en": "English"}
COOKIE = "madoguchi_lang"

KERNEL_TRANSLATIONS = Path(__file__).parent / "translations"
babel = Babel()


_compiled_catalogs: dict[tuple[Path, int], bytes] = {}


def _compiled(po_path: Path) -> bytes:
    """A catalog's `.mo` bytes, parsed once per process and source version.

    Apps with another instance folder (the test suite builds one per test) reuse the parse.
    """
    key = (po_path, po_path.stat().st_mtime_ns)
    compiled = _compiled_catalogs.get(key)
    if compiled is None:
        with po_path.open("rb") as handle:
            catalog = read_po(handle)
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        compiled = _compiled_catalogs[key] = buffer.getvalue()
    return compiled


def _compile(app: Flask) -> list[str]:
    """Compile the kernel's and every plugin's catalog into its own folder under the instance."""
    from consult import plugins

    target_root = Path(app.instance_path) / "translations"
    compiled = []
    sources = [KERNEL_TRANSLATIONS, *plugins.registry(app).translation_dirs]
    for index, source in enumerate(sources):
        if not source.is_dir():
            continue
        target = target_root / str(index)
        for po_path in source.glob("*/LC_MESSAGES/*.po"):
            relative = po_path.relative_to(source)
            mo_path = (target / relative).with_suffix(".mo")
            if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
                continue
            mo_path.parent.mkdir(parents=True, exist_ok=True)
            # Several processes start at once (gunicorn's workers): each writes a file of its own
            # and renames it into place, which is atomic, so none finds another's half-written.
            fd, tmp = tempfile.mkstemp(dir=mo_path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as handle:
                handle.write(_compiled(po_path))
            os.replace(tmp, mo_path)
        compiled.append(str(target))
    return compiled


def select_locale() -> str:
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        return asked
    remembered = request.cookies.get(COOKIE)
    if remembered in LANGUAGES:
        return remembered
    return request.accept_languages.best_match(LANGUAGES) or "ja"


def init_app(app: Flask) -> None:
    directories = _compile(app)
    app.config["BABEL_DEFAULT_LOCALE"] = "ja"
    app.config["BABEL_DEFAULT_TIMEZONE"] = "Asia/Tokyo"
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = ";".join(directories)
    babel.init_app(app, locale_selector=select_locale)

    @app.after_request
    def remember_language(response):
        asked = request.args.get("lang")
        if asked in LANGUAGES and request.cookies.get(COOKIE) != asked:
            response.set_cookie(COOKIE, asked, max_age=365 * 86400, samesite="Lax")
        return response

    @app.context_processor
    def language_links():
        from flask_babel import get_locale

        language = str(get_locale() or "ja")
        return {
            "current_language": language,
            "public_centre_name": localized_setting("CENTRE_NAME", language),
            "LANGUAGE_NAMES": LANGUAGE_NAMES,
            "language_url": language_url,
        }


def language_url(code: str, carry: dict | None = None) -> str:
    """This page in another language, keeping its query (the chosen mode, slot, week).

    A page shown after a POST passes what it needs to be shown again by GET in `carry`
    (e.g. the booking form keeps its slot); otherwise switching language would lose it.
    """
    args = request.args.to_dict()
    args.update({k: v for k, v in (carry or {}).items() if v not in (None, "")})
    args["lang"] = code
    return f"{request.path}?{urlencode(args)}"


def localized_setting(key: str, language: str | None) -> str:
    """An administrator's setting in a public page's language: `KEY_EN` in English, when set.

    Such values are data: they never go through gettext (whose result a template takes as
    safe markup), so each has its own English setting, falling back to the Japanese one.
    """
    settings = current_app.config["MADOGUCHI"]
    if language == "en" and settings.get(f"{key}_EN"):
        return str(settings[f"{key}_EN"])
    return str(settings.get(key) or "")
