"""The disclosure bundle (開示請求): everything about the person, nothing about anyone else.

Built on the multi-party corpus of tests/fixtures/disclosure/cases.json: a person and the ex-
husband asking for her address, two neighbours in a noise dispute who name each other, staff who
sign their notes with their full names. Each person's bundle must hold every one of their own
strings and none of anyone else's, in the JSON, in the PDF's text and on the staff page.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from consult.extensions import db
from consult.models import AuditEvent, DisclosureJob
from consult.services import disclosure, disclosure_jobs
from consult.services.actor import Actor
from consult.services.errors import PermissionDenied
from tests.consult.corpus import build
from tests.consult.http import call
from tests.helpers import sign_in


def _variants(text: str) -> set[str]:
    """A string as it may be written: with and without the space inside a name, digits only."""
    out = {text, text.replace(" ", ""), text.replace("\u3000", "")}
    if re.fullmatch(r"[\d\-]+", text):
        out.add(text.replace("-", ""))
    return out


def _assert_only(corpus, key: str, text: str) -> None:
    for own in corpus.own(key):
        assert any(v in text for v in _variants(own)), f"{key}: missing own {own!r}"
    for number in corpus.numbers_of(key):
        assert number in text, f"{key}: missing ticket {number}"
    for other in corpus.data["citizens"]:
        if other["key"] == key:
            continue
        for value in other["own"]:
            for variant in _variants(value):
                assert variant not in text, f"{key}'s bundle holds {other['key']}'s {variant!r}"
        for number in corpus.numbers_of(other["key"]):
            assert number not in text, f"{key}'s bundle holds ticket {number}"
    for member in corpus.data["staff"]:
        for variant in _variants(member["full_name"]):
            assert variant not in text, f"staff full name {variant!r} in {key}'s bundle"


@pytest.fixture
def corpus(app, make_staff):
    return build(make_staff)


def test_each_bundle_holds_everything_about_the_person_and_nothing_about_another(corpus):
    boss = Actor(corpus.staff["boss"], "127.0.0.1")
    for key in ("misaki", "tsuyoshi", "kenichi", "kazuko"):
        bundle = disclosure.produce(boss, corpus.citizens[key].id, "json")
        text = bundle.to_json()
        _assert_only(corpus, key, text)
        data = json.loads(text)
        assert data["person"]["name"] == corpus.person(key)["name"]
        kinds = {i["kind"] for s in data["sections"] for i in s["items"]}
        assert {"ticket", "entry"} <= kinds, key
    db.session.commit()


def test_misaki_bundle_has_each_kind_and_marks_for_review(corpus):
    boss = Actor(corpus.staff["boss"], "127.0.0.1")
    bundle = disclosure.produce(boss, corpus.citizens["misaki"].id, "json")
    items = bundle.items
    kinds = {i.kind for i in items}
    assert {"ticket", "entry", "attachment", "record", "summary"} <= kinds, kinds
    # The ex-husband named in her message: removed, and the item marked for the reviewer.
    message = next(i for i in items if i.kind == "entry" and "元夫" in i.text)
    assert "［氏名］" in message.text and "［電話番号］" in message.text
    assert disclosure.THIRD_PARTY in message.review
    # Internal notes and the department's record: marked, not removed.
    note = next(i for i in items if i.kind == "entry" and "閲覧制限" in i.text)
    assert disclosure.INTERNAL in note.review
    record = next(i for i in items if i.kind == "record")
    assert disclosure.OTHER_BODY in record.review and "支援措置の申出" in record.text
    # Staff by display name only.
    assert any(i.fields.get("author") == "たかはし / Takahashi" for i in items)
    attachment = next(i for i in items if i.kind == "attachment")
    assert attachment.text == "申出書.pdf"


def test_booking_of_the_person_is_in_their_bundle_only(corpus):
    boss = Actor(corpus.staff["boss"], "127.0.0.1")
    reference = corpus.bookings["kenichi-noise"]
    assert reference in disclosure.produce(boss, corpus.citizens["kenichi"].id, "json").to_json()
    assert reference not in disclosure.produce(boss, corpus.citizens["kazuko"].id, "json").to_json()


def test_pdf_is_a4_and_holds_the_same(corpus, tmp_path):
    boss = Actor(corpus.staff["boss"], "127.0.0.1")
    bundle = disclosure.produce(boss, corpus.citizens["misaki"].id, "pdf")
    pdf = disclosure.render_pdf(bundle)
    assert pdf.startswith(b"%PDF")
    path = tmp_path / "b.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    assert "595.276 x 841.89 pts (A4)" in info.stdout
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    flat = re.sub(r"\s+", "", text)
    assert "佐藤美咲" in flat and "090-3141-5926" in flat
    for number in corpus.numbers_of("misaki"):
        assert number in flat
    for forbidden in ("070-2718-2818", "佐藤剛", "高橋一郎", "伊藤真理子", "山本和子"):
        assert forbidden not in flat, forbidden
    assert "【審査】" in flat


def _build_waiting() -> None:
    """One round of the worker's task, as `madoguchi worker` runs it."""
    db.session.commit()
    disclosure_jobs.build_due(limit=5)
    db.session.commit()
    db.session.expire_all()


def test_only_supervisors_produce_and_every_production_is_audited(app, corpus):
    with pytest.raises(PermissionDenied):
        disclosure.produce(Actor(corpus.staff["desk1"]), corpus.citizens["misaki"].id, "json")
    citizen_id = corpus.citizens["misaki"].id
    client = sign_in(app, corpus.staff["boss"])
    page = call(app, client, "GET", f"/citizens/{citizen_id}/disclosure")
    assert page.status_code == 200
    assert "開示請求への対応" in page.get_data(as_text=True)
    for fmt in ("pdf", "json"):
        response = call(
            app, client, "POST", f"/citizens/{citizen_id}/disclosure", data={"fmt": fmt}
        )
        # Nothing is made in the request: the page says 作成中… until the worker has made it.
        assert response.status_code == 302
    html = call(app, client, "GET", f"/citizens/{citizen_id}/disclosure").get_data(as_text=True)
    assert html.count("作成中…") == 2 and "ダウンロード</a>" not in html
    assert not db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "disclose")
    ).all()
    _build_waiting()
    html = call(app, client, "GET", f"/citizens/{citizen_id}/disclosure").get_data(as_text=True)
    assert "作成中…" not in html and html.count("ダウンロード</a>") == 2
    jobs = db.session.scalars(sa.select(DisclosureJob).order_by(DisclosureJob.id)).all()
    for job, mimetype in zip(jobs, ("application/pdf", "application/json"), strict=True):
        url = f"/citizens/{citizen_id}/disclosure/{job.id}/download"
        assert url in html
        response = call(app, client, "GET", url)
        assert response.status_code == 200 and response.mimetype == mimetype
        disposition = response.headers["Content-Disposition"]
        assert disposition.startswith("attachment;")
        assert f"disclosure-{citizen_id}-{job.id}.{job.fmt}" in disposition
        assert response.headers["Cache-Control"] == "no-store"
        # Stored outside the web root, under a generated name.
        path = disclosure_jobs.path_of(job)
        assert path.is_relative_to(app.config["MADOGUCHI"]["DATA_DIR"])
        assert re.fullmatch(r"[0-9a-f]{32}\.(pdf|json)", path.name)
        assert not path.is_relative_to(app.static_folder)
    rows = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "disclose").order_by(AuditEvent.id)
    ).all()
    assert [r.detail.split()[0] for r in rows] == ["format=pdf", "format=json"]
    assert all(r.object_id == str(citizen_id) and "佐藤" not in r.detail for r in rows)
    downloads = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "disclose_download")
    ).all()
    assert len(downloads) == 2 and all(r.staff_id == corpus.staff["boss"].id for r in downloads)
    desk = sign_in(app, corpus.staff["desk1"])
    assert call(app, desk, "GET", f"/citizens/{citizen_id}/disclosure").status_code == 403
    assert (
        call(
            app, desk, "POST", f"/citizens/{citizen_id}/disclosure", data={"fmt": "pdf"}
        ).status_code
        == 403
    )
    download = f"/citizens/{citizen_id}/disclosure/{jobs[0].id}/download"
    assert call(app, desk, "GET", download).status_code == 403
    # Another citizen's address for the same job: not found.
    other = corpus.citizens["kenichi"].id
    assert (
        call(app, client, "GET", f"/citizens/{other}/disclosure/{jobs[0].id}/download").status_code
        == 404
    )


def test_a_failed_bundle_shows_its_reason_and_can_be_asked_again(app, corpus):
    from consult.models import DisclosureStatus

    citizen = corpus.citizens["misaki"]
    client = sign_in(app, corpus.staff["boss"])
    call(app, client, "POST", f"/citizens/{citizen.id}/disclosure", data={"fmt": "pdf"})
    # The one who asked lost the role before the worker ran: given up at once, with the reason.
    boss = db.session.get(type(corpus.staff["boss"]), corpus.staff["boss"].id)
    boss.role = "consultant"
    db.session.commit()
    _build_waiting()
    job = db.session.scalar(sa.select(DisclosureJob))
    assert job.status == DisclosureStatus.FAILED and "権限" in job.last_error
    assert job.stored_name is None
    boss = db.session.get(type(corpus.staff["boss"]), corpus.staff["boss"].id)
    boss.role = "supervisor"
    db.session.commit()
    html = call(app, client, "GET", f"/citizens/{citizen.id}/disclosure").get_data(as_text=True)
    assert "作成できませんでした" in html and "権限がなくなった" in html
    assert "もう一度作成する" in html
    response = call(
        app, client, "POST", f"/citizens/{citizen.id}/disclosure/{job.id}/retry", data={}
    )
    assert response.status_code == 302
    html = call(app, client, "GET", f"/citizens/{citizen.id}/disclosure").get_data(as_text=True)
    assert "作成中…" in html
    _build_waiting()
    html = call(app, client, "GET", f"/citizens/{citizen.id}/disclosure").get_data(as_text=True)
    assert "ダウンロード</a>" in html


def test_the_file_is_deleted_after_its_keeping_period(app, corpus):
    from datetime import timedelta

    from consult.models import DisclosureStatus
    from consult.timeutil import utcnow

    citizen = corpus.citizens["misaki"]
    client = sign_in(app, corpus.staff["boss"])
    call(app, client, "POST", f"/citizens/{citizen.id}/disclosure", data={"fmt": "json"})
    _build_waiting()
    job = db.session.scalar(sa.select(DisclosureJob))
    path = disclosure_jobs.path_of(job)
    assert path.exists() and job.status == DisclosureStatus.READY
    assert disclosure_jobs.expire_due(utcnow() + timedelta(days=6)) == 0
    assert disclosure_jobs.expire_due(utcnow() + timedelta(days=8)) == 1
    job = db.session.scalar(sa.select(DisclosureJob))
    assert job.status == DisclosureStatus.EXPIRED and not path.exists()
    url = f"/citizens/{citizen.id}/disclosure/{job.id}/download"
    assert call(app, client, "GET", url).status_code == 404


def test_a_bundle_waiting_too_long_says_so(app, corpus):
    from datetime import timedelta

    from consult.timeutil import utcnow

    citizen = corpus.citizens["misaki"]
    client = sign_in(app, corpus.staff["boss"])
    call(app, client, "POST", f"/citizens/{citizen.id}/disclosure", data={"fmt": "pdf"})
    html = call(app, client, "GET", f"/citizens/{citizen.id}/disclosure").get_data(as_text=True)
    assert "作成中…" in html and "ワーカー" not in html
    job = db.session.scalar(sa.select(DisclosureJob))
    job.created_at = utcnow() - timedelta(minutes=11)
    db.session.commit()
    html = call(app, client, "GET", f"/citizens/{citizen.id}/disclosure").get_data(as_text=True)
    assert "作成中…" in html and "10分以上たっても作成されていません" in html


def test_command_line_writes_the_bundle(app, corpus, tmp_path):
    citizen_id = corpus.citizens["misaki"].id
    db.session.commit()
    result = CliRunner().invoke(
        app.cli, ["citizen", "disclose", str(citizen_id), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    assert "開示資料" in result.output
    out = tmp_path / "out"
    data = json.loads((out / f"disclosure-{citizen_id}.json").read_text(encoding="utf-8"))
    _assert_only(corpus, "misaki", json.dumps(data, ensure_ascii=False))
    assert (out / f"disclosure-{citizen_id}.pdf").read_bytes().startswith(b"%PDF")
    copied = list((out / "attachments").iterdir())
    assert len(copied) == 1 and copied[0].read_bytes() == b"%PDF-1.4 misaki"
    missing = CliRunner().invoke(app.cli, ["citizen", "disclose", "999999", "--out", str(out)])
    assert missing.exit_code != 0 and "相談者が見つかりません" in missing.output


def test_merged_record_is_disclosed_through_its_survivor(app, corpus):
    from consult.services import citizens, merge
    from consult.services.actor import SYSTEM

    duplicate = citizens.create_citizen(
        SYSTEM, citizens.CitizenInput(name="佐藤 美咲", phone="090-3141-5926")
    )
    from consult.models import Channel
    from consult.services import tickets

    old = tickets.create_ticket(
        Actor(corpus.staff["desk1"]), channel=Channel.PHONE, subject="以前の相談", citizen=duplicate
    )
    db.session.commit()
    merge.merge_citizens(SYSTEM, duplicate, corpus.citizens["misaki"])
    db.session.commit()
    bundle = disclosure.produce(
        Actor(corpus.staff["boss"]), corpus.citizens["misaki"].id, "json"
    ).to_json()
    assert old.number in bundle
    assert "以前の相談" in bundle
