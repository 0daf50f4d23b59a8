"""The display-name rule: citizens see staff only as 「やまだ / Yamada」, never the full name.

What this covers, found automatically so that pages added later by other packages are included:
1. every public GET route without URL arguments, fetched over HTTP in Japanese and English,
   with a member of staff whose full name is known working on a called walk-in;
2. every citizen-facing template, rendered with probe values whose `full_name` is that name:
   templates that extend public_base.html (directly or through another template), the lobby
   display, mail bodies (any `mail/` folder) and the error pages;
3. every outbox message any test writes to a citizen (tests/display_name_guard.py, autouse).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from jinja2 import Undefined

from channels.counter import services as counter
from consult.extensions import db
from consult.models import Channel
from consult.services import safety
from consult.services.actor import Actor
from consult.services.mail import enqueue_mail
from tests.consult.http import call
from tests.display_name_guard import FullNameLeak

ROOT = Path(__file__).resolve().parents[2] / "templates"
FULL = "長谷川 秀樹"
DISPLAY = "はせがわ / Hasegawa"
EXTENDS = re.compile(r"""{%-?\s*extends\s+["']([^"']+)["']""")


def citizen_facing_templates() -> list[str]:
    parents = {}
    for path in ROOT.rglob("*.html"):
        name = path.relative_to(ROOT).as_posix()
        match = EXTENDS.search(path.read_text(encoding="utf-8"))
        parents[name] = match.group(1) if match else None

    def public(name: str, depth: int = 0) -> bool:
        parent = parents.get(name)
        return parent == "public_base.html" or (
            parent is not None and depth < 10 and public(parent, depth + 1)
        )

    found = {n for n in parents if public(n)}
    found |= {n for n in parents if "/mail/" in f"/{n}" or n.startswith("errors/")}
    found.add("counter/display.html")
    return sorted(found)


class Probe:
    """Stands for any object a template reads: its full_name is the staff member's full name."""

    full_name = FULL
    display_name = DISPLAY

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return Probe()

    def __str__(self):
        return "x"

    def __call__(self, *args, **kwargs):
        return Probe()

    def __iter__(self):
        return iter([Probe(), Probe()])  # two: `for key, value in …` unpacks

    def __getitem__(self, key):
        return Probe()

    def __len__(self):
        return 1

    def __bool__(self):
        return True

    def __add__(self, other):
        return self

    __radd__ = __add__
    __sub__ = __add__
    __mul__ = __add__

    def __lt__(self, other):
        return False

    __gt__ = __lt__
    __le__ = __lt__
    __ge__ = __lt__

    def __int__(self):
        return 1

    def __format__(self, spec):
        return "x"

    def __index__(self):  # filters index tables with parts of a date (WEEKDAYS[d.weekday()])
        return 0


class ProbeUndefined(Undefined):
    """A missing template variable becomes a Probe, so every branch and loop renders."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return Probe()

    def __iter__(self):
        return iter([Probe(), Probe()])  # two: `for key, value in …` unpacks

    def __bool__(self):
        return True

    def __str__(self):
        return "x"

    def __call__(self, *args, **kwargs):
        return Probe()

    def _probe(self, *args):
        return Probe()

    __add__ = __radd__ = __sub__ = __mul__ = __rmul__ = __truediv__ = __mod__ = _probe
    __getitem__ = _probe

    def _compare(self, other):
        return True  # both sides of every comparison render

    __lt__ = __gt__ = __le__ = __ge__ = _compare


@pytest.fixture
def known_staff(app, make_staff):
    staff = make_staff("consultant", full_name=FULL, display_name=DISPLAY)
    return staff


def test_public_pages_never_show_a_full_name(app, known_staff, make_staff):
    from consult.web import is_public_endpoint

    walk_in = counter.WalkIn(
        category_id=None, room=1, first_note="相談", subject="住民票", anonymous=True
    )
    visit = counter.receive(Actor(known_staff, "127.0.0.1"), walk_in)
    counter.move(Actor(known_staff, "127.0.0.1"), visit.ticket, "call", 1)
    db.session.commit()
    client = app.test_client()
    fetched = []
    with app.test_request_context():
        routes = [
            rule
            for rule in app.url_map.iter_rules()
            if "GET" in rule.methods and not rule.arguments and is_public_endpoint(rule.endpoint)
        ]
    for rule in routes:
        for lang in ("ja", "en"):
            response = call(app, client, "GET", f"{rule.rule}?lang={lang}")
            text = response.get_data(as_text=True)
            assert FULL not in text and FULL.replace(" ", "") not in text, rule.rule
            fetched.append(rule.rule)
    assert "/display" in fetched


def test_citizen_facing_templates_never_print_a_full_name(app, known_staff):
    from flask import render_template

    names = citizen_facing_templates()
    assert "counter/display.html" in names
    failures, previous = [], app.jinja_env.undefined
    app.jinja_env.undefined = ProbeUndefined
    gettext = app.jinja_env.globals.get("_")
    if gettext is not None:
        # Public templates translate values (``_(LABELS[x])``): a probe passes through as text.
        from jinja2 import pass_context

        takes_context = getattr(gettext, "jinja_pass_arg", None) is not None

        @pass_context
        def probe_gettext(context, text, *a, **kw):
            if isinstance(text, Probe):
                return str(text)
            return gettext(context, text, *a, **kw) if takes_context else gettext(text, *a, **kw)

        app.jinja_env.globals["_"] = probe_gettext
    try:
        for name in names:
            with app.test_request_context("/?lang=ja"):
                app.preprocess_request()
                try:
                    html = render_template(name, staff=known_staff, officer=known_staff)
                except Exception as error:
                    failures.append(f"{name}: could not render with probes: {error!r}")
                    continue
            if FULL in html or FULL.replace(" ", "") in html:
                failures.append(f"{name}: shows the full name")
    finally:
        app.jinja_env.undefined = previous
        if gettext is not None:
            app.jinja_env.globals["_"] = gettext
    assert not failures, "\n".join(failures)


def test_the_outbox_guard_stops_a_full_name_to_a_citizen(app, known_staff, make_ticket):
    ticket = make_ticket(channel=Channel.EMAIL)
    enqueue_mail(
        to="citizen@example.jp", subject="ご相談の件", text=f"担当：{DISPLAY}", ticket=ticket
    )
    db.session.flush()
    with pytest.raises(FullNameLeak):
        # Packages that listen to queued mail may flush at once; either way the row is refused.
        enqueue_mail(
            to="citizen@example.jp", subject="ご相談の件", text=f"担当：{FULL}", ticket=ticket
        )
        db.session.flush()
    db.session.rollback()
    # Staff-internal mail (the help alert to the support room) may name staff in full.
    safety.raise_alert(Actor(known_staff, "127.0.0.1"), place="room1", ticket=ticket)
    db.session.flush()
