"""The `madoguchi` command line, through Flask's CLI runner."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from consult.extensions import db
from consult.models import Category, Channel, Department, Role, Staff, Status, Ticket
from consult.services import outbox, tickets
from consult.services.actor import Actor
from tests.conftest import install_channel


@pytest.fixture
def run(app):
    runner = app.test_cli_runner()

    def invoke(*args):
        result = runner.invoke(args=list(args))
        db.session.expire_all()
        return result

    return invoke


def _staff(login):
    return db.session.scalar(sa.select(Staff).where(Staff.login == login))


# --- staff and departments -------------------------------------------------------------------


def test_staff_create_takes_the_password_from_the_environment(app, run, monkeypatch):
    from consult.services import auth

    monkeypatch.setenv("MADOGUCHI_NEW_PASSWORD", "a-long-enough-password-1")
    result = run(
        "staff",
        "create",
        "yamada",
        "--name",
        "山田 花子",
        "--display-name",
        "やまだ / Yamada",
        "--role",
        "consultant",
    )
    assert result.exit_code == 0, result.output
    assert "職員「yamada」を登録しました（相談員）。" in result.output
    staff = _staff("yamada")
    assert staff.role == Role.CONSULTANT
    assert staff.display_name == "やまだ / Yamada"
    assert auth.verify_password(staff.password_hash, "a-long-enough-password-1")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--role", "mayor", "役割「mayor」はありません。"),
        (
            "--display-name",
            "山田 花子",
            "表示名は姓のみを「ひらがな / ローマ字」で入力してください",
        ),
        ("--display-name", "yamada", "表示名は姓のみを「ひらがな / ローマ字」で入力してください"),
    ],
)
def test_staff_create_refuses_bad_input_in_japanese(app, run, monkeypatch, option, value, message):
    monkeypatch.setenv("MADOGUCHI_NEW_PASSWORD", "a-long-enough-password-1")
    options = {"--name": "山田 花子", "--display-name": "やまだ / Yamada", "--role": "consultant"}
    options[option] = value
    result = run("staff", "create", "yamada", *[part for pair in options.items() for part in pair])
    assert result.exit_code != 0
    assert message in result.output
    assert _staff("yamada") is None


def test_officer_needs_a_known_department(app, run, monkeypatch):
    monkeypatch.setenv("MADOGUCHI_NEW_PASSWORD", "a-long-enough-password-1")
    base = ["staff", "create", "suzuki", "--name", "鈴木 一郎"]
    base += ["--display-name", "すずき / Suzuki", "--role", "officer"]
    result = run(*base, "--department", "nowhere")
    assert result.exit_code != 0
    assert "担当課コード「nowhere」は登録されていません。" in result.output
    assert _staff("suzuki") is None


def test_department_create_external_with_email(app, run):
    result = run(
        "department",
        "create",
        "shakyo",
        "--name",
        "高松市社会福祉協議会",
        "--external",
        "--email",
        "Soudan@Example.JP",
    )
    assert result.exit_code == 0, result.output
    assert "担当課「高松市社会福祉協議会」（shakyo）を登録しました。" in result.output
    department = db.session.scalar(sa.select(Department).where(Department.code == "shakyo"))
    assert department.is_external is True
    assert department.email == "soudan@example.jp"


def test_department_create_refuses_a_bad_code(app, run):
    result = run("department", "create", "市民課", "--name", "市民課")
    assert result.exit_code != 0
    assert "担当課コードは半角英小文字・数字" in result.output
    assert db.session.scalar(sa.select(sa.func.count(Department.id))) == 0


# --- tickets ---------------------------------------------------------------------------------


@pytest.fixture
def some_tickets(app, make_ticket, make_category, make_staff):
    consultant = make_staff("consultant")
    actor = Actor(consultant, "127.0.0.1")
    procedures = make_category(name="行政手続き")
    consumer = make_category(name="消費生活トラブル")
    phone = make_ticket(
        actor=actor, channel=Channel.PHONE, subject="架空請求のはがき", category_id=consumer.id
    )
    counter = make_ticket(
        actor=actor,
        channel=Channel.COUNTER,
        subject="住民票の写し",
        category_id=procedures.id,
        first_note="来庁。必要書類を案内。",
    )
    closed = make_ticket(actor=actor, channel=Channel.PHONE, subject="ごみの分別")
    tickets.close(actor, closed, "分別表を郵送した")
    tickets.assign(actor, counter, consultant.id)
    db.session.commit()
    return {
        "phone": phone,
        "counter": counter,
        "closed": closed,
        "consultant": consultant,
        "consumer": consumer,
    }


def _list(run, *args):
    result = run("ticket", "list", "--json", *args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert isinstance(data, list)
    return data


def test_ticket_list_json(app, run, some_tickets):
    data = _list(run)
    assert [t["number"] for t in data] == [
        some_tickets["counter"].number,
        some_tickets["phone"].number,
    ]
    first = data[0]
    assert {"number", "channel", "status", "category", "subject"} <= set(first)
    assert first["channel"] == "counter"
    assert first["status"] == "received"
    assert first["category"] == "行政手続き"
    assert first["subject"] == "住民票の写し"


def test_ticket_list_filters(app, run, some_tickets):
    assert [t["number"] for t in _list(run, "--channel", "phone")] == [some_tickets["phone"].number]
    by_category = _list(run, "--category", str(some_tickets["consumer"].id))
    assert [t["subject"] for t in by_category] == ["架空請求のはがき"]
    login = some_tickets["consultant"].login
    assert [t["subject"] for t in _list(run, "--assignee", login)] == ["住民票の写し"]
    assert [t["subject"] for t in _list(run, "--status", "closed")] == ["ごみの分別"]
    assert len(_list(run, "--closed")) == 3
    assert _list(run, "--channel", "line") == []


def test_ticket_list_unknown_assignee(app, run, some_tickets):
    result = run("ticket", "list", "--json", "--assignee", "nobody")
    assert result.exit_code != 0
    assert "職員「nobody」は登録されていません。" in result.output


def test_ticket_show_json_includes_the_timeline(app, run, some_tickets):
    closed = some_tickets["closed"]
    result = run("ticket", "show", closed.number, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["number"] == closed.number
    assert data["status"] == "closed"
    assert data["resolution_summary"] == "分別表を郵送した"
    kinds = [entry["kind"] for entry in data["timeline"]]
    # Closing an unowned case makes whoever closed it its 担当, then the status changes.
    assert kinds == ["assignment", "status_change"]
    assert data["timeline"][1]["body"] == "分別表を郵送した"
    assert data["timeline"][1]["author"] == some_tickets["consultant"].login
    assert data["assignee"] == some_tickets["consultant"].login


def test_ticket_show_unknown_number(app, run, some_tickets):
    result = run("ticket", "show", "2026-999999", "--json")
    assert result.exit_code != 0
    assert "相談番号「2026-999999」は見つかりません。" in result.output


# --- worker and demo data --------------------------------------------------------------------


def test_worker_once_prints_counts(app, run):
    install_channel(app, "test-cli", lambda message: None)

    def refuse(message):
        raise outbox.PermanentFailure("blocked")

    install_channel(app, "test-cli-refuse", refuse)
    outbox.enqueue(channel="test-cli", recipient="a@example.jp", body="1")
    outbox.enqueue(channel="test-cli", recipient="b@example.jp", body="2")
    outbox.enqueue(channel="test-cli-refuse", recipient="c@example.jp", body="3")
    db.session.commit()
    result = run("worker", "--once")
    assert result.exit_code == 0, result.output
    assert "配信 2 件、再試行待ち 0 件、失敗 1 件" in result.output
    again = run("worker", "--once")
    assert "配信 0 件、再試行待ち 0 件、失敗 0 件" in again.output


def _counts():
    return tuple(
        db.session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (Department, Staff, Ticket)
    )


@pytest.mark.slow  # the whole demo data set: ~10 s
def test_seed_demo_loads_takamatsu_and_every_role_once(app, run):
    result = run("seed-demo", "--if-empty", "--tickets", "12")
    assert result.exit_code == 0, result.output
    assert "デモデータを登録しました（相談 12 件）。" in result.output
    names = set(db.session.scalars(sa.select(Department.name)))
    assert {"市民課", "政策課", "秘書課"} <= names
    # Categories carry their English names for the public English pages (never the catalog).
    english = dict(db.session.execute(sa.select(Category.code, Category.name_en)).all())
    assert english["procedures"] == "Administrative procedures"
    roles = set(db.session.scalars(sa.select(Staff.role)))
    assert roles == set(Role)
    before = _counts()
    assert before[2] == 12
    # The other packages' demo data: handoffs in three states, a published public FAQ.
    from faq.models import FaqEntry
    from handoff.models import Handoff

    states = sorted(s.value for s in db.session.scalars(sa.select(Handoff.state)))
    assert states == ["done", "on_the_way", "requested"]
    published = db.session.scalar(
        sa.select(sa.func.count(FaqEntry.id)).where(FaqEntry.status == "published")
    )
    assert published == 113

    again = run("seed-demo", "--if-empty", "--tickets", "12")
    assert again.exit_code == 0, again.output
    assert "デモデータは登録済みです。" in again.output
    assert _counts() == before
    statuses = set(db.session.scalars(sa.select(Ticket.status)))
    assert statuses <= set(Status)


def test_a_command_starts_without_the_collector_and_collects_again_once_the_app_is_built(
    database_url, tmp_path
):
    """consult.start: a long-running command (the worker) must not be left without it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    report = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('collector', gc.isenabled(), gc.get_freeze_count() > 0))\n"
        "sys.argv = ['madoguchi', 'routes']\n"
        "from consult.start import main\n"
        "main()\n"
    )
    env = {
        **os.environ,
        "MADOGUCHI_DATABASE_URL": database_url,
        "MADOGUCHI_SECRET_KEY": "cli-test-secret-key-long-enough-1234567890abcdef",
        "MADOGUCHI_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    done = subprocess.run(
        [sys.executable, "-c", report], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "/tickets" in done.stdout  # the app was built: its routes are listed
    assert done.stdout.strip().splitlines()[-1] == "collector True True"
