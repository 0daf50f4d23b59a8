"""The access matrix: every route in app.url_map × every role → the expected answer.

The table is keyed by URL rule and method; a route (or a method of it) that is not in the table
fails the test, so a new route cannot arrive without its access rules.
"""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
import sqlalchemy as sa

from consult.extensions import db
from consult.models import Ticket, TimelineEntry
from consult.services import citizens, outbox
from consult.services.actor import SYSTEM
from consult.settings import override as override_settings
from handoff import services as handoff_services
from handoff.models import Response
from tests.consult.http import call
from tests.helpers import sign_in

ROLES = ("anonymous", "consultant", "supervisor", "officer", "support", "admin", "branch")

LOGIN = "302→login"  # anonymous on a staff page: sent to the login form
OK = "permitted"  # a permitted action: 200/302/422, never 403/404/500, never to the login form
REDIRECT = "302"  # a redirect that is not to the login form
SIGNED_OUT = "302→login, signed out"  # logout: to the login form, with no next=

DESK_GET = {
    "anonymous": LOGIN,
    "consultant": 200,
    "supervisor": 200,
    "officer": 403,
    "support": 403,
    "admin": 403,
}
DESK_POST = {**DESK_GET, "consultant": OK, "supervisor": OK}
ADMIN_GET = {
    "anonymous": LOGIN,
    "consultant": 403,
    "supervisor": 403,
    "officer": 403,
    "support": 403,
    "admin": 200,
}
ADMIN_POST = {**ADMIN_GET, "admin": OK}
PUBLIC_GET = dict.fromkeys(ROLES, 200)
# Incident records: supervisors, the support room and administrators only.
INCIDENT_GET = {**ADMIN_GET, "supervisor": 200, "support": 200}
# Reports: supervisors and administrators.
REPORT_GET = {**ADMIN_GET, "supervisor": 200}
# The live alert feed: everyone who works at or for the counter.
LIVE_GET = {**DESK_GET, "support": 200}
RESPONDER_POST = {**ADMIN_GET, "supervisor": OK, "support": OK, "admin": 403}
SUPERVISOR_POST = {**ADMIN_GET, "supervisor": OK, "admin": 403}
# Saved email replies: the desk writes them, and administrators manage them.
TEMPLATE_GET = {**DESK_GET, "admin": 200}
TEMPLATE_POST = {**DESK_POST, "admin": OK}


def faq_entry(o) -> int:
    """A published public FAQ entry, made once per test the first time a row needs it."""
    if "faq" not in o:
        from faq import services as faq_services

        entry = faq_services.create_entry(
            SYSTEM, question="住民票の写しの取り方", answer="市民課で。", visibility="public"
        )
        faq_services.submit(SYSTEM, entry)
        faq_services.approve(SYSTEM, entry)
        db.session.commit()
        o["faq"] = entry.id
    return o["faq"]


def disposal_list(o) -> int:
    """A past month's 廃棄予定一覧 (this month's is made by POST /records/lists), made once."""
    if "disposal_list" not in o:
        from datetime import date

        from consult.models import DisposalList

        found = DisposalList(month=date(2020, 1, 1))
        db.session.add(found)
        db.session.commit()
        o["disposal_list"] = found.id
    return o["disposal_list"]


def disclosure_job(o) -> int:
    """A disclosure bundle of the test's citizen, made (the file stored), once."""
    if "disclosure_job" not in o:
        from datetime import timedelta

        from consult.models import DisclosureJob, DisclosureStatus
        from consult.services import disclosure_jobs
        from consult.timeutil import utcnow

        job = DisclosureJob(
            citizen_id=o["citizen"],
            fmt="json",
            status=DisclosureStatus.READY,
            stored_name="ab" * 16,
            size=2,
            attempts=1,
            downloads=0,
            expires_at=utcnow() + timedelta(days=7),
        )
        db.session.add(job)
        db.session.commit()
        path = disclosure_jobs.path_of(job)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"{}")
        o["disclosure_job"] = job.id
    return o["disclosure_job"]


def legal_hold(o) -> int:
    """A legal hold on the test's ticket."""
    if "legal_hold" not in o:
        from consult.services import retention

        ticket = db.session.scalar(sa.select(Ticket).where(Ticket.number == o["number"]))
        hold = retention.set_hold(SYSTEM, ticket=ticket, reason="訴訟")
        db.session.commit()
        o["legal_hold"] = hold.id
    return o["legal_hold"]


FAQ_READ = {"anonymous": LOGIN, **dict.fromkeys(ROLES[1:], 200)}
FAQ_EDIT_GET = {**FAQ_READ, "support": 403}
FAQ_EDIT_POST = {
    **FAQ_EDIT_GET,
    **dict.fromkeys(("consultant", "supervisor", "officer", "admin"), OK),
}
FAQ_SYNONYMS_GET = {**ADMIN_GET, "supervisor": 200}
FAQ_SYNONYMS_POST = {**FAQ_SYNONYMS_GET, "supervisor": OK, "admin": OK}


def t(path):
    """A URL builder on the test's ticket number."""
    return lambda o: f"/tickets/{o['number']}{path}"


# (rule, method) → (URL builder over the test's objects, expected answer per role, form data).
# Order matters only for logout, which ends the role's session: it comes last.
TABLE: dict[tuple[str, str], tuple] = {
    ("/static/<path:filename>", "GET"): (lambda o: "/static/css/madoguchi.css", PUBLIC_GET),
    ("/display", "GET"): (lambda o: "/display", PUBLIC_GET),
    ("/display/board.json", "GET"): (lambda o: "/display/board.json", PUBLIC_GET),
    # The lobby's stream: public, calls only (checked in tests/live/test_display.py).
    ("/display/live", "GET"): (lambda o: "/display/live?poll=1&after=0", PUBLIC_GET),
    ("/login", "GET"): (
        lambda o: "/login",
        {"anonymous": 200, **dict.fromkeys(ROLES[1:], REDIRECT)},
    ),
    ("/login", "POST"): (
        lambda o: "/login",
        {"anonymous": 200, **dict.fromkeys(ROLES[1:], REDIRECT)},
        {"login": "nobody", "password": "wrong-password"},
    ),
    # The code after the password: without a password step it only leads back to the login.
    ("/login/code", "GET"): (
        lambda o: "/login/code",
        {"anonymous": LOGIN, **dict.fromkeys(ROLES[1:], REDIRECT)},
    ),
    ("/login/code", "POST"): (
        lambda o: "/login/code",
        {"anonymous": LOGIN, **dict.fromkeys(ROLES[1:], REDIRECT)},
        {"code": "123456"},
    ),
    # Everyone may set up two-factor sign-in for themselves (a wrong code: 200 with a message).
    ("/account/two-factor", "GET"): (
        lambda o: "/account/two-factor",
        {"anonymous": LOGIN, **dict.fromkeys(ROLES[1:], 200)},
    ),
    ("/account/two-factor", "POST"): (
        lambda o: "/account/two-factor",
        {"anonymous": LOGIN, **dict.fromkeys(ROLES[1:], OK)},
        {"code": "123456"},
    ),
    ("/", "GET"): (
        lambda o: "/",
        {
            "anonymous": LOGIN,
            "consultant": REDIRECT,
            "supervisor": REDIRECT,
            "officer": REDIRECT,  # to the department's handoff inbox
            "support": 200,
            "admin": REDIRECT,
        },
    ),
    ("/tickets", "GET"): (lambda o: "/tickets", DESK_GET),
    ("/tickets/search", "POST"): (lambda o: "/tickets/search", DESK_POST, {"q": "やまだ"}),
    ("/tickets/<number>", "GET"): (t(""), DESK_GET),
    ("/tickets/<number>/print", "GET"): (t("/print"), DESK_GET),
    ("/tickets/<number>/live", "GET"): (t("/live"), DESK_GET),
    # Attachments obey the ticket's rule; a file that does not exist answers 404 to the desk.
    ("/tickets/<number>/attachments", "POST"): (t("/attachments"), DESK_POST),
    ("/tickets/<number>/attachments/<int:attachment_id>", "GET"): (
        t("/attachments/999999"),
        {**DESK_GET, "consultant": 404, "supervisor": 404},
    ),
    ("/tickets/<number>/handover", "POST"): (t("/handover"), DESK_POST, {"handover_note": "メモ"}),
    ("/today", "GET"): (lambda o: "/today", DESK_GET),
    # Every member of staff changes their own password.
    ("/account/password", "GET"): (
        lambda o: "/account/password",
        {"anonymous": LOGIN, **dict.fromkeys(ROLES[1:], 200)},
    ),
    ("/account/password", "POST"): (
        lambda o: "/account/password",
        {"anonymous": LOGIN, **dict.fromkeys(ROLES[1:], OK)},
        {"current_password": "wrong-password-1", "new_password": "x", "new_password_again": "x"},
    ),
    ("/tickets/<number>/note", "POST"): (t("/note"), DESK_POST, {"body": "メモ"}),
    ("/tickets/<number>/status", "POST"): (t("/status"), DESK_POST),
    ("/tickets/<number>/close", "POST"): (t("/close"), DESK_POST),
    ("/tickets/<number>/reopen", "POST"): (t("/reopen"), DESK_POST),
    ("/tickets/<number>/assign", "POST"): (t("/assign"), DESK_POST),
    ("/tickets/<number>/details", "POST"): (t("/details"), DESK_POST),
    ("/tickets/<number>/citizen", "POST"): (t("/citizen"), DESK_POST),
    ("/tickets/<number>/citizen/link", "POST"): (t("/citizen/link"), DESK_POST),
    ("/tickets/<number>/citizen/unlink", "POST"): (t("/citizen/unlink"), DESK_POST),
    ("/tickets/<number>/session/end", "POST"): (t("/session/end"), DESK_POST),
    ("/tickets/<number>/visit/<action>", "POST"): (t("/visit/call"), DESK_POST),
    ("/tickets/<number>/callbacks/<int:callback_id>/done", "POST"): (
        lambda o: f"/tickets/{o['number']}/callbacks/{o['callback']}/done",
        DESK_POST,
    ),
    ("/citizens/match", "POST"): (lambda o: "/citizens/match", DESK_POST, {"name": "やまだ"}),
    ("/citizens/<int:citizen_id>", "GET"): (lambda o: f"/citizens/{o['citizen']}", DESK_GET),
    # 支援措置 / 利用停止 and the disclosure bundle: supervisors only (a reason is required: an
    # empty one answers 422 with the message, which the table counts as permitted).
    ("/citizens/<int:citizen_id>/<any(protected, use_stopped):flag>", "POST"): (
        lambda o: f"/citizens/{o['citizen']}/protected",
        SUPERVISOR_POST,
    ),
    ("/citizens/<int:citizen_id>/disclosure", "GET"): (
        lambda o: f"/citizens/{o['citizen']}/disclosure",
        {**ADMIN_GET, "supervisor": 200, "admin": 403},
    ),
    ("/citizens/<int:citizen_id>/disclosure", "POST"): (
        lambda o: f"/citizens/{o['citizen']}/disclosure",
        SUPERVISOR_POST,
        {"fmt": "json"},
    ),
    ("/citizens/<int:citizen_id>/disclosure/<int:job_id>/retry", "POST"): (
        lambda o: f"/citizens/{o['citizen']}/disclosure/{disclosure_job(o)}/retry",
        SUPERVISOR_POST,
    ),
    ("/citizens/<int:citizen_id>/disclosure/<int:job_id>/download", "GET"): (
        lambda o: f"/citizens/{o['citizen']}/disclosure/{disclosure_job(o)}/download",
        {**ADMIN_GET, "supervisor": 200, "admin": 403},
    ),
    # Merging: supervisors (administrators have no desk pages); undo: administrators only.
    ("/citizens/<int:citizen_id>/merge", "POST"): (
        lambda o: f"/citizens/{o['citizen']}/merge",
        SUPERVISOR_POST,
    ),
    ("/tickets/<number>/merge", "POST"): (t("/merge"), SUPERVISOR_POST),
    ("/tickets/<number>/related", "POST"): (t("/related"), DESK_POST, {"other": "2026-999999"}),
    ("/tickets/<number>/related/<int:link_id>/remove", "POST"): (
        t("/related/999999/remove"),
        DESK_POST,
    ),
    ("/admin/merges", "GET"): (lambda o: "/admin/merges", ADMIN_GET),
    ("/admin/merges/<int:record_id>/undo", "GET"): (
        lambda o: f"/admin/merges/{o['merge']}/undo",
        ADMIN_GET,
    ),
    ("/admin/merges/<int:record_id>/undo", "POST"): (
        lambda o: f"/admin/merges/{o['merge']}/undo",
        ADMIN_POST,
    ),
    ("/counter/new", "GET"): (lambda o: "/counter/new", DESK_GET),
    ("/counter/new", "POST"): (lambda o: "/counter/new", DESK_POST),
    ("/phone/new", "GET"): (lambda o: "/phone/new", DESK_GET),
    ("/phone/new", "POST"): (lambda o: "/phone/new", DESK_POST),
    # LINE: the webhook is public and signed; without LINE settings it answers 503 to all.
    ("/channels/line/webhook", "POST"): (
        lambda o: "/channels/line/webhook",
        dict.fromkeys(ROLES, 503),
    ),
    ("/channels/line/tickets/<number>/reply", "POST"): (
        lambda o: f"/channels/line/tickets/{o['number']}/reply",
        DESK_POST,
        {"body": "返信"},
    ),
    ("/channels/line/tickets/<number>/link-code", "POST"): (
        lambda o: f"/channels/line/tickets/{o['number']}/link-code",
        DESK_POST,
    ),
    ("/channels/line/tickets/<number>/link-contact", "POST"): (
        lambda o: f"/channels/line/tickets/{o['number']}/link-contact",
        DESK_POST,
    ),
    ("/channels/line/media/<int:media_id>", "GET"): (
        lambda o: "/channels/line/media/999999",
        {**DESK_GET, "consultant": 404, "supervisor": 404},
    ),
    ("/admin/", "GET"): (lambda o: "/admin/", ADMIN_GET),
    ("/admin/staff", "GET"): (lambda o: "/admin/staff", ADMIN_GET),
    ("/admin/staff/new", "GET"): (lambda o: "/admin/staff/new", ADMIN_GET),
    ("/admin/staff/new", "POST"): (lambda o: "/admin/staff/new", ADMIN_POST),
    ("/admin/staff/<int:staff_id>", "GET"): (lambda o: f"/admin/staff/{o['victim']}", ADMIN_GET),
    ("/admin/staff/<int:staff_id>", "POST"): (
        lambda o: f"/admin/staff/{o['victim']}",
        ADMIN_POST,
    ),
    ("/admin/staff/<int:staff_id>/active", "POST"): (
        lambda o: f"/admin/staff/{o['victim']}/active",
        ADMIN_POST,
        {"active": "1"},
    ),
    ("/admin/staff/<int:staff_id>/two-factor/reset", "POST"): (
        lambda o: f"/admin/staff/{o['victim']}/two-factor/reset",
        ADMIN_POST,
    ),
    ("/admin/staff/<int:staff_id>/password", "POST"): (
        lambda o: f"/admin/staff/{o['victim']}/password",
        ADMIN_POST,
    ),
    ("/admin/departments", "GET"): (lambda o: "/admin/departments", ADMIN_GET),
    ("/admin/departments/new", "GET"): (lambda o: "/admin/departments/new", ADMIN_GET),
    ("/admin/departments/new", "POST"): (lambda o: "/admin/departments/new", ADMIN_POST),
    ("/admin/departments/<int:department_id>", "GET"): (
        lambda o: f"/admin/departments/{o['department']}",
        ADMIN_GET,
    ),
    ("/admin/departments/<int:department_id>", "POST"): (
        lambda o: f"/admin/departments/{o['department']}",
        ADMIN_POST,
    ),
    ("/admin/categories", "GET"): (lambda o: "/admin/categories", ADMIN_GET),
    ("/admin/categories/new", "GET"): (lambda o: "/admin/categories/new", ADMIN_GET),
    ("/admin/categories/new", "POST"): (lambda o: "/admin/categories/new", ADMIN_POST),
    ("/admin/categories/<int:category_id>", "GET"): (
        lambda o: f"/admin/categories/{o['category']}",
        ADMIN_GET,
    ),
    ("/admin/categories/<int:category_id>", "POST"): (
        lambda o: f"/admin/categories/{o['category']}",
        ADMIN_POST,
    ),
    ("/admin/audit", "GET"): (lambda o: "/admin/audit", ADMIN_GET),
    # Retention and disposal (consult/views/records.py): no personal data on these pages.
    ("/records/", "GET"): (lambda o: "/records/", REPORT_GET),
    ("/records/retention", "GET"): (lambda o: "/records/retention", ADMIN_GET),
    ("/records/retention/categories/<int:category_id>", "POST"): (
        lambda o: f"/records/retention/categories/{o['category']}",
        ADMIN_POST,
    ),
    ("/records/retention/audit", "POST"): (lambda o: "/records/retention/audit", ADMIN_POST),
    ("/records/retention/unlinked", "POST"): (
        lambda o: "/records/retention/unlinked",
        ADMIN_POST,
        {"years": "1"},
    ),
    ("/records/lists", "POST"): (lambda o: "/records/lists", SUPERVISOR_POST),
    ("/records/lists/<int:list_id>", "GET"): (
        lambda o: f"/records/lists/{disposal_list(o)}",
        REPORT_GET,
    ),
    ("/records/lists/<int:list_id>/approve", "POST"): (
        lambda o: f"/records/lists/{disposal_list(o)}/approve",
        SUPERVISOR_POST,
    ),
    ("/records/lists/<int:list_id>/hold-back", "POST"): (
        lambda o: f"/records/lists/{disposal_list(o)}/hold-back",
        SUPERVISOR_POST,
        {"number": "2026-000001"},
    ),
    ("/records/lists/<int:list_id>/hold-back-kind", "POST"): (
        lambda o: f"/records/lists/{disposal_list(o)}/hold-back-kind",
        SUPERVISOR_POST,
        {"kind": "booking"},
    ),
    ("/records/holds", "GET"): (lambda o: "/records/holds", REPORT_GET),
    ("/records/holds", "POST"): (
        lambda o: "/records/holds",
        SUPERVISOR_POST,
        {"ticket_number": "2026-000001", "reason": "訴訟"},
    ),
    ("/records/holds/<int:hold_id>/lift", "POST"): (
        lambda o: f"/records/holds/{legal_hold(o)}/lift",
        SUPERVISOR_POST,
        {"reason": "判決確定"},
    ),
    ("/records/register", "GET"): (lambda o: "/records/register", REPORT_GET),
    ("/admin/outbox", "GET"): (lambda o: "/admin/outbox", ADMIN_GET),
    # The centre's calendar (consult/views/calendar.py).
    ("/admin/calendar/exceptions", "GET"): (lambda o: "/admin/calendar/exceptions", ADMIN_GET),
    ("/admin/calendar/exceptions", "POST"): (lambda o: "/admin/calendar/exceptions", ADMIN_POST),
    ("/admin/calendar/exceptions/<int:exception_id>/delete", "POST"): (
        lambda o: "/admin/calendar/exceptions/999999/delete",
        {**ADMIN_GET, "admin": 404},
    ),
    ("/admin/calendar/rota", "GET"): (lambda o: "/admin/calendar/rota", ADMIN_GET),
    ("/admin/calendar/rota", "POST"): (lambda o: "/admin/calendar/rota", ADMIN_POST),
    ("/admin/calendar/rota.ics", "GET"): (
        lambda o: "/admin/calendar/rota.ics",
        {**DESK_GET, "admin": 200},
    ),
    ("/admin/queue", "GET"): (lambda o: "/admin/queue", ADMIN_GET),
    # 無害化: the converted form for the desk (the mail's "%PDF" is not yet converted: no page,
    # no text, and no original before an administrator's release).
    ("/files/<int:file_id>", "GET"): (lambda o: f"/files/{o['safe_file']}", DESK_GET),
    ("/files/<int:file_id>/pages/<int:page>", "GET"): (
        lambda o: f"/files/{o['safe_file']}/pages/1",
        {**DESK_GET, "consultant": 404, "supervisor": 404},
    ),
    ("/files/<int:file_id>/text", "GET"): (
        lambda o: f"/files/{o['safe_file']}/text",
        {**DESK_GET, "consultant": 404, "supervisor": 404},
    ),
    ("/files/<int:file_id>/original", "GET"): (
        lambda o: f"/files/{o['safe_file']}/original",
        {**DESK_GET, "consultant": 404, "supervisor": 404},
    ),
    ("/admin/quarantine", "GET"): (lambda o: "/admin/quarantine", ADMIN_GET),
    ("/admin/quarantine/<int:file_id>", "GET"): (
        lambda o: f"/admin/quarantine/{o['safe_file']}",
        ADMIN_GET,
    ),
    ("/admin/quarantine/<int:file_id>", "POST"): (
        lambda o: f"/admin/quarantine/{o['safe_file']}",
        ADMIN_POST,
        {"reason": ""},
    ),
    ("/admin/queue/<key>/retry", "POST"): (
        lambda o: f"/admin/queue/outbox:{o['outbox']}/retry",
        ADMIN_POST,
    ),
    ("/admin/outbox/<int:message_id>/retry", "POST"): (
        lambda o: f"/admin/outbox/{o['outbox']}/retry",
        ADMIN_POST,
    ),
    # Handoffs. The table's officer belongs to another department than the handoff's: 404.
    ("/tickets/<number>/handoffs", "POST"): (t("/handoffs"), DESK_POST),
    ("/tickets/<number>/handoffs.json", "GET"): (t("/handoffs.json"), DESK_GET),
    ("/handoffs/live.json", "GET"): (lambda o: "/handoffs/live.json?tickets=1", DESK_GET),
    ("/handoffs", "GET"): (lambda o: "/handoffs", {**DESK_GET, "officer": 200}),
    ("/handoffs/overview", "GET"): (
        lambda o: "/handoffs/overview",
        {**ADMIN_GET, "supervisor": 200},
    ),
    ("/handoffs/<int:handoff_id>", "GET"): (
        lambda o: f"/handoffs/{o['handoff']}",
        {**DESK_GET, "officer": 404},
    ),
    **{
        (f"/handoffs/<int:handoff_id>/{step}", "POST"): (
            lambda o, step=step: f"/handoffs/{o['handoff']}/{step}",
            {**DESK_GET, "consultant": 403, "supervisor": 403, "officer": 404},
        )
        for step in ("accept", "on-the-way", "arrive", "finish", "decline")
    },
    **{
        (f"/handoffs/<int:handoff_id>/{step}", "POST"): (
            lambda o, step=step: f"/handoffs/{o['handoff']}/{step}",
            DESK_POST,
        )
        for step in ("info", "cancel", "link/reissue", "link/revoke")
    },
    # Joint sessions: the table's handoff is a visit (no session to set, answer or download).
    ("/handoffs/<int:handoff_id>/session", "POST"): (
        lambda o: f"/handoffs/{o['handoff']}/session",
        DESK_POST,
    ),
    ("/handoffs/<int:handoff_id>/session/cancel", "POST"): (
        lambda o: f"/handoffs/{o['handoff']}/session/cancel",
        DESK_POST,
    ),
    ("/handoffs/<int:handoff_id>/session.ics", "GET"): (
        lambda o: f"/handoffs/{o['handoff']}/session.ics",
        {**DESK_GET, "consultant": 404, "supervisor": 404, "officer": 404},
    ),
    ("/handoffs/<int:handoff_id>/session/answer", "POST"): (
        lambda o: f"/handoffs/{o['handoff']}/session/answer",
        {**DESK_GET, "consultant": 403, "supervisor": 403, "officer": 404},
    ),
    ("/x/handoff/<token>/session.ics", "GET"): (
        lambda o: "/x/handoff/not-a-token/session.ics",
        dict.fromkeys(ROLES, 404),
    ),
    ("/x/handoff/<token>", "GET"): (lambda o: "/x/handoff/not-a-token", dict.fromkeys(ROLES, 404)),
    ("/x/handoff/<token>", "POST"): (
        lambda o: "/x/handoff/not-a-token",
        dict.fromkeys(ROLES, 404),
    ),
    ("/alerts", "POST"): (lambda o: "/alerts", DESK_POST, {"place": "room1"}),
    ("/alerts/live.json", "GET"): (lambda o: "/alerts/live.json?since=0", LIVE_GET),
    ("/alerts/phone", "GET"): (lambda o: "/alerts/phone", DESK_GET),
    # A device's press: no session counts, only its bearer token (none here).
    ("/alerts/device", "POST"): (lambda o: "/alerts/device", dict.fromkeys(ROLES, 401)),
    ("/admin/devices", "GET"): (lambda o: "/admin/devices", ADMIN_GET),
    ("/admin/devices", "POST"): (
        lambda o: "/admin/devices",
        ADMIN_POST,
        {"name": "ボタン", "staff_id": "", "place": "room1"},
    ),
    ("/admin/devices/<int:device_id>/revoke", "POST"): (
        lambda o: "/admin/devices/999/revoke",
        ADMIN_POST,
    ),
    # The live channel answers everyone: a signed-out page learns that it ended (ended=true)
    # and gets no events; what a signed-in role receives is checked in tests/live.
    ("/live/stream", "GET"): (lambda o: "/live/stream?poll=1&after=0", PUBLIC_GET),
    ("/alerts/<int:alert_id>/<any(coming, arrived):kind>", "POST"): (
        lambda o: f"/alerts/{o['alert']}/coming",
        RESPONDER_POST,
    ),
    ("/alerts/<int:alert_id>/close", "POST"): (
        lambda o: f"/alerts/{o['alert']}/close",
        {**DESK_POST, "support": OK},
    ),
    ("/incidents/new", "GET"): (lambda o: "/incidents/new", {**DESK_GET, "support": 200}),
    ("/incidents/new", "POST"): (
        lambda o: "/incidents/new",
        {**DESK_POST, "support": OK},
        {"description": "大声で威圧された", "categories": "abuse"},
    ),
    ("/incidents", "GET"): (lambda o: "/incidents", INCIDENT_GET),
    ("/incidents/<int:incident_id>", "GET"): (
        lambda o: f"/incidents/{o['incident']}",
        INCIDENT_GET,
    ),
    ("/tickets/<number>/takeover", "POST"): (t("/takeover"), SUPERVISOR_POST),
    ("/admin/safety", "GET"): (lambda o: "/admin/safety", ADMIN_GET),
    ("/admin/safety", "POST"): (lambda o: "/admin/safety", ADMIN_POST),
    ("/reports", "GET"): (lambda o: "/reports", REPORT_GET),
    ("/reports/quarterly", "GET"): (lambda o: "/reports/quarterly?fy=2026&q=1", REPORT_GET),
    ("/reports/export/<name>.csv", "GET"): (
        lambda o: "/reports/export/tickets.csv?fy=2026",
        REPORT_GET,
    ),
    ("/email/tickets/<number>/reply", "POST"): (
        lambda o: f"/email/tickets/{o['number']}/reply",
        DESK_POST,
        {"body": "ご回答です。"},
    ),
    ("/email/tickets/<number>/compose", "GET"): (
        lambda o: f"/email/tickets/{o['number']}/compose",
        DESK_GET,
    ),
    ("/email/tickets/<number>/citizen", "POST"): (
        lambda o: f"/email/tickets/{o['number']}/citizen",
        DESK_POST,
    ),
    # Never the file: to its converted form (無害化).
    ("/email/attachments/<int:attachment_id>", "GET"): (
        lambda o: f"/email/attachments/{o['email_attachment']}",
        {**DESK_GET, "consultant": REDIRECT, "supervisor": REDIRECT},
    ),
    ("/email/templates", "GET"): (lambda o: "/email/templates", TEMPLATE_GET),
    ("/email/templates/new", "GET"): (lambda o: "/email/templates/new", TEMPLATE_GET),
    ("/email/templates/new", "POST"): (lambda o: "/email/templates/new", TEMPLATE_POST),
    ("/email/templates/<int:template_id>", "GET"): (
        lambda o: f"/email/templates/{o['email_template']}",
        TEMPLATE_GET,
    ),
    ("/email/templates/<int:template_id>", "POST"): (
        lambda o: f"/email/templates/{o['email_template']}",
        TEMPLATE_POST,
    ),
    ("/email/inbound", "GET"): (lambda o: "/email/inbound", ADMIN_GET),
    ("/email/inbound/<int:inbound_id>/retry", "POST"): (
        lambda o: f"/email/inbound/{o['email_inbound']}/retry",
        ADMIN_POST,
    ),
    # The FAQ (faq/views.py).
    ("/faq", "GET"): (lambda o: "/faq?q=住民票", PUBLIC_GET),
    ("/faq/<int:entry_id>", "GET"): (lambda o: f"/faq/{faq_entry(o)}", PUBLIC_GET),
    ("/faq/<int:entry_id>/helpful", "POST"): (
        lambda o: f"/faq/{faq_entry(o)}/helpful",
        dict.fromkeys(ROLES, REDIRECT),
    ),
    ("/faq-static/<path:filename>", "GET"): (lambda o: "/faq-static/css/faq.css", PUBLIC_GET),
    ("/staff/faq", "GET"): (lambda o: "/staff/faq?q=住民票", FAQ_READ),
    ("/staff/faq/suggest", "GET"): (lambda o: "/staff/faq/suggest?q=住民票", FAQ_READ),
    ("/staff/faq/new", "GET"): (lambda o: "/staff/faq/new", FAQ_EDIT_GET),
    ("/staff/faq/new", "POST"): (lambda o: "/staff/faq/new", FAQ_EDIT_POST),
    ("/staff/faq/<int:entry_id>", "GET"): (lambda o: f"/staff/faq/{faq_entry(o)}", FAQ_READ),
    ("/staff/faq/<int:entry_id>/edit", "GET"): (
        lambda o: f"/staff/faq/{faq_entry(o)}/edit",
        FAQ_EDIT_GET,
    ),
    ("/staff/faq/<int:entry_id>/edit", "POST"): (
        lambda o: f"/staff/faq/{faq_entry(o)}/edit",
        FAQ_EDIT_POST,
    ),
    # "submit" on a published entry changes nothing (a flashed refusal), whoever asks.
    ("/staff/faq/<int:entry_id>/<any(submit, approve, 'send-back', archive):action>", "POST"): (
        lambda o: f"/staff/faq/{faq_entry(o)}/submit",
        FAQ_EDIT_POST,
    ),
    ("/staff/faq/from-ticket/<number>", "POST"): (
        lambda o: f"/staff/faq/from-ticket/{o['number']}",
        {**FAQ_EDIT_POST, "officer": 403, "admin": 403},
    ),
    ("/staff/faq/synonyms", "GET"): (lambda o: "/staff/faq/synonyms", FAQ_SYNONYMS_GET),
    ("/staff/faq/synonyms", "POST"): (
        lambda o: "/staff/faq/synonyms",
        FAQ_SYNONYMS_POST,
        {"text": "国保=国民健康保険"},
    ),
    ("/logout", "POST"): (
        lambda o: "/logout",
        {"anonymous": LOGIN, **dict.fromkeys(ROLES[1:], SIGNED_OUT)},
    ),
}

# Booking (channels/booking): public pages answer everyone alike; a made-up token is just 404.
PUBLIC_404 = dict.fromkeys(ROLES, 404)
PUBLIC_400 = dict.fromkeys(ROLES, 400)
DESK_404 = {**DESK_GET, "consultant": 404, "supervisor": 404}
FEED_GET = {**DESK_GET, "admin": 200}
FEED_POST = {**DESK_POST, "admin": OK}
ADMIN_404 = {**ADMIN_GET, "admin": 404}
MOVED = {**ADMIN_GET, "admin": 308}
MOVED_FEED = {**FEED_GET, "consultant": 308, "supervisor": 308, "admin": 308}
TABLE.update(
    {
        ("/booking/", "GET"): (lambda o: "/booking/", PUBLIC_GET),
        ("/booking/privacy", "GET"): (lambda o: "/booking/privacy", PUBLIC_GET),
        ("/booking/slots", "GET"): (lambda o: "/booking/slots?mode=phone", PUBLIC_GET),
        ("/booking/details", "GET"): (lambda o: "/booking/details", PUBLIC_400),
        ("/booking/details", "POST"): (lambda o: "/booking/details", PUBLIC_400),
        ("/booking/manage/<token>", "GET"): (lambda o: "/booking/manage/x.y.z", PUBLIC_404),
        ("/booking/manage/<token>/slots", "GET"): (
            lambda o: "/booking/manage/x.y.z/slots",
            PUBLIC_404,
        ),
        ("/booking/manage/<token>/move", "GET"): (
            lambda o: "/booking/manage/x.y.z/move",
            PUBLIC_404,
        ),
        ("/booking/manage/<token>/move", "POST"): (
            lambda o: "/booking/manage/x.y.z/move",
            PUBLIC_404,
        ),
        ("/booking/manage/<token>/cancel", "POST"): (
            lambda o: "/booking/manage/x.y.z/cancel",
            PUBLIC_404,
        ),
        ("/booking/feeds/<token>.ics", "GET"): (lambda o: "/booking/feeds/nope.ics", PUBLIC_404),
        ("/booking/staff/day", "GET"): (lambda o: "/booking/staff/day", DESK_GET),
        ("/booking/staff/week", "GET"): (lambda o: "/booking/staff/week", DESK_GET),
        ("/booking/staff/new", "GET"): (lambda o: "/booking/staff/new", DESK_GET),
        ("/booking/staff/new", "POST"): (lambda o: "/booking/staff/new", DESK_POST),
        ("/booking/staff/b/<int:booking_id>", "GET"): (
            lambda o: "/booking/staff/b/999999",
            DESK_404,
        ),
        ("/booking/staff/b/<int:booking_id>", "POST"): (
            lambda o: "/booking/staff/b/999999",
            DESK_404,
        ),
        ("/booking/staff/b/<int:booking_id>/check-in", "POST"): (
            lambda o: "/booking/staff/b/999999/check-in",
            DESK_404,
        ),
        ("/booking/staff/b/<int:booking_id>/no-show", "POST"): (
            lambda o: "/booking/staff/b/999999/no-show",
            DESK_404,
        ),
        ("/booking/staff/b/<int:booking_id>/cancel", "POST"): (
            lambda o: "/booking/staff/b/999999/cancel",
            DESK_404,
        ),
        ("/booking/staff/feeds", "GET"): (lambda o: "/booking/staff/feeds", FEED_GET),
        ("/booking/staff/feeds", "POST"): (
            lambda o: "/booking/staff/feeds",
            FEED_POST,
            {"kind": "staff"},
        ),
        ("/booking/admin/settings", "GET"): (lambda o: "/booking/admin/settings", ADMIN_GET),
        ("/booking/admin/settings", "POST"): (lambda o: "/booking/admin/settings", ADMIN_POST),
        # Specialist sessions: administrators set the kinds up; every member of staff has a list
        # of the sessions they hold (empty unless an administrator named them on a kind).
        ("/booking/admin/kinds", "GET"): (lambda o: "/booking/admin/kinds", ADMIN_GET),
        ("/booking/admin/branches", "GET"): (lambda o: "/booking/admin/branches", ADMIN_GET),
        ("/booking/admin/branches", "POST"): (
            lambda o: "/booking/admin/branches",
            ADMIN_POST,
            {"name": "", "active": "y"},
        ),
        ("/booking/admin/branches/<int:office_id>", "GET"): (
            lambda o: "/booking/admin/branches/999999",
            {**ADMIN_GET, "admin": 404},
        ),
        ("/booking/admin/branches/<int:office_id>", "POST"): (
            lambda o: "/booking/admin/branches/999999",
            {**ADMIN_GET, "admin": 404},
        ),
        # The branch office's own page: its account alone (other rows: BRANCH_ANSWERS below).
        ("/booking/branch", "GET"): (
            lambda o: "/booking/branch",
            {"anonymous": LOGIN, **dict.fromkeys(ROLES[1:], 403)},
        ),
        ("/booking/admin/kinds/new", "GET"): (lambda o: "/booking/admin/kinds/new", ADMIN_GET),
        ("/booking/admin/kinds/new", "POST"): (lambda o: "/booking/admin/kinds/new", ADMIN_POST),
        ("/booking/admin/kinds/<int:kind_id>", "GET"): (
            lambda o: "/booking/admin/kinds/999999",
            ADMIN_404,
        ),
        ("/booking/admin/kinds/<int:kind_id>", "POST"): (
            lambda o: "/booking/admin/kinds/999999",
            ADMIN_404,
        ),
        ("/booking/staff/specialist", "GET"): (
            lambda o: "/booking/staff/specialist",
            {"anonymous": LOGIN, **dict.fromkeys(ROLES[1:], 200)},
        ),
        # The calendar pages moved to the kernel: the old addresses redirect (308 keeps POST).
        ("/booking/admin/exceptions", "GET"): (lambda o: "/booking/admin/exceptions", MOVED),
        ("/booking/admin/exceptions", "POST"): (lambda o: "/booking/admin/exceptions", MOVED),
        ("/booking/admin/exceptions/<int:exception_id>/delete", "POST"): (
            lambda o: "/booking/admin/exceptions/999999/delete",
            MOVED,
        ),
        ("/booking/admin/rota", "GET"): (lambda o: "/booking/admin/rota", MOVED),
        ("/booking/admin/rota", "POST"): (lambda o: "/booking/admin/rota", MOVED),
        ("/booking/admin/rota.ics", "GET"): (
            lambda o: "/booking/admin/rota.ics",
            MOVED_FEED,
        ),
    }
)
# The API (api/): a bearer token, never the session, so every role without one gets 401; the
# description, its page and the published FAQ are public. Its scopes: tests/api/.
API_401 = dict.fromkeys(ROLES, 401)
TABLE.update(
    {
        ("/api/v1/openapi.json", "GET"): (lambda o: "/api/v1/openapi.json", PUBLIC_GET),
        ("/api/v1/docs", "GET"): (lambda o: "/api/v1/docs", PUBLIC_GET),
        ("/api/v1/faq", "GET"): (lambda o: "/api/v1/faq", PUBLIC_GET),
        ("/api/v1/faq/<int(min=1, max=2147483647):entry_id>", "GET"): (
            lambda o: f"/api/v1/faq/{faq_entry(o)}",
            PUBLIC_GET,
        ),
        ("/api/v1/faq/staff", "GET"): (lambda o: "/api/v1/faq/staff", API_401),
        ("/api/v1/faq/staff/<int(min=1, max=2147483647):entry_id>", "GET"): (
            lambda o: f"/api/v1/faq/staff/{faq_entry(o)}",
            API_401,
        ),
        ("/api/v1/tickets", "GET"): (lambda o: "/api/v1/tickets", API_401),
        ("/api/v1/tickets", "POST"): (lambda o: "/api/v1/tickets", API_401),
        ("/api/v1/tickets/<string(maxlength=16):number>", "GET"): (
            lambda o: f"/api/v1/tickets/{o['number']}",
            API_401,
        ),
        ("/api/v1/tickets/<string(maxlength=16):number>/status", "POST"): (
            lambda o: f"/api/v1/tickets/{o['number']}/status",
            API_401,
        ),
        ("/api/v1/tickets/<string(maxlength=16):number>/assignee", "POST"): (
            lambda o: f"/api/v1/tickets/{o['number']}/assignee",
            API_401,
        ),
        ("/api/v1/tickets/<string(maxlength=16):number>/timeline", "GET"): (
            lambda o: f"/api/v1/tickets/{o['number']}/timeline",
            API_401,
        ),
        ("/api/v1/tickets/<string(maxlength=16):number>/notes", "POST"): (
            lambda o: f"/api/v1/tickets/{o['number']}/notes",
            API_401,
        ),
        ("/api/v1/tickets/<string(maxlength=16):number>/handoffs", "GET"): (
            lambda o: f"/api/v1/tickets/{o['number']}/handoffs",
            API_401,
        ),
        ("/api/v1/handoffs/<int(min=1, max=2147483647):handoff_id>", "GET"): (
            lambda o: "/api/v1/handoffs/1",
            API_401,
        ),
        ("/api/v1/handoffs/<int(min=1, max=2147483647):handoff_id>/steps", "POST"): (
            lambda o: "/api/v1/handoffs/1/steps",
            API_401,
        ),
        ("/api/v1/bookings/slots", "GET"): (lambda o: "/api/v1/bookings/slots?mode=phone", API_401),
        ("/api/v1/bookings/kinds", "GET"): (lambda o: "/api/v1/bookings/kinds", API_401),
        ("/api/v1/bookings/offices", "GET"): (lambda o: "/api/v1/bookings/offices", API_401),
        ("/api/v1/bookings", "GET"): (
            lambda o: "/api/v1/bookings?from=2026-12-01&to=2026-12-02",
            API_401,
        ),
        ("/api/v1/citizens", "GET"): (lambda o: "/api/v1/citizens?name=やまだ", API_401),
        ("/api/v1/citizens/<int(min=1, max=2147483647):citizen_id>", "GET"): (
            lambda o: f"/api/v1/citizens/{o['citizen']}",
            API_401,
        ),
        ("/api/v1/reports/figures", "GET"): (
            lambda o: "/api/v1/reports/figures?fiscal_year=2026",
            API_401,
        ),
        ("/admin/api/", "GET"): (lambda o: "/admin/api/", ADMIN_GET),
        ("/admin/api/integrations", "POST"): (lambda o: "/admin/api/integrations", ADMIN_POST),
        ("/admin/api/integrations/<int:integration_id>/revoke", "POST"): (
            lambda o: "/admin/api/integrations/999999/revoke",
            {**ADMIN_GET, "admin": REDIRECT},
        ),
        ("/admin/api/webhooks", "POST"): (lambda o: "/admin/api/webhooks", ADMIN_POST),
        ("/admin/api/webhooks/<int:hook_id>/revoke", "POST"): (
            lambda o: "/admin/api/webhooks/999999/revoke",
            {**ADMIN_GET, "admin": REDIRECT},
        ),
    }
)
# The citizens' voice (consult/voice, faq/opinions, the counter's receipt): a made-up
# satisfaction token is 410 for everyone alike (used, expired and forged answer the same).
PUBLIC_410 = dict.fromkeys(ROLES, 410)
REQUEST_GET = {**DESK_GET, "officer": 200, "admin": 200}
REQUEST_404 = {**DESK_GET, "consultant": 404, "supervisor": 404, "officer": 404}
OPINION_GET = {**DESK_GET, "admin": 200}
OPINION_POST = {**DESK_GET, "consultant": OK, "supervisor": OK, "admin": OK}
OPINION_404 = {**DESK_GET, "consultant": 404, "supervisor": 404, "admin": 404}
TABLE.update(
    {
        ("/voice/satisfaction/<token>", "GET"): (
            lambda o: "/voice/satisfaction/x.y",
            PUBLIC_410,
        ),
        ("/voice/satisfaction/<token>", "POST"): (
            lambda o: "/voice/satisfaction/x.y",
            PUBLIC_410,
            {"score": "5"},
        ),
        ("/voice/satisfaction/thanks", "GET"): (
            lambda o: "/voice/satisfaction/thanks",
            PUBLIC_GET,
        ),
        ("/tickets/<number>/request", "POST"): (t("/request"), DESK_POST, {"kind": "request"}),
        ("/tickets/<number>/request/panel", "GET"): (t("/request/panel"), DESK_GET),
        ("/tickets/<number>/request/answer", "POST"): (
            t("/request/answer"),
            DESK_POST,
            {"text": "回答"},
        ),
        ("/requests", "GET"): (lambda o: "/requests", REQUEST_GET),
        ("/requests/<int:request_id>", "GET"): (lambda o: "/requests/999999", REQUEST_404),
        ("/requests/<int:request_id>", "POST"): (
            lambda o: "/requests/999999",
            REQUEST_404,
            {"text": "回答"},
        ),
        ("/counter/receipt/<number>", "GET"): (
            lambda o: f"/counter/receipt/{o['number']}",
            DESK_404,  # the test's ticket has no counter visit
        ),
        ("/opinions", "GET"): (lambda o: "/opinions", PUBLIC_GET),
        ("/staff/opinions", "GET"): (lambda o: "/staff/opinions", OPINION_GET),
        ("/staff/opinions/from-request/<int:request_id>", "POST"): (
            lambda o: "/staff/opinions/from-request/999999",
            OPINION_POST,
        ),
        ("/staff/opinions/<int:entry_id>", "GET"): (
            lambda o: "/staff/opinions/999999",
            OPINION_404,
        ),
        ("/staff/opinions/<int:entry_id>", "POST"): (
            lambda o: "/staff/opinions/999999",
            OPINION_404,
        ),
        ("/staff/opinions/<int:entry_id>/<action>", "POST"): (
            lambda o: "/staff/opinions/999999/submit",
            OPINION_404,
        ),
    }
)


def consumer_alert(o) -> int:
    """A published consumer alert (faq.alerts), made once per test."""
    if "consumer_alert" not in o:
        from faq.alerts import services as alert_services

        alert = alert_services.create(
            SYSTEM, {"title": "還付金詐欺", "method": "市役所を名乗る電話", "advice": "切る"}
        )
        alert_services.submit(SYSTEM, alert)
        alert_services.approve(SYSTEM, alert)
        db.session.commit()
        o["consumer_alert"] = alert.id
    return o["consumer_alert"]


# Alerts: every member of staff reads them; the desk, administrators and the consumer-affairs
# centre's officers write them (the test's officer is of another department).
ALERT_WRITE_GET = {**FAQ_READ, "officer": 403, "support": 403}
ALERT_WRITE_POST = {**ALERT_WRITE_GET, "consultant": OK, "supervisor": OK, "admin": OK}
# LINE notices: supervisors and administrators send them.
NOTICE_GET = {**ADMIN_GET, "supervisor": 200}
NOTICE_POST = {**NOTICE_GET, "supervisor": OK, "admin": OK}
TABLE.update(
    {
        ("/alerts", "GET"): (lambda o: "/alerts", PUBLIC_GET),
        ("/alerts/<int:alert_id>", "GET"): (
            lambda o: f"/alerts/{consumer_alert(o)}",
            PUBLIC_GET,
        ),
        ("/staff/alerts", "GET"): (lambda o: "/staff/alerts", FAQ_READ),
        ("/staff/alerts/new", "GET"): (lambda o: "/staff/alerts/new", ALERT_WRITE_GET),
        ("/staff/alerts/new", "POST"): (lambda o: "/staff/alerts/new", ALERT_WRITE_POST),
        ("/staff/alerts/<int:alert_id>", "GET"): (
            lambda o: f"/staff/alerts/{consumer_alert(o)}",
            FAQ_READ,
        ),
        ("/staff/alerts/<int:alert_id>/edit", "GET"): (
            lambda o: f"/staff/alerts/{consumer_alert(o)}/edit",
            ALERT_WRITE_GET,
        ),
        ("/staff/alerts/<int:alert_id>/edit", "POST"): (
            lambda o: f"/staff/alerts/{consumer_alert(o)}/edit",
            ALERT_WRITE_POST,
        ),
        ("/staff/alerts/<int:alert_id>/<action>", "POST"): (
            lambda o: f"/staff/alerts/{consumer_alert(o)}/submit",
            ALERT_WRITE_POST,
        ),
        ("/staff/alerts/from-ticket/<number>", "POST"): (
            lambda o: f"/staff/alerts/from-ticket/{o['number']}",
            DESK_POST,
        ),
        ("/staff/line/notices", "GET"): (lambda o: "/staff/line/notices", NOTICE_GET),
        ("/staff/line/notices", "POST"): (lambda o: "/staff/line/notices", NOTICE_POST),
    }
)
TABLE[("/logout", "POST")] = TABLE.pop(("/logout", "POST"))  # logout stays last

# A branch office's account (role "branch"): 403 on every staff page but its own bookings and
# its own account's pages; public pages answer it as they answer any signed-in person.
BRANCH_ANSWERS = {
    ("/", "GET"): REDIRECT,  # to its branch's bookings
    ("/booking/branch", "GET"): 200,
    ("/login", "GET"): REDIRECT,
    ("/login", "POST"): REDIRECT,
    ("/login/code", "GET"): REDIRECT,
    ("/login/code", "POST"): REDIRECT,
    ("/account/two-factor", "GET"): 200,
    ("/account/two-factor", "POST"): OK,
    ("/account/password", "GET"): 200,
    ("/account/password", "POST"): OK,
    ("/logout", "POST"): SIGNED_OUT,
}
for _key, (_build, _expect, *_rest) in list(TABLE.items()):
    if _key in BRANCH_ANSWERS:
        _answer_of_branch = BRANCH_ANSWERS[_key]
    elif _expect["anonymous"] != LOGIN:
        _answer_of_branch = _expect["support"]  # a public page (or a token's): as anyone
    else:
        _answer_of_branch = 403
    TABLE[_key] = (_build, {**_expect, "branch": _answer_of_branch}, *_rest)


@pytest.fixture
def make_citizen(app):
    def make(**fields):
        citizen = citizens.create_citizen(
            SYSTEM, citizens.CitizenInput(**({"name": "山田 花子"} | fields))
        )
        db.session.commit()
        return citizen

    return make


def _safety_objects(ticket, consultant) -> tuple[int, int]:
    """An open help alert and an incident record, for the safety rows of the table."""
    from consult.services import safety
    from consult.services.actor import Actor
    from consult.timeutil import utcnow

    actor = Actor(consultant, "127.0.0.1")
    alert = safety.raise_alert(actor, place="room1", ticket=ticket)
    incident = safety.create_incident(
        actor,
        safety.IncidentInput(
            occurred_at=utcnow(),
            categories=["abuse"],
            description="大声で威圧された",
            follow_ups=["record_only"],
            involved_ids=[consultant.id],
            support_ids=[],
            ticket=ticket,
        ),
    )
    db.session.commit()
    return alert.id, incident.id


def _routes(app) -> set[tuple[str, str]]:
    return {
        (rule.rule, method)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def _to_login(response) -> bool:
    return response.status_code == 302 and urlparse(response.headers["Location"]).path == "/login"


def _answer(response) -> object:
    """What the response was, in the table's vocabulary."""
    if _to_login(response):
        return LOGIN
    if response.status_code == 302:
        return REDIRECT
    return response.status_code


def _matches(expected, response) -> bool:
    if expected == SIGNED_OUT:
        return _to_login(response) and "next=" not in response.headers["Location"]
    if expected == OK:
        return response.status_code in {200, 302, 422} and not _to_login(response)
    return _answer(response) == expected


def _email_objects() -> dict:
    """An email ticket with an attachment, a saved reply, and a quarantined mail."""
    from channels.email import services as email
    from channels.email import tasks as email_tasks
    from channels.email.models import MailAttachment

    raw = (
        b"From: a@example.jp\r\nSubject: s\r\nMessage-ID: <access@x>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n"
        b"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; "
        b'filename="a.pdf"\r\n\r\n%PDF\r\n--b--\r\n'
    )
    email_tasks.ingest(raw)
    quarantined = email_tasks.ingest(b"Subject: x\r\nMessage-ID: <access-q@x>\r\n\r\nx").inbound
    template = email.save_template(SYSTEM, None, "定型", "本文")
    db.session.commit()
    attachment = db.session.scalar(sa.select(MailAttachment.id))
    from consult.models import SafeFile

    safe_file = db.session.scalar(sa.select(SafeFile.id).where(SafeFile.source_id == attachment))
    return {
        "email_attachment": attachment,
        "safe_file": safe_file,
        "email_template": template.id,
        "email_inbound": quarantined.id,
    }


def test_every_route_is_in_the_table(app):
    routes = _routes(app)
    missing = sorted(routes - TABLE.keys())
    stale = sorted(TABLE.keys() - routes)
    assert not missing, f"routes without access rules in the table: {missing}"
    assert not stale, f"table rows for routes that no longer exist: {stale}"
    for key, row in TABLE.items():
        assert set(row[1]) == set(ROLES), f"{key}: an answer for every role"


def _callback(ticket, staff) -> int:
    from datetime import timedelta

    from consult.services import callbacks
    from consult.services.actor import Actor
    from consult.timeutil import utcnow

    callback = callbacks.schedule(Actor(staff, "127.0.0.1"), ticket, utcnow() + timedelta(hours=1))
    db.session.commit()
    return callback.id


def _merge_record(source, target) -> int:
    from consult.services import merge

    record = merge.merge_citizens(SYSTEM, source, target)
    db.session.commit()
    return record.id


def test_access_matrix(app, make_staff, make_ticket, make_department, make_category, make_citizen):
    assert not sorted(_routes(app) - TABLE.keys()), "every route needs a row in TABLE"
    # Seven roles vote from one address here; the vote limit has its own tests (test_vote_limits).
    override_settings(app, FAQ_VOTE_RATE_LIMIT="100 per minute")
    ticket = make_ticket(subject="住民票の写しについて")
    victim = make_staff("consultant")
    message = outbox.enqueue(channel="email", recipient="r@example.jp", body="本文", ticket=ticket)
    [handoff] = handoff_services.create(
        SYSTEM,
        ticket,
        [handoff_services.Request(make_department().id, "伝達事項", Response.VISIT)],
    )
    db.session.commit()
    alert, incident = _safety_objects(ticket, make_staff("consultant"))
    objects = {
        "handoff": handoff.id,
        "number": ticket.number,
        "victim": victim.id,
        "callback": _callback(ticket, victim),
        "department": make_department().id,
        "category": make_category().id,
        "citizen": make_citizen().id,
        "merge": _merge_record(make_citizen(), make_citizen()),
        "outbox": message.id,
        "alert": alert,
        "incident": incident,
        **_email_objects(),
    }
    clients = {"anonymous": app.test_client()}
    for role in ROLES[1:]:
        clients[role] = sign_in(app, make_staff(role))

    failures = []
    for (_rule, method), (build, expect, *rest) in TABLE.items():
        data = rest[0] if rest else {}
        url = build(objects)
        for role in ROLES:
            response = call(app, clients[role], method, url, data=data)
            if not _matches(expect[role], response):
                failures.append(
                    f"{method} {url} as {role}: expected {expect[role]}, got "
                    f"{response.status_code} {response.headers.get('Location', '')}"
                )
    assert not failures, "\n".join(failures)


def test_no_oracle_for_roles_without_tickets(app, make_staff, make_ticket):
    ticket = make_ticket()
    for role in ("officer", "support", "admin"):
        client = sign_in(app, make_staff(role))
        for path in ("", "/note"):
            method = "GET" if not path else "POST"
            existing = call(app, client, method, f"/tickets/{ticket.number}{path}")
            missing = call(app, client, method, f"/tickets/2026-999999{path}")
            assert existing.status_code == missing.status_code == 403, (role, path)


def test_missing_ticket_is_404_for_a_consultant(client, login_as, make_ticket):
    login_as("consultant")
    make_ticket()
    assert client.get("/tickets/2026-999999").status_code == 404
    assert client.post("/tickets/2026-999999/note", data={"body": "メモ"}).status_code == 404


def test_link_to_nonexistent_citizen_changes_nothing(client, login_as, make_ticket):
    login_as("consultant")
    ticket = make_ticket()
    entries = db.session.scalar(sa.select(sa.func.count(TimelineEntry.id)))
    response = client.post(f"/tickets/{ticket.number}/citizen/link", data={"citizen_id": 999999})
    assert response.status_code == 422
    assert "相談者が見つかりません。" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).citizen_id is None
    assert db.session.scalar(sa.select(sa.func.count(TimelineEntry.id))) == entries


def test_assign_to_officer_or_nonexistent_staff_is_refused(
    client, login_as, make_ticket, make_staff
):
    login_as("consultant")
    ticket = make_ticket()
    officer = make_staff("officer")
    entries = db.session.scalar(sa.select(sa.func.count(TimelineEntry.id)))
    for assignee in (officer.id, 999999):
        response = client.post(
            f"/tickets/{ticket.number}/assign", data={"assignee_id": str(assignee)}
        )
        assert response.status_code in {403, 404, 422}, assignee
        db.session.expire_all()
        assert db.session.get(Ticket, ticket.id).assignee_id is None
    assert db.session.scalar(sa.select(sa.func.count(TimelineEntry.id))) == entries


def test_assign_service_refuses_non_desk_staff(app, make_ticket, make_staff):
    """The rule lives in the service too, not only in the form's choices."""
    from consult.services import tickets
    from consult.services.actor import Actor
    from consult.services.errors import ValidationFailed

    ticket = make_ticket()
    actor = Actor(make_staff("consultant"), "127.0.0.1")
    for assignee in (make_staff("officer").id, make_staff("admin").id, 999999):
        with pytest.raises(ValidationFailed):
            tickets.assign(actor, ticket, assignee)
        db.session.rollback()
        assert db.session.get(Ticket, ticket.id).assignee_id is None
