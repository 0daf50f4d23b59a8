"""NUL and other control characters in every text field of every form: refused with a message,
never a 500, never stored; and every form of every package gets the kernel's checks by default.

PostgreSQL refuses NUL in text where SQLite stores it, so the same posts run on both databases:
on PostgreSQL a missed field is a 500, on SQLite a row that holds the character.
"""

from __future__ import annotations

import importlib
import json
import pkgutil

import pytest
import sqlalchemy as sa
from wtforms import DateTimeField, HiddenField, StringField, TextAreaField, TimeField
from wtforms.form import BaseForm

from consult import forms as kernel_forms
from consult.extensions import db
from consult.services.actor import SYSTEM
from handoff import services as handoff_services
from handoff.models import Response, Urgency
from tests.channels.booking.helpers import form_data, slot_in
from tests.consult.http import call
from tests.helpers import sign_in

MESSAGE = "使用できない文字（制御文字など）が含まれていたため、取り除きました。"
MESSAGE_EN = "contained characters that cannot be used"
PACKAGES = ("consult", "channels", "handoff", "faq")


def _poison(value: str) -> str:
    """The value with a NUL and a C1 control inside, as a hostile client sends them."""
    return value[:1] + "\x00" + value[1:] + "\x85"


# --- every form class has the guard ------------------------------------------------------------


def _all_form_classes() -> list[type]:
    for package in PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            if ".translations" in info.name or info.name.endswith("__main__"):
                continue
            importlib.import_module(info.name)
    found, pending = [], [BaseForm]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.split(".")[0] in PACKAGES:
            found.append(cls)
    return found


def test_every_text_and_date_field_of_every_form_has_the_kernels_checks(app):
    classes = _all_form_classes()
    assert len(classes) > 30, "the walk found the packages' forms"
    missing = []
    with app.test_request_context("/", method="POST"):
        for cls in classes:
            form = cls(formdata=None)
            for field in form:
                where = f"{cls.__module__}.{cls.__name__}.{field.name}"
                if isinstance(field, StringField):
                    guarded = any(getattr(f, "madoguchi_text_guard", False) for f in field.filters)
                    refused = kernel_forms.refuse_controls in field.validators
                    if not guarded or not (refused or isinstance(field, HiddenField)):
                        missing.append(f"{where}: no control-character check")
                is_date = isinstance(field, DateTimeField) and not isinstance(field, TimeField)
                if is_date and kernel_forms.refuse_out_of_range not in field.validators:
                    missing.append(f"{where}: no date range check")
    assert not missing, "\n".join(missing)


def test_the_text_filter_keeps_line_breaks_and_tabs_only_where_they_belong(app):
    class Sample(kernel_forms.Form):
        one = StringField("一行")
        many = TextAreaField("複数行")

    data = {"one": "山田\t花子\n", "many": "一行目\r\n\t二行目\x00\x9f\x7f"}
    with app.test_request_context("/", method="POST", data=data):
        form = Sample()
        assert form.one.data == "山田 花子 "
        assert form.many.data == "一行目\r\n\t二行目"
        assert not form.validate()
        assert "one" not in form.errors  # a tab or a newline in one line is not an error …
        assert form.errors["many"] == [  # … a NUL is, and the person is told
            "複数行に使用できない文字（制御文字など）が含まれていたため、取り除きました。"
            "内容を確かめて、もう一度送信してください。"
        ]


# --- every text field of every form, posted with a NUL ----------------------------------------


@pytest.fixture
def objects(app, make_staff, make_ticket, make_department):
    department = make_department()
    ticket = make_ticket()
    [handoff] = handoff_services.create(
        SYSTEM, ticket, [handoff_services.Request(department.id, "伝達事項", Response.VISIT)]
    )
    db.session.commit()
    return {
        "number": ticket.number,
        "department": department.id,
        "handoff": handoff.id,
        "victim": make_staff("consultant").id,
    }


# (role, URL builder, valid form data, fields that carry text)
FORMS = [
    ("consultant", lambda o: f"/tickets/{o['number']}/note", {"body": "メモ"}),
    (
        "consultant",
        lambda o: f"/tickets/{o['number']}/status",
        {"status": "in_progress", "reason": "対応を始めます"},
    ),
    ("consultant", lambda o: f"/tickets/{o['number']}/close", {"summary": "案内しました"}),
    (
        "consultant",
        lambda o: f"/tickets/{o['number']}/details",
        {"subject": "住民票の写し", "category_id": "", "priority": "normal"},
    ),
    (
        "consultant",
        lambda o: f"/tickets/{o['number']}/citizen",
        {
            "name": "山田 花子",
            "kana": "やまだ はなこ",
            "phone": "0878392111",
            "email": "hanako@example.jp",
            "address": "高松市番町一丁目",
        },
    ),
    ("consultant", lambda o: "/tickets/search", {"q": "やまだ"}),
    ("consultant", lambda o: "/citizens/match", {"name": "やまだ"}),
    (
        "consultant",
        lambda o: "/counter/new",
        {
            "name": "山田 花子",
            "kana": "やまだ はなこ",
            "phone": "0878392111",
            "subject": "住民票",
            "first_note": "住民票の写しが欲しい",
            "room": "1",
            "category_id": "",
        },
    ),
    (
        "consultant",
        lambda o: "/phone/new",
        {
            "name": "山田 花子",
            "kana": "やまだ はなこ",
            "phone": "0878392111",
            "subject": "保険料",
            "first_note": "保険料の相談",
            "duration_minutes": "5",
            "category_id": "",
        },
    ),
    (
        "consultant",
        lambda o: f"/tickets/{o['number']}/handoffs",
        {
            "handoff-departments": lambda o: str(o["department"]),
            "handoff-summary": "ご相談の内容",
            "handoff-response": Response.VISIT.value,
            "handoff-urgency": Urgency.NORMAL.value,
        },
    ),
    ("consultant", lambda o: f"/handoffs/{o['handoff']}/info", {"text": "追加の情報"}),
    ("consultant", lambda o: f"/handoffs/{o['handoff']}/cancel", {"reason": "解決しました"}),
    (
        "consultant",
        lambda o: "/incidents/new",
        {"description": "大声で威圧された", "categories": "abuse"},
    ),
    ("consultant", lambda o: "/email/templates/new", {"name": "定型", "body": "本文です"}),
    (
        "consultant",
        lambda o: "/staff/faq/new",
        {
            "question": "住民票の写しは",
            "answer": "市民課で",
            "keywords": "住民票",
            "visibility": "staff",
            "category_id": "",
            "department_id": "",
        },
    ),
    (
        "consultant",
        lambda o: "/booking/staff/new",
        {
            "mode": "phone",
            "start": lambda o: f"{slot_in(7):%Y-%m-%dT%H:%M}",
            "category_id": "",
            "name": "山田 花子",
            "kana": "やまだ はなこ",
            "phone": "0878392111",
            "email": "",
            "content": "相談",
        },
    ),
    (
        "admin",
        lambda o: "/admin/staff/new",
        {
            "login": "newstaff",
            "full_name": "新規 職員",
            "display_name": "しんき / Shinki",
            "role": "consultant",
            "department_id": "",
            "email": "",
            "password": "a-long-password-1",
        },
    ),
    (
        "admin",
        lambda o: f"/admin/staff/{o['victim']}",
        {
            "full_name": "試験 次郎",
            "display_name": "しけん / Shiken",
            "role": "consultant",
            "department_id": "",
            "email": "",
        },
    ),
    (
        "admin",
        lambda o: "/admin/departments/new",
        {"code": "newdept", "name": "新しい課", "email": ""},
    ),
    ("admin", lambda o: "/admin/categories/new", {"code": "newcat", "name": "新しい分類"}),
    (
        "admin",
        lambda o: "/admin/calendar/exceptions",
        {"day": lambda o: f"{slot_in(20):%Y-%m-%d}", "closed": "y", "note": "設備点検"},
    ),
    ("supervisor", lambda o: "/staff/faq/synonyms", {"text": "国保＝国民健康保険"}),
]
# Values that are choices, numbers or dates: the other fields carry text.
NOT_TEXT = {
    "status",
    "priority",
    "category_id",
    "department_id",
    "room",
    "duration_minutes",
    "handoff-departments",
    "handoff-response",
    "handoff-urgency",
    "categories",
    "visibility",
    "mode",
    "start",
    "role",
    "day",
    "closed",
}


def _resolve(data: dict, o: dict) -> dict:
    return {k: (v(o) if callable(v) else v) for k, v in data.items()}


def _no_nul_stored(backend: str) -> None:
    """SQLite stores a NUL: look for one in every text column of every table."""
    if backend != "sqlite":
        return  # PostgreSQL cannot hold one; a 500 above would have shown it
    found = []
    for table in db.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, sa.String):
                count = db.session.scalar(
                    sa.select(sa.func.count()).where(sa.func.instr(column, "\x00") > 0)
                )
                if count:
                    found.append(f"{table.name}.{column.name}")
    assert not found, found


def test_a_nul_in_any_staff_form_field_is_refused_in_japanese(app, backend, make_staff, objects):
    clients = {role: sign_in(app, make_staff(role)) for role in ("consultant", "admin")}
    clients["supervisor"] = sign_in(app, make_staff("supervisor"))
    failures = []
    for role, url_of, data in FORMS:
        url, valid = url_of(objects), _resolve(data, objects)
        for name in valid:
            if name in NOT_TEXT:
                continue
            hostile = {**valid, name: _poison(valid[name] or "x")}
            response = call(app, clients[role], "POST", url, data=hostile, follow_redirects=True)
            text = response.get_data(as_text=True)
            if response.is_json:  # the citizen search answers in JSON, its errors included
                text = json.dumps(response.get_json(), ensure_ascii=False)
            if response.status_code >= 500 or MESSAGE not in text:
                failures.append(f"{url} {name}: {response.status_code}")
    assert not failures, "\n".join(failures)
    _no_nul_stored(backend)


def test_a_nul_in_the_public_booking_form_is_refused(client, backend):
    valid = form_data(slot_in(7))
    for name in ("name", "kana", "email", "phone", "content"):
        for lang, message in (("ja", MESSAGE), ("en", MESSAGE_EN)):
            hostile = {**valid, name: _poison(valid[name])}
            response = client.post(f"/booking/details?lang={lang}", data=hostile)
            assert response.status_code == 422, (name, lang, response.status_code)
            assert message in response.get_data(as_text=True), (name, lang)
    # The hidden slot and the category: cleaned, never a 500.
    for name in ("start", "category", "mode"):
        response = client.post("/booking/details", data={**valid, name: _poison(valid[name])})
        assert response.status_code < 500, (name, response.status_code)
    _no_nul_stored(backend)


# --- query strings: searches and filters -------------------------------------------------------

QUERIES = {
    None: ["/faq?q=住民\x00票", "/faq?category=1\x00", "/booking/slots?mode=phone&category=1\x00"],
    "consultant": [
        "/staff/faq?q=住民\x00票",
        "/staff/faq/suggest?q=住民\x00票",
        "/tickets?status=received\x00&assignee=\x00",
        "/handoffs?tab=new\x00",
        "/booking/staff/day?date=2026-12-01\x00",
    ],
    "admin": [
        "/admin/audit?object_id=1\x00&action=view\x00&object_type=ticket\x00",
        "/admin/outbox?status=failed\x00",
        "/email/inbound?status=failed\x00",
    ],
}


def test_a_nul_in_a_query_string_is_never_a_500(app, make_staff):
    failures = []
    for role, urls in QUERIES.items():
        client = app.test_client() if role is None else sign_in(app, make_staff(role))
        for url in urls:
            response = call(app, client, "GET", url)
            if response.status_code >= 500:
                failures.append(f"{url!r}: {response.status_code}")
    assert not failures, "\n".join(failures)
