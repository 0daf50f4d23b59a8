"""Consumer and fraud alerts (注意喚起): from a case to every department, the public and LINE.

End to end through the pages, on both databases: a consultant turns a case into an alert (the
redactor runs on every field), a supervisor who is not the author approves it, every member of
staff sees it (today page, live event, the departments' daily mail through the outbox to a real
SMTP server), the public page shows it in Japanese and English, and a LINE notice is prepared.
The redaction corpus proves that no personal data reaches anything published.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from channels.line.models import LineNotice, NoticeStatus
from consult.extensions import db
from consult.live.models import LiveEvent
from consult.models import Channel, OutboxMessage
from consult.services import citizens, outbox, tickets
from consult.services.actor import Actor
from consult.timeutil import TOKYO
from faq.alerts import services
from faq.alerts.models import AlertStatus, ConsumerAlert
from tests.helpers import sign_in

CORPUS = Path(__file__).parent.parent / "fixtures" / "redaction" / "corpus.jsonl"
# The kinds the redactor must always find (tests/faq/test_redact.py MUST_FIND), and the case's
# own names (the corpus's 山田 太郎, 田中 一郎, 佐藤 花子: its citizen and its staff).
MUST_FIND = {"phone", "email", "my_number", "postal_code"}


def _fraud_case(make_staff, *, citizen_name="山田 太郎", phone="090-1234-5678"):
    consultant = make_staff("consultant", full_name="田中 一郎")
    actor = Actor(consultant, "127.0.0.1")
    citizen = citizens.create_citizen(actor, citizens.CitizenInput(name=citizen_name, phone=phone))
    ticket = tickets.create_ticket(
        actor,
        channel=Channel.PHONE,
        subject="還付金詐欺の電話",
        citizen=citizen,
        first_message=(
            f"{citizen_name}さん（{phone}）に市役所を名乗る電話があり、"
            "「医療費の還付金があります。ATMで手続きできます」と言われた。"
        ),
    )
    db.session.commit()
    return consultant, ticket


def _form(alert: ConsumerAlert, **changes) -> dict:
    data = {name: getattr(alert, name) or "" for name in ConsumerAlert.TEXT_FIELDS}
    data.update(changes)
    return data


def test_a_case_becomes_an_alert_that_every_department_and_the_public_see(
    app, client, make_staff, make_department
):
    consultant, ticket = _fraud_case(make_staff)
    number = ticket.number
    sign_in(client, consultant)
    page = client.get(f"/tickets/{number}").get_data(as_text=True)
    assert "注意喚起にする" in page
    response = client.post(f"/staff/alerts/from-ticket/{ticket.number}")
    assert response.status_code == 302
    alert_url = response.headers["Location"]
    page = client.get(alert_url).get_data(as_text=True)
    assert "還付金" in page
    # The citizen's name and phone never reached the draft; the reviewer sees what was removed.
    assert "山田" not in page and "090-1234-5678" not in page
    assert "保存時に取り除いた個人情報" in page and "電話番号" in page
    assert f">{ticket.number}</a>" in page  # the case stays linked, for staff

    alert = db.session.scalar(sa.select(ConsumerAlert))
    alert_id = alert.id
    edit = _form(
        alert,
        title="市役所職員を名乗る還付金詐欺",
        area="市内全域",
        phrases="医療費の還付金があります\nATMで手続きできます\n折り返しは090-9876-5432まで",
        advice="市役所がATMでの手続きをお願いすることはありません。電話を切ってください。",
        title_en="Refund fraud by callers claiming to be city staff",
        advice_en="The city never asks you to go to an ATM. Hang up.",
    )
    response = client.post(f"{alert_url}/edit", data=edit)
    assert response.status_code == 302
    db.session.remove()
    alert = db.session.get(ConsumerAlert, alert_id)
    assert "090-9876-5432" not in alert.phrases and "［電話番号］" in alert.phrases
    assert client.post(f"{alert_url}/submit").status_code == 302

    # The author cannot approve it: another supervisor must.
    page = client.post(f"{alert_url}/approve", follow_redirects=True).get_data(as_text=True)
    assert "この操作を行う権限がありません。" in page
    db.session.remove()
    assert db.session.get(ConsumerAlert, alert_id).status == AlertStatus.REVIEW
    assert client.get("/alerts").get_data(as_text=True).count("還付金詐欺") == 0

    supervisor = sign_in(app, make_staff("supervisor"))
    page = supervisor.get(alert_url).get_data(as_text=True)
    assert "承認して公開" in page
    page = supervisor.post(f"{alert_url}/approve", follow_redirects=True).get_data(as_text=True)
    assert "承認して公開しました。" in page
    db.session.remove()
    alert = db.session.get(ConsumerAlert, alert_id)
    assert alert.status == AlertStatus.PUBLISHED

    # Every department: an officer's home page (the inbox), the desk's 今日, the live channel.
    officer = sign_in(app, make_staff("officer"))
    home = officer.get("/handoffs").get_data(as_text=True)
    assert "消費生活・特殊詐欺の注意喚起" in home and "市役所職員を名乗る還付金詐欺" in home
    today = client.get("/today").get_data(as_text=True)
    assert "市役所職員を名乗る還付金詐欺" in today
    [event] = db.session.scalars(
        sa.select(LiveEvent).where(LiveEvent.kind == "consumer_alert.published")
    ).all()
    assert {"role:officer", "role:consultant", "role:support"} <= set(event.audience)
    assert event.payload == {"alert_id": alert.id, "title": "市役所職員を名乗る還付金詐欺"}

    # The public page, in Japanese and in English; the case's number is never shown.
    public = client.application.test_client()
    page = public.get("/alerts").get_data(as_text=True)
    assert "消費生活・特殊詐欺の注意喚起" in page and "市役所職員を名乗る還付金詐欺" in page
    page = public.get(f"/alerts/{alert.id}").get_data(as_text=True)
    assert "「医療費の還付金があります」" in page and "電話を切ってください" in page
    assert number not in page and "山田" not in page
    page = public.get(f"/alerts/{alert.id}?lang=en").get_data(as_text=True)
    assert "Refund fraud by callers claiming to be city staff" in page
    assert "What to do" in page and "The city never asks you to go to an ATM." in page
    assert public.get("/alerts?lang=en").get_data(as_text=True).count("Consumer and fraud") >= 1

    # LINE: a draft notice to the citizens who chose consumer alerts, sent by a supervisor.
    [notice] = db.session.scalars(sa.select(LineNotice)).all()
    assert notice.status == NoticeStatus.DRAFT and notice.interest == "consumer"
    assert notice.alert_id == alert.id and "市役所職員を名乗る還付金詐欺" in notice.text
    assert f"/alerts/{alert.id}" in notice.text


def test_the_english_page_shows_the_method_and_area_in_english_when_written(
    app, client, make_staff
):
    """The form's English 手口 and 地域 are redacted like every field and shown on the English
    page only; an alert without them shows the Japanese, marked 「(in Japanese only)」."""
    sign_in(client, make_staff("consultant"))
    page = client.get("/staff/alerts/new").get_data(as_text=True)
    assert "英語の手口（英語ページ用・任意）" in page and "英語の地域（英語ページ用・任意）" in page
    form = {
        "title": "偽の宅配業者のSMS",
        "method": "不在通知を装ったSMSのリンクから偽のサイトに誘導する",
        "area": "北部地区",
        "phrases": "",
        "advice": "リンクを開かないでください。",
        "title_en": "Fake delivery SMS",
        "method_en": "An SMS about a missed delivery links to a fake site."
        " Reported from 090-2345-6789.",
        "area_en": "Northern district (ask taro.yamada@example.com)",
        "advice_en": "",
    }
    response = client.post("/staff/alerts/new", data=form)
    assert response.status_code == 302
    alert_url = response.headers["Location"]
    page = client.get(alert_url).get_data(as_text=True)
    assert "英語の手口" in page and "An SMS about a missed delivery links to a fake site." in page
    assert "英語の地域" in page and "Northern district" in page
    # The redactor ran on the new fields: the reviewer sees what it took out of them.
    assert "090-2345-6789" not in page and "taro.yamada@example.com" not in page
    assert "取り除いた個人情報：英語の手口の［電話番号］、英語の地域の［メールアドレス］" in page
    assert client.post(f"{alert_url}/submit").status_code == 302
    plain = services.create(
        Actor(make_staff("consultant"), "127.0.0.1"),
        {"title": "点検商法", "method": "無料点検と言って屋根に上がる", "advice": "断る"},
    )
    services.submit(Actor(plain.author, "127.0.0.1"), plain)
    db.session.commit()
    supervisor = sign_in(app, make_staff("supervisor"))
    alert_id = int(alert_url.rstrip("/").rsplit("/", 1)[1])
    for published in (alert_id, plain.id):
        assert supervisor.post(f"/staff/alerts/{published}/approve").status_code == 302

    public = app.test_client()
    english = public.get(f"/alerts/{alert_id}?lang=en").get_data(as_text=True)
    assert "Fake delivery SMS" in english
    assert '<dd class="pre">An SMS about a missed delivery links to a fake site.' in english
    assert "Reported from ［電話番号］." in english and "090-2345-6789" not in english
    assert "<dd>Northern district (ask ［メールアドレス］)</dd>" in english
    assert "偽のサイトに誘導する" not in english and "北部地区" not in english
    # No English advice was written: the Japanese, marked.
    assert '<dd class="pre" lang="ja">リンクを開かないでください。</dd>' in english
    assert english.count("(in Japanese only)") == 1
    japanese = public.get(f"/alerts/{alert_id}?lang=ja").get_data(as_text=True)
    assert "北部地区" in japanese and "偽のサイトに誘導する" in japanese
    assert "Northern district" not in japanese and "An SMS about" not in japanese
    assert "日本語のみ" not in japanese
    # Nothing in English: the method in Japanese, marked; no area is the whole city.
    english = public.get(f"/alerts/{plain.id}?lang=en").get_data(as_text=True)
    assert '<dd class="pre" lang="ja">無料点検と言って屋根に上がる</dd>' in english
    assert "<dd>The whole city</dd>" in english
    assert english.count("(in Japanese only)") == 2


def test_a_draft_without_advice_is_neither_sent_for_review_nor_published(app, client, make_staff):
    """The draft made from a case has no 対処法 yet; it cannot reach review or the public."""
    consultant, ticket = _fraud_case(make_staff)
    sign_in(client, consultant)
    alert_url = client.post(f"/staff/alerts/from-ticket/{ticket.number}").headers["Location"]
    page = client.get(alert_url).get_data(as_text=True)
    assert "（未記入：承認を依頼する前に記入してください）" in page
    page = client.post(f"{alert_url}/submit", follow_redirects=True).get_data(as_text=True)
    assert "対処法が未記入です。" in page
    db.session.remove()
    alert = db.session.scalar(sa.select(ConsumerAlert))
    assert alert.status == AlertStatus.DRAFT and alert.advice == ""
    # Saving the form without it is refused too, with the typed title kept.
    response = client.post(f"{alert_url}/edit", data=_form(alert, title="点検商法にご注意"))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "対処法" in page and "点検商法にご注意" in page
    # Even a draft moved to review some other way is not published without advice.
    alert.status = AlertStatus.REVIEW
    alert_id = alert.id
    db.session.commit()
    supervisor = sign_in(app, make_staff("supervisor"))
    page = supervisor.post(f"{alert_url}/approve", follow_redirects=True).get_data(as_text=True)
    assert "対処法が未記入です。" in page
    db.session.remove()
    assert db.session.get(ConsumerAlert, alert_id).status == AlertStatus.REVIEW
    assert "点検商法" not in client.application.test_client().get("/alerts").get_data(as_text=True)


def test_only_the_desk_and_the_consumer_affairs_centre_write_alerts(
    app, make_staff, make_department
):
    other = sign_in(app, make_staff("officer"))
    assert other.get("/staff/alerts").status_code == 200  # every department reads them
    assert other.get("/staff/alerts/new").status_code == 403
    shohi = make_department(code="shohi", name="消費生活センター")
    writer = sign_in(app, make_staff("officer", department=shohi))
    response = writer.post(
        "/staff/alerts/new",
        data={
            "title": "架空請求のはがき",
            "method": "「訴訟最終告知」というはがき",
            "advice": "連絡しない",
        },
    )
    assert response.status_code == 302
    # A required field left empty: a Japanese message, nothing saved.
    response = writer.post("/staff/alerts/new", data={"title": "件名だけ"})
    assert response.status_code == 422
    assert "手口を入力してください" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ConsumerAlert)) == 1


def _publish(author: Actor, approver: Actor, **values) -> ConsumerAlert:
    alert = services.create(author, values)
    services.submit(author, alert)
    services.approve(approver, alert)
    db.session.commit()
    return alert


def test_the_daily_digest_mails_each_department_once(app_factory, smtp_server, make_staff):
    app = app_factory(**smtp_server.settings)
    with app.app_context():
        from consult.services import staff as staff_service

        for n, email in enumerate(
            ("shimin@city.example.lg.jp", "fukushi@city.example.lg.jp", None)
        ):
            staff_service.create_department(None, code=f"d{n}", name=f"課{n}", email=email)
        db.session.commit()
        author = Actor(make_staff("consultant"), "127.0.0.1")
        approver = Actor(make_staff("supervisor"), "127.0.0.1")
        _publish(author, approver, title="点検商法", method="屋根の無料点検", advice="契約しない")
        _publish(author, approver, title="偽の宅配通知", method="SMSのリンク", advice="開かない")
        early = datetime(2026, 12, 3, 7, 0, tzinfo=TOKYO)  # before the digest hour (8:00)
        assert services.send_digest(early) == 0
        morning = datetime(2026, 12, 3, 8, 30, tzinfo=TOKYO)
        assert services.send_digest(morning) == 2
        db.session.commit()
        assert services.send_digest(morning) == 0  # nothing new: no second mail
        # Published after today's digest: it waits for tomorrow's, one digest a day.
        _publish(author, approver, title="架空請求メール", method="未納料金", advice="無視する")
        assert services.send_digest(datetime(2026, 12, 3, 15, 0, tzinfo=TOKYO)) == 0
        db.session.commit()
        outbox.run_once()
        db.session.remove()
        assert len(smtp_server.messages) == 2
        assert services.send_digest(datetime(2026, 12, 4, 8, 0, tzinfo=TOKYO)) == 2
        db.session.commit()
        outbox.run_once()
        db.session.remove()
    assert sorted(to for to, _m in smtp_server.messages[:2]) == [
        ["fukushi@city.example.lg.jp"],
        ["shimin@city.example.lg.jp"],
    ]
    message = smtp_server.messages[0][1]
    assert "12月3日・2件" in str(message["Subject"])
    body = message.get_body(("plain",)).get_content()
    assert "点検商法" in body and "偽の宅配通知" in body and "/alerts/" in body
    assert "架空請求メール" not in body
    tomorrow = smtp_server.messages[2][1]
    assert "12月4日・1件" in str(tomorrow["Subject"])
    body = tomorrow.get_body(("plain",)).get_content()
    assert "架空請求メール" in body and "点検商法" not in body


def _corpus_rows() -> list[dict]:
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    return [r for r in rows if any(e["kind"] in MUST_FIND or e["known"] for e in r["expected"])]


def test_no_alert_ever_carries_personal_data_from_the_redaction_corpus(app, client, make_staff):
    """Every sentence of the corpus with data the redactor must always find, written into every
    field of alerts of a case whose citizen and staff are the corpus's names, then approved:
    none of it is on the public pages or in the LINE notice."""
    consultant, ticket = _fraud_case(make_staff, citizen_name="山田 太郎")
    ticket.assignee = make_staff("consultant", full_name="佐藤 花子")
    db.session.commit()
    author = Actor(consultant, "127.0.0.1")
    approver = Actor(make_staff("supervisor"), "127.0.0.1")
    rows = _corpus_rows()
    assert len(rows) >= 100
    originals = {
        e["original"] for r in rows for e in r["expected"] if e["kind"] in MUST_FIND or e["known"]
    }
    published = []
    for start in range(0, len(rows), 25):
        chunk = [r["text"] for r in rows[start : start + 25]]
        text = "\n".join(chunk)
        alert = services.create(
            author,
            {
                "title": chunk[0][:120],
                "method": text,
                "area": chunk[-1][:200],
                "phrases": text,
                "advice": text,
                "title_en": chunk[1][:200],
                "method_en": text,
                "area_en": chunk[-2][:200],
                "advice_en": text,
            },
            ticket=ticket,
        )
        services.submit(author, alert)
        services.approve(approver, alert)
        published.append(alert.id)
    db.session.commit()
    texts = [client.get("/alerts").get_data(as_text=True)]
    for alert_id in published:
        texts.append(client.get(f"/alerts/{alert_id}").get_data(as_text=True))
        texts.append(client.get(f"/alerts/{alert_id}?lang=en").get_data(as_text=True))
    texts += [n.text for n in db.session.scalars(sa.select(LineNotice))]
    assert len(texts) == 1 + 3 * len(published)
    found = sorted(o for o in originals for t in texts if o in t)
    assert found == [], found


def test_approval_is_refused_while_personal_data_remains(app, make_staff):
    """A field changed behind the service's back (an import, an old row) is checked again."""
    author = Actor(make_staff("consultant"), "127.0.0.1")
    approver = Actor(make_staff("supervisor"), "127.0.0.1")
    alert = services.create(author, {"title": "t", "method": "m", "advice": "a"})
    services.submit(author, alert)
    alert.advice = "詳しくは 087-861-1234 の担当まで"
    db.session.flush()
    from faq.services import PublishBlocked

    with pytest.raises(PublishBlocked) as refused:
        services.approve(approver, alert)
    assert "個人情報の可能性がある箇所が1件残っているため公開できません（［電話番号］）" in str(
        refused.value.message
    )
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0
