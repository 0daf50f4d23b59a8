"""The index is derived data: kept in step across processes, rebuilt when missing or corrupt."""

from __future__ import annotations

import json
import re
import shutil

from click.testing import CliRunner
from whoosh import index as whoosh_index

from consult.extensions import db
from consult.services.actor import Actor
from faq import search, services
from faq.analysis import TITLE_SEPARATOR
from tests.consult.http import call
from tests.helpers import sign_in


def test_two_instances_answer_the_same(app_factory, make_staff, tmp_path):
    """Published through one server, found through another with its own index folder."""
    first = app_factory(DATA_DIR=str(tmp_path / "node-a"))
    second = app_factory(DATA_DIR=str(tmp_path / "node-b"))
    with first.app_context():
        author = Actor(make_staff("consultant"), "10.0.0.1")
        approver = Actor(make_staff("supervisor"), "10.0.0.1")
        entry = services.create_entry(
            author,
            question="犬の登録はどこでしますか",
            answer="保健所で登録します。",
            visibility="public",
        )
        services.submit(author, entry)
        db.session.commit()
        entry_id = entry.id
    with second.app_context():
        assert services.search("犬の登録", public=True) == []  # not yet published
        client = second.test_client()
        assert "保健所で登録します" not in client.get("/faq?q=犬の登録").get_data(as_text=True)
    with first.app_context():
        entry = db.session.get(type(entry), entry_id)
        services.approve(Actor(approver.staff and db.session.merge(approver.staff)), entry)
        db.session.commit()
    with second.app_context():
        html = second.test_client().get("/faq?q=犬の登録").get_data(as_text=True)
        assert "保健所で登録します" in re.sub(r"<[^>]+>", "", html)
        assert [h.entry.id for h in services.search("いぬ", public=True)] == [entry_id]
    with first.app_context():
        entry = db.session.get(type(entry), entry_id)
        services.archive(Actor(db.session.merge(approver.staff)), entry)
        db.session.commit()
    with second.app_context():
        assert services.search("犬の登録", public=True) == []


def test_missing_or_corrupt_index_is_rebuilt(app, publish_entry):
    entry = publish_entry("粗大ごみの申込み", "電話で申し込みます。")
    index = services.index()
    shutil.rmtree(index.path)
    index._index = None
    index._applied = -1
    assert [h.entry.id for h in services.search("粗大ごみ", public=True)] == [entry.id]
    for path in index.path.glob("*.seg"):
        path.write_bytes(b"garbage")
    for path in index.path.glob("_MAIN_*.toc"):
        path.write_bytes(b"garbage")
    index._index = None
    index._applied = -1
    assert [h.entry.id for h in services.search("粗大ごみ", public=True)] == [entry.id]


def test_index_of_an_older_format_is_rebuilt(app, publish_entry):
    """An index written by the code before readings (no reading field, no format file) is
    readable and up to date, yet lacks what kana queries need: it must be rebuilt, not used."""
    entry = publish_entry("住民票の写しはどこで取れますか", "市民課で取れます。")
    index = services.index()
    latest = index._latest_revision()
    shutil.rmtree(index.path)
    index.path.mkdir()
    old_schema = search.make_schema()
    old_schema.remove("r")
    writer = whoosh_index.create_in(str(index.path), old_schema).writer()
    value = f"{entry.question}\n{TITLE_SEPARATOR}{entry.answer}"
    writer.add_document(id=str(entry.id), public="1", m=value, b=value, question=entry.question)
    writer.commit()
    (index.path / search.REVISION_FILE).write_text(str(latest))
    assert "r" not in whoosh_index.open_dir(str(index.path)).schema.names()
    index._index = None
    index._applied = -1

    assert [h.entry.id for h in services.search("じゅうみんひょう", public=True)] == [entry.id]
    assert "r" in whoosh_index.open_dir(str(index.path)).schema.names()
    assert (index.path / search.FORMAT_FILE).read_text() == str(search.INDEX_FORMAT)
    # Once rebuilt, the index is used as it is: the next process does not rebuild it again.
    built = {p.name for p in index.path.iterdir()}
    index._index = None
    index._applied = -1
    assert [h.entry.id for h in services.search("住民票", public=True)] == [entry.id]
    assert {p.name for p in index.path.iterdir()} == built


def test_index_updates_after_the_request_commits(app, client, faq_people):
    author, approver = faq_people
    entry = services.create_entry(author, question="ハザードマップ", answer="市のサイトで。")
    services.submit(author, entry)
    db.session.commit()
    sign_in(client, approver.staff)
    call(app, client, "POST", f"/staff/faq/{entry.id}/approve")
    index = services.index()
    # Brought up to date by the request itself, before any search asked.
    assert index._applied == index._latest_revision()


def _cli(app, *args, input=None):
    runner = CliRunner()
    return runner.invoke(app.cli, ["faq", *args], input=input, catch_exceptions=False)


def test_cli_import_search_reindex_redact(app, make_category, tmp_path):
    make_category(name="届出・証明")
    csv_path = tmp_path / "faq.csv"
    csv_path.write_bytes(
        (
            "質問,回答,所管部署,カテゴリ\r\n"
            "住民票の写しはどこで取れますか,市民課で取れます。,市民課,届出・証明\r\n"
            ",回答だけ,市民課,届出・証明\r\n"
            "戸籍謄本は？,本籍地で取れます。,市民課,存在しない分類\r\n"
        ).encode("cp932")
    )
    result = _cli(app, "import", "--publish", str(csv_path))
    assert "1 件を取り込みました" in result.output
    assert "3行目：質問を入力してください" in result.output
    assert "4行目：分類「存在しない分類」が登録されていません" in result.output
    jsonl = tmp_path / "faq.jsonl"
    jsonl.write_text(
        json.dumps(
            {
                "question": "児童手当の申請",
                "answer": "子育て支援課へ。",
                "keywords": ["児童手当"],
                "visibility": "staff",
            },
            ensure_ascii=False,
        )
        + "\nnot json\n",
        encoding="utf-8",
    )
    result = _cli(app, "import", "--publish", str(jsonl))
    assert (
        "1 件を取り込みました" in result.output and "2行目：JSONとして読めません" in result.output
    )

    rows = json.loads(_cli(app, "search", "じゅうみんひょうの写し 住民票", "--json").output)
    assert rows[0]["question"] == "住民票の写しはどこで取れますか" and "score" in rows[0]
    assert json.loads(_cli(app, "search", "児童手当", "--json", "--public").output) == []
    assert json.loads(_cli(app, "search", "児童手当", "--json", "--limit", "1").output)[0]["id"]
    assert "公開中 2 件" in _cli(app, "reindex").output

    redacted = _cli(app, "redact", input="山田太郎さん 090-1234-5678")
    assert "090-1234-5678" not in redacted.output and "［電話番号］" in redacted.output
