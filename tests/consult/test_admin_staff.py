"""The administrator registers staff with a work address for notifications."""

from __future__ import annotations

import sqlalchemy as sa

from consult.extensions import db
from consult.models import Staff


def test_staff_with_and_without_a_valid_work_address(app, client, login_as, make_department):
    login_as("admin")
    department = make_department(name="市民課")
    data = {
        "login": "ichiro",
        "full_name": "市民 一郎",
        "display_name": "しみん / Shimin",
        "role": "officer",
        "department_id": str(department.id),
        "password": "a-long-password-2026",
    }
    bad = client.post("/admin/staff/new", data={**data, "email": "not-an-address"})
    assert bad.status_code == 422
    assert "メールアドレスの形式が正しくありません" in bad.get_data(as_text=True)
    assert db.session.scalar(sa.select(Staff).where(Staff.login == "ichiro")) is None

    ok = client.post("/admin/staff/new", data={**data, "email": "Ichiro@City.Example.JP"})
    assert ok.status_code == 302
    staff = db.session.scalar(sa.select(Staff).where(Staff.login == "ichiro"))
    assert staff.email == "ichiro@city.example.jp"

    edit = {k: v for k, v in data.items() if k not in ("login", "password")}
    cleared = client.post(f"/admin/staff/{staff.id}", data={**edit, "email": ""})
    assert cleared.status_code == 302
    db.session.expire_all()
    assert staff.email is None
