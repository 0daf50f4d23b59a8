"""Entries: draft → review → published → archived, approval rules, revisions, safe Markdown."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from consult.extensions import db
from consult.models import AppendOnlyError, AuditEvent
from consult.services.actor import Actor
from consult.services.errors import InvalidTransition, PermissionDenied, ValidationFailed
from faq import services
from faq.models import FaqRevision, FaqStatus


def test_workflow_keeps_every_revision(app, faq_people):
    author, approver = faq_people
    entry = services.create_entry(
        author, question="住民票の写しはどこで取れますか", answer="市民課の窓口で取れます。"
    )
    assert entry.status == FaqStatus.DRAFT
    services.update_entry(
        author,
        entry,
        question="住民票の写しはどこで取れますか",
        answer="市民課の窓口（本庁1階）とコンビニで取れます。",
        category_id=None,
        department_id=None,
        keywords="住民票、写し",
        visibility="public",
    )
    services.submit(author, entry)
    services.approve(approver, entry)
    services.archive(approver, entry)
    db.session.commit()
    actions = [r.action for r in reversed(services.revisions(entry))]
    assert actions == ["create", "update", "submit", "publish", "archive"]
    first = services.revisions(entry)[-1]
    assert first.answer == "市民課の窓口で取れます。"
    assert entry.keyword_list == ["住民票", "写し"]
    assert entry.approved_by_id == approver.staff.id
    # Revisions are history: the application cannot change them.
    first.answer = "書き換え"
    with pytest.raises(AppendOnlyError):
        db.session.flush()
    db.session.rollback()


def test_author_cannot_approve_and_consultant_cannot_approve(app, faq_people, make_staff):
    author, approver = faq_people
    entry = services.create_entry(approver, question="質問です", answer="回答です。")
    services.submit(approver, entry)
    with pytest.raises(PermissionDenied, match="自分が作成したFAQは承認できません"):
        services.approve(approver, entry)
    with pytest.raises(PermissionDenied):
        services.approve(author, entry)
    other = Actor(make_staff("supervisor"), "127.0.0.1")
    services.approve(other, entry)
    assert entry.status == FaqStatus.PUBLISHED


def test_transitions_are_checked(app, faq_people):
    author, approver = faq_people
    entry = services.create_entry(author, question="質問です", answer="回答です。")
    with pytest.raises(InvalidTransition):
        services.approve(approver, entry)
    with pytest.raises(ValidationFailed, match="質問を入力してください"):
        services.create_entry(author, question="  ", answer="回答")
    with pytest.raises(ValidationFailed, match="公開範囲"):
        services.create_entry(author, question="q", answer="a", visibility="everyone")


def test_publishing_refused_while_personal_data_remains(app, faq_people):
    author, approver = faq_people
    entry = services.create_entry(
        author,
        question="折り返しの電話について",
        answer="090-1234-5678 に折り返してください。メールは taro@example.com まで。",
        visibility="public",
    )
    services.submit(author, entry)
    with pytest.raises(services.PublishBlocked) as caught:
        services.approve(approver, entry)
    kinds = {span.kind for span in caught.value.spans}
    assert {"phone", "email"} <= kinds
    assert "公開できません" in caught.value.message
    db.session.rollback()
    assert db.session.get(type(entry), entry.id) is None or entry.status != FaqStatus.PUBLISHED


def test_editing_published_entry_needs_approval_again(app, publish_entry, faq_people):
    author, _approver = faq_people
    entry = publish_entry("ごみの出し方", "地区ごとの収集日に出してください。")
    services.update_entry(
        author,
        entry,
        question=entry.question,
        answer="収集日の朝8時までに出してください。",
        category_id=None,
        department_id=None,
        keywords="",
        visibility="public",
    )
    assert entry.status == FaqStatus.REVIEW
    db.session.commit()
    assert services.search("ごみの出し方", public=True) == []


def test_markdown_is_rendered_safely():
    html = str(
        services.render_markdown(
            "## 手続き\n\n- 窓口\n- [市のサイト](https://example.lg.jp/)\n\n"
            "<script>alert(1)</script>\n\n[罠](javascript:alert(1)) "
            "<img src=x onerror=alert(1)> ![画像](https://evil.example/x.png)"
        )
    )
    assert "<h2>手続き</h2>" in html
    assert '<a href="https://example.lg.jp/">市のサイト</a>' in html
    assert "<script" not in html and "&lt;script&gt;" in html
    assert "javascript:" not in html.replace("[罠](javascript:alert(1))", "")
    assert 'href="javascript' not in html
    assert "<img" not in html


def test_changes_are_audited_and_counted(app, faq_people):
    author, _ = faq_people
    entry = services.create_entry(author, question="質問", answer="回答")
    db.session.commit()
    events = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.object_type == "faq"))
    assert [e.object_id for e in events] == [str(entry.id)]
    assert db.session.scalar(sa.select(sa.func.count(FaqRevision.id))) == 1
