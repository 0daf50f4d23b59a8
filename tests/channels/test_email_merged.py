"""A reply to a ticket that was merged into another lands on the survivor (issue 16), found by
In-Reply-To/References or by the number in the subject, through `madoguchi mail ingest` as the
MTA delivers it; after an administrator undoes the merge, replies go to the old ticket again."""

from __future__ import annotations

import sqlalchemy as sa

from consult.extensions import db
from consult.models import Channel, EntryKind, MergeRecord, Ticket, TimelineEntry
from consult.services import tickets
from consult.services.actor import Actor
from tests.channels.test_email_channel import citizen_mail
from tests.helpers import sign_in


def _ingest(app, raw: bytes) -> str:
    result = app.test_cli_runner().invoke(args=["mail", "ingest"], input=raw)
    assert result.exit_code == 0, result.output
    return result.output.strip()


def _messages_on(number: str) -> list[str]:
    db.session.expire_all()
    ticket_id = db.session.scalar(sa.select(Ticket.id).where(Ticket.number == number))
    return list(
        db.session.scalars(
            sa.select(TimelineEntry.body)
            .where(
                TimelineEntry.ticket_id == ticket_id,
                TimelineEntry.kind == EntryKind.MESSAGE_IN,
            )
            .order_by(TimelineEntry.id)
        )
    )


def test_replies_to_a_merged_ticket_land_on_the_survivor_until_the_merge_is_undone(app, make_staff):
    by_mail = _ingest(app, citizen_mail("<first@docomo.ne.jp>", subject="児童手当の振込"))
    consultant = make_staff("consultant")
    by_phone = tickets.create_ticket(
        Actor(consultant), channel=Channel.PHONE, subject="児童手当（電話）", first_note="電話で"
    ).number
    db.session.commit()
    supervisor = sign_in(app.test_client(), make_staff("supervisor"))
    merged = supervisor.post(
        f"/tickets/{by_mail}/merge",
        data={"target": by_phone, "reason": "電話とメールで同じ件", "confirmed": "1"},
    )
    assert merged.status_code == 302

    threaded = citizen_mail(
        "<second@docomo.ne.jp>",
        subject="Re: 児童手当の振込",
        extra="In-Reply-To: <first@docomo.ne.jp>\r\nReferences: <first@docomo.ne.jp>\r\n",
        body="振込日を教えてください。",
    )
    assert _ingest(app, threaded) == by_phone  # the MTA is told the survivor's number
    numbered = citizen_mail(
        "<third@docomo.ne.jp>", subject=f"Re: [#{by_mail}]", body="口座を変えました。"
    )
    assert _ingest(app, numbered) == by_phone
    # A reply to the reply (its Message-ID now belongs to the survivor) stays there too.
    again = citizen_mail(
        "<fourth@docomo.ne.jp>",
        subject="Re: Re:",
        extra="In-Reply-To: <second@docomo.ne.jp>\r\n",
        body="よろしくお願いします。",
    )
    assert _ingest(app, again) == by_phone
    assert _messages_on(by_phone) == [
        "振込日を教えてください。",
        "口座を変えました。",
        "よろしくお願いします。",
    ]
    page = supervisor.get(f"/tickets/{by_phone}").get_data(as_text=True)
    assert "振込日を教えてください。" in page and "口座を変えました。" in page
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Ticket)) == 2

    record = db.session.scalar(sa.select(MergeRecord.id))
    admin = sign_in(app.test_client(), make_staff("admin"))
    assert admin.post(f"/admin/merges/{record}/undo").status_code == 302
    after_undo = citizen_mail(
        "<fifth@docomo.ne.jp>",
        subject="Re: 児童手当の振込",
        extra="In-Reply-To: <first@docomo.ne.jp>\r\n",
        body="取り消し後のお返事です。",
    )
    assert _ingest(app, after_undo) == by_mail
    assert _messages_on(by_mail)[-1] == "取り消し後のお返事です。"
    assert len(_messages_on(by_phone)) == 3  # what arrived while merged stays where it landed


def test_a_stranger_cannot_reach_the_survivor_by_typing_the_old_number(app, make_staff):
    by_mail = _ingest(app, citizen_mail("<first@docomo.ne.jp>", subject="相談"))
    by_phone = tickets.create_ticket(
        Actor(make_staff("consultant")), channel=Channel.PHONE, subject="電話"
    ).number
    db.session.commit()
    supervisor = sign_in(app.test_client(), make_staff("supervisor"))
    supervisor.post(f"/tickets/{by_mail}/merge", data={"target": by_phone, "confirmed": "1"})
    stranger = (
        "From: other@example.com\r\nTo: soudan@example.lg.jp\r\n"
        f"Subject: Re: [#{by_mail}]\r\nMessage-ID: <s1@example.com>\r\n"
        "Content-Type: text/plain; charset=UTF-8\r\n\r\n別人です。"
    ).encode()
    number = _ingest(app, stranger)
    assert number not in (by_mail, by_phone)  # a new ticket of its own
    assert "別人です。" not in _messages_on(by_phone)
