"""Merging citizens and tickets (issue 16): every timeline entry kept, old links still lead
to the survivor, audited, undone exactly by an administrator only; related tickets."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from consult.extensions import db
from consult.models import (
    AuditEvent,
    Channel,
    Citizen,
    CitizenPhone,
    MergeRecord,
    Ticket,
    TimelineEntry,
)
from consult.services import citizens, merge, tickets
from consult.services.actor import SYSTEM, Actor
from consult.services.errors import PermissionDenied
from tests.helpers import sign_in


@pytest.fixture
def people(app, make_staff):
    consultant = make_staff("consultant")
    actor = Actor(consultant, "127.0.0.1")
    kept = citizens.create_citizen(
        SYSTEM,
        citizens.CitizenInput(name="池田 和子", phone="090-2681-0001", birth_date="1948-04-13"),
    )
    duplicate = citizens.create_citizen(
        SYSTEM,
        citizens.CitizenInput(
            name="池田 和子", kana="いけだ かずこ", phone="090-2681-0001", email="kazuko@example.jp"
        ),
    )
    duplicate.phones.append(CitizenPhone(number="0878392111"))
    first = tickets.create_ticket(
        actor, channel=Channel.COUNTER, subject="年金", citizen=kept, first_note="一件目"
    )
    second = tickets.create_ticket(
        actor, channel=Channel.PHONE, subject="介護", citizen=duplicate, first_note="二件目"
    )
    third = tickets.create_ticket(
        actor,
        channel=Channel.EMAIL,
        subject="介護（メール）",
        citizen=duplicate,
        first_note="三件目",
    )
    db.session.commit()
    return {
        "kept": kept.id,
        "duplicate": duplicate.id,
        "tickets": (first.number, second.number, third.number),
        "consultant": consultant,
    }


def _entries() -> set[tuple[int, int, str]]:
    db.session.expire_all()
    return set(
        db.session.execute(
            sa.select(TimelineEntry.id, TimelineEntry.ticket_id, TimelineEntry.body)
        ).all()
    )


def _ticket(number: str) -> Ticket:
    return db.session.scalar(sa.select(Ticket).where(Ticket.number == number))


def test_supervisor_merges_citizens_in_two_steps_and_an_admin_undoes_it(app, people, make_staff):
    kept, duplicate = people["kept"], people["duplicate"]
    entries = _entries()
    supervisor = sign_in(app.test_client(), make_staff("supervisor"))
    # Step one: both side by side, nothing changed yet.
    page = supervisor.post(
        f"/citizens/{kept}/merge", data={"other_id": duplicate, "reason": "二重登録"}
    )
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "相談者の統合の確認" in html and "kazuko@example.jp" in html
    assert db.session.get(Citizen, duplicate).merged_into_id is None
    # Step two: merged.
    response = supervisor.post(
        f"/citizens/{kept}/merge",
        data={"other_id": duplicate, "reason": "二重登録", "confirmed": "1"},
    )
    assert response.status_code == 302
    db.session.expire_all()
    survivor = db.session.get(Citizen, kept)
    assert db.session.get(Citizen, duplicate).merged_into_id == kept
    assert {t.citizen_id for t in map(_ticket, people["tickets"])} == {kept}
    assert sorted(p.number for p in survivor.phones) == ["0878392111", "09026810001"]
    assert [e.address for e in survivor.emails] == ["kazuko@example.jp"]
    assert survivor.kana == "いけだ かずこ" and survivor.kana_fold == "いけだかずこ"
    assert _entries() == entries  # every entry, on its own ticket
    # The old citizen id leads to the survivor.
    old = supervisor.get(f"/citizens/{duplicate}")
    assert old.status_code == 302 and old.headers["Location"].endswith(f"/citizens/{kept}")
    landing = supervisor.get(old.headers["Location"]).get_data(as_text=True)
    assert f"相談者番号 {duplicate} は相談者番号 {kept} に統合されています。" in landing
    merged = db.session.scalar(
        sa.select(AuditEvent).where(
            AuditEvent.action == "merge", AuditEvent.object_type == "citizen"
        )
    )
    assert merged.object_id == str(duplicate) and f"into={kept}" in merged.detail
    record = db.session.scalar(sa.select(MergeRecord))
    # Only an administrator undoes.
    assert supervisor.post(f"/admin/merges/{record.id}/undo").status_code == 403
    admin = sign_in(app.test_client(), make_staff("admin"))
    assert "池田" not in admin.get("/admin/merges").get_data(as_text=True)  # ids only
    confirm = admin.get(f"/admin/merges/{record.id}/undo").get_data(as_text=True)
    assert "統合を取り消す" in confirm
    assert db.session.get(Citizen, duplicate).merged_into_id == kept  # a GET changes nothing
    assert admin.post(f"/admin/merges/{record.id}/undo").status_code == 302
    db.session.expire_all()
    back = db.session.get(Citizen, duplicate)
    survivor = db.session.get(Citizen, kept)
    assert back.merged_into_id is None
    assert [_ticket(n).citizen_id for n in people["tickets"]] == [kept, duplicate, duplicate]
    assert [p.number for p in survivor.phones] == ["09026810001"]
    assert sorted(p.number for p in back.phones) == ["0878392111", "09026810001"]
    assert survivor.emails == [] and survivor.kana is None and survivor.kana_fold is None
    assert _entries() == entries
    assert supervisor.get(f"/citizens/{duplicate}").status_code == 200
    assert db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "unmerge"))
    assert db.session.get(MergeRecord, record.id).undone_at is not None
    assert admin.post(f"/admin/merges/{record.id}/undo").status_code == 200  # already undone


def test_consultants_cannot_merge(app, people, make_staff):
    consultant = sign_in(app.test_client(), people["consultant"])
    data = {"other_id": people["duplicate"], "confirmed": "1"}
    assert consultant.post(f"/citizens/{people['kept']}/merge", data=data).status_code == 403
    number = people["tickets"][1]
    data = {"target": people["tickets"][2], "confirmed": "1"}
    assert consultant.post(f"/tickets/{number}/merge", data=data).status_code == 403
    with pytest.raises(PermissionDenied):
        merge.merge_citizens(
            Actor(people["consultant"]),
            db.session.get(Citizen, people["duplicate"]),
            db.session.get(Citizen, people["kept"]),
        )
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MergeRecord)) == 0


def test_a_ticket_merged_into_another_keeps_every_entry_and_its_number_redirects(
    app, people, make_staff
):
    _, by_phone, by_email = people["tickets"]
    entries = _entries()
    supervisor = sign_in(app.test_client(), make_staff("supervisor"))
    page = supervisor.post(f"/tickets/{by_email}/merge", data={"target": by_phone})
    assert page.status_code == 200 and "相談の統合の確認" in page.get_data(as_text=True)
    assert _ticket(by_email).merged_into_id is None
    response = supervisor.post(
        f"/tickets/{by_email}/merge",
        data={"target": by_phone, "reason": "電話とメールで同じ件", "confirmed": "1"},
    )
    assert response.status_code == 302 and response.headers["Location"].split("#")[0].endswith(
        by_phone
    )
    after = _entries()
    assert entries <= after and len(after) == len(entries) + 2  # one note on each
    old = supervisor.get(f"/tickets/{by_email}")
    assert old.status_code == 302 and old.headers["Location"].endswith(f"/tickets/{by_phone}")
    html = supervisor.get(f"/tickets/{by_phone}").get_data(as_text=True)
    assert "二件目" in html and "三件目" in html and f"統合された相談：{by_email}" in html
    assert not _ticket(by_email).is_open  # off the queue
    assert db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "merge", AuditEvent.object_id == by_email)
    )
    record = db.session.scalar(sa.select(MergeRecord).where(MergeRecord.kind == "ticket"))
    admin = sign_in(app.test_client(), make_staff("admin"))
    assert by_email in admin.get(f"/admin/merges/{record.id}/undo").get_data(as_text=True)
    assert admin.post(f"/admin/merges/{record.id}/undo").status_code == 302
    assert entries <= _entries()
    assert _ticket(by_email).merged_into_id is None and _ticket(by_email).is_open
    page = supervisor.get(f"/tickets/{by_email}")
    assert page.status_code == 200 and "三件目" in page.get_data(as_text=True)
    assert "三件目" not in supervisor.get(f"/tickets/{by_phone}").get_data(as_text=True)


def test_merging_into_itself_or_a_missing_ticket_is_refused_in_japanese(app, people, make_staff):
    number = people["tickets"][0]
    supervisor = sign_in(app.test_client(), make_staff("supervisor"))
    same = supervisor.post(f"/tickets/{number}/merge", data={"target": number})
    assert same.status_code == 422 and "同じ相談どうしは統合できません。" in same.get_data(
        as_text=True
    )
    missing = supervisor.post(f"/tickets/{number}/merge", data={"target": "2026-999999"})
    assert "相談番号 2026-999999 の相談が見つかりません。" in missing.get_data(as_text=True)
    same = supervisor.post(f"/citizens/{people['kept']}/merge", data={"other_id": people["kept"]})
    assert "同じ相談者どうしは統合できません。" in same.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MergeRecord)) == 0


def test_related_tickets_show_on_both_pages(app, people):
    first, second, _ = people["tickets"]
    consultant = sign_in(app.test_client(), people["consultant"])
    response = consultant.post(f"/tickets/{first}/related", data={"other": f" {second} "})
    assert response.status_code == 302
    assert (
        second
        in consultant.get(f"/tickets/{first}").get_data(as_text=True).split('id="related"')[1]
    )
    assert (
        first
        in consultant.get(f"/tickets/{second}").get_data(as_text=True).split('id="related"')[1]
    )
    again = consultant.post(f"/tickets/{second}/related", data={"other": first})
    assert again.status_code == 422
    assert f"相談 {first} とは既に関連付けられています。" in again.get_data(as_text=True)


def test_a_merged_tickets_handoffs_and_callbacks_go_to_the_survivor_and_back_on_undo(
    app, people, make_staff, make_department
):
    from datetime import timedelta

    from consult.models import Callback
    from consult.services import callbacks
    from consult.timeutil import utcnow
    from handoff import services as handoffs
    from handoff.models import Handoff, Response

    _, by_phone, by_email = people["tickets"]
    department = make_department(name="介護保険課")
    actor = Actor(people["consultant"], "127.0.0.1")
    [handoff] = handoffs.create(
        actor,
        _ticket(by_email),
        [handoffs.Request(department.id, "要介護認定の申請について", Response.VISIT)],
    )
    callback = callbacks.schedule(actor, _ticket(by_email), utcnow() + timedelta(hours=2))
    handoff_id, callback_id = handoff.id, callback.id
    db.session.commit()
    supervisor = sign_in(app.test_client(), make_staff("supervisor"))
    response = supervisor.post(
        f"/tickets/{by_email}/merge", data={"target": by_phone, "confirmed": "1"}
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Handoff, handoff_id).ticket_id == _ticket(by_phone).id
    assert db.session.get(Callback, callback_id).ticket_id == _ticket(by_phone).id
    page = supervisor.get(f"/tickets/{by_phone}").get_data(as_text=True)
    assert "要介護認定の申請について" in page and "折り返し済みにする" in page
    # The callback is done from the survivor's page.
    done = supervisor.post(f"/tickets/{by_phone}/callbacks/{callback_id}/done")
    assert done.status_code == 302
    db.session.expire_all()
    assert db.session.get(Callback, callback_id).done_at is not None
    # Undo: both go back to the ticket they were made on.
    record = db.session.scalar(sa.select(MergeRecord).where(MergeRecord.kind == "ticket"))
    admin = sign_in(app.test_client(), make_staff("admin"))
    assert admin.post(f"/admin/merges/{record.id}/undo").status_code == 302
    db.session.expire_all()
    assert db.session.get(Handoff, handoff_id).ticket_id == _ticket(by_email).id
    assert db.session.get(Callback, callback_id).ticket_id == _ticket(by_email).id
    moved_back = supervisor.get(f"/tickets/{by_email}").get_data(as_text=True)
    assert "要介護認定の申請について" in moved_back
    survivor = supervisor.get(f"/tickets/{by_phone}").get_data(as_text=True)
    assert "要介護認定の申請について" not in survivor
