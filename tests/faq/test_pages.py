"""The FAQ's pages: citizens' /faq in Japanese and English, votes, staff pages, from a case."""

from __future__ import annotations

import re

import sqlalchemy as sa

from consult.extensions import db
from consult.models import AuditEvent, Channel
from consult.services import tickets
from consult.services.actor import Actor
from faq import services
from faq.models import FaqEntry, FaqStatus, FaqVote
from tests.helpers import csrf_token_from, sign_in


def test_public_faq_in_japanese_and_english(app, client, publish_entry, make_category):
    category = make_category(name="届出・証明")
    entry = publish_entry(
        "住民票の写しはどこで取得できますか？",
        "## 取得できる場所\n\n- 市民課の窓口\n- コンビニ（マイナンバーカードが必要）",
        category_id=category.id,
    )
    publish_entry("職員向け：住民票の職権記載の手順", "内部の手順です。", visibility="staff")
    page = client.get("/faq")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "よくある質問" in html and "届出・証明（1）" in html
    assert "住民票の写しはどこで取得できますか？" in html
    assert "職権記載" not in html

    found = client.get("/faq", query_string={"q": "住民票 取りたい"}).get_data(as_text=True)
    assert "住民票の写しはどこで取得できますか？" in re.sub(r"<[^>]+>", "", found)
    assert "<mark>住民票</mark>" in found
    assert "職権記載" not in found

    english = client.get("/faq?lang=en").get_data(as_text=True)
    assert "Frequently asked questions" in english and 'lang="en"' in english

    page = client.get(f"/faq/{entry.id}?lang=ja")
    html = page.get_data(as_text=True)
    assert "<h2>取得できる場所</h2>" in html and "<li>市民課の窓口</li>" in html
    assert "この回答は役に立ちましたか？" in html
    assert db.session.get(FaqEntry, entry.id).view_count == 1


def _result_titles(html: str) -> list[str]:
    found = re.search(r'<ol class="faq-results">(.*?)</ol>', html, re.S)
    items = re.findall(r"<li>(.*?)</li>", found.group(1), re.S) if found else []
    return [re.sub(r"<[^>]+>", "", item.split("</a>")[0]).strip() for item in items]


def test_public_search_typed_in_kana_finds_entries_in_kanji(app, client, publish_entry):
    """Citizens on phones often send hiragana (or katakana) without converting it to kanji."""
    juminhyo = publish_entry("住民票の写しはどこで取れますか", "市民課の窓口で取れます。")
    publish_entry("住民税はいつ払いますか", "6月から年4回です。")
    kokuho = publish_entry("国民健康保険の加入手続きは？", "国保年金課で手続きします。")
    publish_entry("国民年金の保険料が払えないときは？", "免除の申請ができます。")
    jidoteate = publish_entry("児童手当の申請方法", "子育て支援課へ申請してください。")
    publish_entry("児童扶養手当の現況届", "8月に提出してください。")
    publish_entry("職員向け：住民票の職権記載の手順", "内部の手順です。", visibility="staff")
    for query, entry in (
        ("じゅうみんひょう", juminhyo),
        ("こくみんけんこうほけん", kokuho),
        ("じどうてあて", jidoteate),
        ("ジドウテアテ", jidoteate),
        ("ｼﾞｭｳﾐﾝﾋｮｳ", juminhyo),
    ):
        page = client.get("/faq", query_string={"q": query})
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        titles = _result_titles(html)
        assert titles and titles[0] == entry.question, (query, titles)
        assert "職権記載" not in html
    html = client.get("/faq", query_string={"q": "じゅうみんひょう"}).get_data(as_text=True)
    assert _result_titles(html)[:2] == ["住民票の写しはどこで取れますか", "住民税はいつ払いますか"]


def test_unpublished_and_staff_entries_are_not_found_publicly(
    app, client, publish_entry, faq_people
):
    author, _ = faq_people
    staff_only = publish_entry("内部手順", "職員のみ", visibility="staff")
    draft = services.create_entry(author, question="下書き", answer="まだ", visibility="public")
    db.session.commit()
    for entry_id in (staff_only.id, draft.id, 99999):
        response = client.get(f"/faq/{entry_id}")
        assert response.status_code == 404
        assert "内部手順" not in response.get_data(as_text=True)
    assert services.search("内部手順", public=True) == []
    assert [h.entry.id for h in services.search("内部手順", actor=author, public=False)] == [
        staff_only.id
    ]


def test_helpful_counts_once_per_browser_with_csrf(app, publish_entry):
    app.config["WTF_CSRF_ENABLED"] = True
    if True:
        entry = publish_entry("粗大ごみの出し方", "申し込んでください。")
        client = app.test_client()
        assert client.post(f"/faq/{entry.id}/helpful").status_code == 400
        token = csrf_token_from(client.get(f"/faq/{entry.id}").get_data(as_text=True))
        first = client.post(f"/faq/{entry.id}/helpful", data={"csrf_token": token})
        assert first.status_code == 302
        again = client.post(
            f"/faq/{entry.id}/helpful", data={"csrf_token": token}, follow_redirects=True
        )
        assert "既に「役に立った」をいただいています" in again.get_data(as_text=True)
        db.session.expire_all()
        assert db.session.get(FaqEntry, entry.id).helpful_count == 1
        assert db.session.scalar(sa.select(sa.func.count(FaqVote.id))) == 1
        other = app.test_client()
        token = csrf_token_from(other.get(f"/faq/{entry.id}").get_data(as_text=True))
        other.post(f"/faq/{entry.id}/helpful", data={"csrf_token": token})
        db.session.expire_all()
        assert db.session.get(FaqEntry, entry.id).helpful_count == 2


def test_script_in_an_entry_is_text_everywhere(app, client, publish_entry, faq_people):
    entry = publish_entry("<script>alert(1)</script>の質問", "<script>alert(2)</script> 回答")
    for url in (f"/faq/{entry.id}", "/faq", "/faq?q=alert"):
        html = client.get(url).get_data(as_text=True)
        assert "<script>alert" not in html
    sign_in(client, faq_people[0].staff)
    html = client.get(f"/staff/faq/{entry.id}").get_data(as_text=True)
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)" in html


def _closed_case(make_staff, make_category):
    staff = make_staff("consultant", full_name="窓口 花子")
    actor = Actor(staff, "127.0.0.1")
    from consult.services import citizens

    citizen = citizens.create_citizen(
        actor, citizens.CitizenInput(name="山田 太郎", kana="ヤマダ タロウ", phone="090-1234-5678")
    )
    ticket = tickets.create_ticket(
        actor,
        channel=Channel.COUNTER,
        subject="粗大ごみの出し方を知りたい",
        category_id=make_category(name="ごみ").id,
        citizen=citizen,
        first_message="山田太郎です。090-1234-5678 に連絡ください。タンスを捨てたい。",
    )
    tickets.close(
        actor,
        ticket,
        "山田様に臨時・粗大ごみの申込方法を案内した。電話 090-1234-5678、"
        "メール yamada@example.com に申込書を送付。",
    )
    db.session.commit()
    return staff, ticket


def test_draft_from_closed_case_is_redacted_and_reviewed(app, client, make_staff, make_category):
    staff, ticket = _closed_case(make_staff, make_category)
    sign_in(client, staff)
    page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "FAQにする" in page
    response = client.post(f"/staff/faq/from-ticket/{ticket.number}")
    assert response.status_code == 302
    entry = db.session.scalars(sa.select(FaqEntry)).one()
    text = entry.question + entry.answer
    for secret in ("山田", "090-1234-5678", "yamada@example.com", "タロウ"):
        assert secret not in text
    assert "［電話番号］" in text and "［メールアドレス］" in text and "［氏名］" in text
    assert entry.status == FaqStatus.DRAFT and entry.sources[0].ticket_id == ticket.id
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "下書き作成時に伏せた箇所" in html and "電話番号" in html
    assert ticket.number in html  # staff see the source case
    views = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.object_id == ticket.number)
    ).all()
    assert any(e.detail == "FAQ下書きの作成" for e in views)


def test_open_case_cannot_become_faq(app, client, make_ticket, make_staff):
    ticket = make_ticket()
    sign_in(client, make_staff("consultant"))
    response = client.post(f"/staff/faq/from-ticket/{ticket.number}", follow_redirects=True)
    assert "完了した相談だけをFAQにできます" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(FaqEntry.id))) == 0


def test_approval_page_shows_remaining_personal_data(app, client, faq_people):
    author, approver = faq_people
    entry = services.create_entry(
        author, question="連絡先", answer="担当は 0120-444-444 ではなく 090-9876-5432 です。"
    )
    services.submit(author, entry)
    db.session.commit()
    sign_in(client, approver.staff)
    html = client.get(f"/staff/faq/{entry.id}").get_data(as_text=True)
    assert "個人情報の可能性がある箇所" in html and "090-9876-5432" in html
    response = client.post(f"/staff/faq/{entry.id}/approve", follow_redirects=True)
    assert "公開できません" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(FaqEntry, entry.id).status == FaqStatus.REVIEW


def test_staff_edit_and_approve_through_pages(app, client, faq_people, make_staff):
    author, approver = faq_people
    sign_in(client, author.staff)
    response = client.post(
        "/staff/faq/new",
        data={
            "question": "ペットボトルのキャップは？",
            "answer": "プラスチック容器包装に出してください。",
            "keywords": "キャップ、ペットボトル",
            "category_id": "",
            "department_id": "",
            "visibility": "public",
        },
    )
    assert response.status_code == 302
    entry_id = int(re.search(r"/staff/faq/(\d+)", response.headers["Location"]).group(1))
    bad = client.post("/staff/faq/new", data={"question": "", "answer": "", "visibility": "x"})
    assert bad.status_code == 422 and "質問を入力してください" in bad.get_data(as_text=True)
    client.post(f"/staff/faq/{entry_id}/submit")
    client.post("/logout")
    sign_in(client, approver.staff)
    client.post(f"/staff/faq/{entry_id}/approve")
    db.session.expire_all()
    assert db.session.get(FaqEntry, entry_id).status == FaqStatus.PUBLISHED
    found = client.get("/staff/faq", query_string={"q": "ﾍﾟｯﾄﾎﾞﾄﾙ"}).get_data(as_text=True)
    assert "ペットボトルのキャップは？" in re.sub(r"<[^>]+>", "", found)
    suggest = client.get("/staff/faq/suggest", query_string={"q": "ペットボトルの捨て方"}).json
    assert suggest["entries"][0]["id"] == entry_id


def test_synonyms_edited_by_admin_apply_at_query_time(app, client, publish_entry, make_staff):
    entry = publish_entry("国民健康保険に加入するには", "国保年金課で手続きしてください。")
    assert services.search("後期高齢", public=True) == []
    sign_in(client, make_staff("admin"))
    bad = client.post("/staff/faq/synonyms", data={"text": "ひとつだけ"})
    assert bad.status_code == 422 and "2語以上" in bad.get_data(as_text=True)
    client.post("/staff/faq/synonyms", data={"text": "国保＝国民健康保険\n後期高齢＝国民健康保険"})
    assert [h.entry.id for h in services.search("後期高齢", public=True)] == [entry.id]


def test_citizen_pages_need_no_login_and_staff_pages_do(app, client, make_staff):
    assert client.get("/faq").status_code == 200
    for url in ("/staff/faq", "/staff/faq/new", "/staff/faq/suggest?q=abc"):
        assert client.get(url).status_code == 302
    sign_in(client, make_staff("support"))
    assert client.get("/staff/faq").status_code == 200
    assert client.get("/staff/faq/new").status_code == 403
    assert client.get("/staff/faq/synonyms").status_code == 403


def test_suggestions_show_closed_cases_to_the_desk_only(
    app, client, make_staff, make_category, publish_entry
):
    staff, ticket = _closed_case(make_staff, make_category)
    publish_entry("粗大ごみの申込み方法", "電話かインターネットで申し込みます。")
    sign_in(client, staff)
    data = client.get("/staff/faq/suggest", query_string={"q": "粗大ごみを出したい"}).json
    assert [t["number"] for t in data["tickets"]] == [ticket.number]
    assert data["entries"][0]["question"] == "粗大ごみの申込み方法"
    client.post("/logout")
    sign_in(client, make_staff("officer"))
    data = client.get("/staff/faq/suggest", query_string={"q": "粗大ごみを出したい"}).json
    assert data["tickets"] == [] and data["entries"]
