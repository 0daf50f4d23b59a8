"""`/api/v1/`: thin handlers over the kernel's services, described by flask-smorest.

Every handler checks the token's scope, builds the integration's Actor and calls the same
service the desk's pages call, so the rules, the refusals (as problem details) and the audit
are the web's. The schemas in api/schemas.py validate the requests and make the OpenAPI
document served at /api/v1/openapi.json.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import Response, current_app, g, request
from flask_smorest import Blueprint

from api import idempotency, problems, schemas
from api import services as api_services
from api.models import Scope
from consult.extensions import db
from consult.models import Citizen, Status, Ticket
from consult.services import audit, protection, ratelimit, reports
from consult.services import citizens as citizen_services
from consult.services import tickets as ticket_services
from consult.services.errors import NotFound, ValidationFailed
from consult.timeutil import utcnow

bp = Blueprint(
    "api_v1",
    __name__,
    url_prefix="/api/v1",
    description="相談・経過・相談者・FAQ・統計（アクセストークンが必要。"
    "市民にも公開中のFAQは不要、職員のみのFAQには faq の範囲が必要）",
)
problems.install(bp)


def _token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def requires(*scopes: Scope) -> Callable:
    """Authenticate the bearer token, count it against its limit, and check its scopes.

    Placed right under `@bp.route`, so a request without a valid token is refused (401/403)
    before its body or query is even read (flask-smorest's own decorators sit inside)."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            try:
                integration = api_services.authenticate(_token(), request.remote_addr)
            except api_services.TokenRefused as refused:
                headers = {"WWW-Authenticate": 'Bearer realm="madoguchi"'}
                raise problems.Problem(
                    refused.status,
                    refused.code,
                    refused.message,
                    headers=headers if refused.status == 401 else None,
                ) from None
            limits = ratelimit.parse(current_app.config["MADOGUCHI"]["API_RATE_LIMIT"])
            wait = ratelimit.over("api", f"integration:{integration.id}", limits)
            now = utcnow()
            if (
                integration.last_used_at is None
                or (now - integration.last_used_at).total_seconds() > 60
            ):
                integration.last_used_at = now
            db.session.commit()  # the count holds even when this request ends in an error
            if wait:
                raise problems.Problem(
                    429,
                    "rate_limited",
                    f"リクエストが多すぎます。{wait}秒後にやり直してください。",
                    headers={"Retry-After": str(wait)},
                )
            missing = [scope for scope in scopes if not integration.has(scope)]
            if missing:
                raise problems.Problem(
                    403,
                    "scope_missing",
                    "このアクセストークンには次の権限がありません: "
                    + "、".join(str(scope) for scope in missing),
                )
            g.api_integration = integration
            g.api_actor = api_services.actor_for(integration, request.remote_addr)
            return view(*args, **kwargs)

        return wrapped

    def documented(view: Callable) -> Callable:
        # OpenAPI 3.1 lets a bearer requirement name the roles it needs: the scopes.
        return decorator(bp.doc(security=[{"bearerAuth": [str(s) for s in scopes]}])(view))

    return documented


IDEMPOTENCY_PARAMETER = {
    "name": idempotency.HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
    "description": "再送しても二重に登録されないためのキー（トークンごと、24時間有効）。"
    "同じキーと同じ内容なら最初の応答を返し、同じキーで内容が違えば 422。",
}


def idempotent(view: Callable) -> Callable:
    """Honour an `Idempotency-Key` header (api/idempotency.py). Placed right under `requires`
    (it needs the token's integration), above flask-smorest's decorators (it keeps the finished
    answer)."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        raw = request.headers.get(idempotency.HEADER)
        if raw is None:
            return view(*args, **kwargs)
        integration_id = g.api_integration.id
        try:
            key = idempotency.check_key(raw)
        except ValidationFailed as error:
            raise problems.Problem(422, "idempotency_key_invalid", error.message) from None
        print_ = idempotency.fingerprint(request.method, request.path, request.get_data(cache=True))
        try:
            stored = idempotency.claim(integration_id, key, print_)
        except idempotency.KeyReused as error:
            raise problems.Problem(422, "idempotency_key_reused", error.message) from None
        if stored is not None:
            replay = Response(stored.body, status=stored.status_code, mimetype="application/json")
            replay.headers["Idempotent-Replayed"] = "true"
            if stored.location:
                replay.headers["Location"] = stored.location
            return replay
        answer = current_app.make_response(view(*args, **kwargs))
        if answer.status_code < 400:
            idempotency.store(
                integration_id,
                key,
                answer.status_code,
                answer.get_data(as_text=True),
                answer.headers.get("Location"),
            )
        return answer

    return bp.doc(parameters=[IDEMPOTENCY_PARAMETER])(wrapped)


def _personal() -> bool:
    return g.api_integration.has(Scope.PERSONAL)


def citizen_dict(citizen: Citizen) -> dict:
    # 支援措置: an integration is never named on a case, so a protected person's whereabouts
    # are left out (consult/services/protection.py).
    contact = protection.masked_contact(g.api_actor, citizen)
    return {
        "id": citizen.id,
        "name": citizen.name,
        "kana": citizen.kana,
        "address": contact["address"],
        "phones": contact["phones"],
        "emails": contact["emails"],
    }


def ticket_dict(ticket: Ticket, *, with_citizen: bool = False) -> dict:
    data = {
        "number": ticket.number,
        "subject": ticket.subject,
        "status": ticket.status.value,
        "channel": ticket.channel.value,
        "priority": ticket.priority.value,
        "category_id": ticket.category_id,
        "assignee_id": ticket.assignee_id,
        "created_at": ticket.created_at,
        "last_activity_at": ticket.last_activity_at,
        "closed_at": ticket.closed_at,
    }
    if with_citizen:
        data["citizen"] = citizen_dict(ticket.citizen) if ticket.citizen else None
    return data


# --- tickets ---------------------------------------------------------------------------------


def _ticket(number: str, *, audit_view: bool) -> Ticket:
    """The kernel's get_ticket, for a number of the right shape only (a NUL or any other text
    would reach PostgreSQL as a parameter): anything else is simply not found."""
    if not ticket_services.NUMBER_PATTERN.fullmatch(number):
        raise NotFound("相談が見つかりません。")
    return ticket_services.get_ticket(g.api_actor, number, audit_view=audit_view)


@bp.route("/tickets", methods=["GET"])
@requires(Scope.TICKETS_READ)
@bp.arguments(schemas.TicketListArgs, location="query")
@bp.response(200, schemas.TicketPage)
@bp.doc(summary="相談の一覧（キーセットページング）")
def list_tickets(args):
    """新しく動きのあった順。`next_cursor` を `cursor` に渡すと次のページ。相談者は含みません。"""
    after = None
    if args.get("cursor"):
        after = ticket_services.Cursor.decode(args["cursor"])
        if after is None:
            raise problems.Problem(
                422,
                "validation_failed",
                problems.STATUS_TEXT[422][1],
                errors=[
                    {"field": "cursor", "in": "query", "message": "カーソルが正しくありません。"}
                ],
            )
    page = ticket_services.queue(
        g.api_actor,
        ticket_services.QueueFilter(
            channel=args.get("channel"),
            status=args.get("status"),
            category_id=args.get("category_id"),
            assignee_id=args.get("assignee_id"),
            include_closed=args["include_closed"],
            unassigned=args["unassigned"],
        ),
        after=after,
        page_size=args["limit"],
    )
    return {"items": [ticket_dict(t) for t in page.tickets], "next_cursor": page.next_cursor}


@bp.route("/tickets", methods=["POST"])
@requires(Scope.TICKETS_WRITE)
@idempotent
@bp.arguments(schemas.TicketIn)
@bp.response(201, schemas.TicketOut)
@bp.doc(summary="相談の登録（外部の受付から）")
def create_ticket(data):
    actor = g.api_actor
    citizen_data = None
    if data.get("citizen"):
        citizen_data = citizen_services.CitizenInput(**data["citizen"])
        if citizen_data.clean().empty:  # refused before anything is written
            citizen_data = None
    ticket = ticket_services.create_ticket(
        actor,
        channel=data["channel"],
        subject=data["subject"],
        category_id=data.get("category_id"),
        priority=data["priority"],
        first_message=data.get("message") or None,
    )
    if citizen_data is not None:
        ticket_services.save_citizen(actor, ticket, citizen_data)
    db.session.flush()
    return ticket_dict(ticket, with_citizen=_personal())


@bp.route("/tickets/<string(maxlength=16):number>", methods=["GET"])
@requires(Scope.TICKETS_READ)
@bp.response(200, schemas.TicketOut)
@bp.doc(summary="相談の詳細（personal の範囲があれば相談者も）")
def read_ticket(number):
    ticket = _ticket(number, audit_view=_personal())
    return ticket_dict(ticket, with_citizen=_personal())


@bp.route("/tickets/<string(maxlength=16):number>/status", methods=["POST"])
@requires(Scope.TICKETS_WRITE)
@idempotent
@bp.arguments(schemas.StatusIn)
@bp.response(200, schemas.TicketOut)
@bp.doc(summary="状態の変更（完了には reason が対応結果として必要）")
def change_status(data, number):
    actor = g.api_actor
    ticket = _ticket(number, audit_view=False)
    new = Status(data["status"])
    reason = data.get("reason") or ""
    if new == Status.CLOSED:
        ticket_services.close(actor, ticket, reason)
    elif new == Status.IN_PROGRESS and ticket.status in ticket_services.REOPENABLE:
        ticket_services.reopen(actor, ticket, reason)
    else:
        ticket_services.change_status(actor, ticket, new, reason or None)
    db.session.flush()
    return ticket_dict(ticket, with_citizen=False)


@bp.route("/tickets/<string(maxlength=16):number>/assignee", methods=["POST"])
@requires(Scope.TICKETS_WRITE)
@idempotent
@bp.arguments(schemas.AssigneeIn)
@bp.response(200, schemas.TicketOut)
@bp.doc(summary="担当者の変更（null で外す）")
def change_assignee(data, number):
    actor = g.api_actor
    ticket = _ticket(number, audit_view=False)
    ticket_services.assign(actor, ticket, data["assignee_id"])
    db.session.flush()
    return ticket_dict(ticket, with_citizen=False)


def entry_dict(entry) -> dict:
    return {
        "id": entry.id,
        "kind": str(entry.kind),
        "at": entry.created_at,
        "author_id": entry.author_id,
        "body": entry.body or "",
    }


@bp.route("/tickets/<string(maxlength=16):number>/timeline", methods=["GET"])
@requires(Scope.TICKETS_READ, Scope.PERSONAL)
@bp.response(200, schemas.EntryList)
@bp.doc(summary="経過（個人情報を含むため personal の範囲も必要）")
def read_timeline(number):
    ticket = _ticket(number, audit_view=False)
    audit.record(g.api_actor, "view", "ticket", ticket.number, "timeline")
    return {"items": [entry_dict(entry) for entry in ticket.timeline]}


@bp.route("/tickets/<string(maxlength=16):number>/notes", methods=["POST"])
@requires(Scope.TICKETS_WRITE)
@idempotent
@bp.arguments(schemas.NoteIn)
@bp.response(201, schemas.EntryOut)
@bp.doc(summary="メモを経過に追加")
def add_note(data, number):
    ticket = _ticket(number, audit_view=False)
    entry = ticket_services.add_note(g.api_actor, ticket, data["body"])
    db.session.flush()
    return entry_dict(entry)


# --- handoffs and bookings ----------------------------------------------------------------------


def handoff_dict(handoff) -> dict:
    data = {
        "id": handoff.id,
        "ticket_number": handoff.ticket.number,
        "department_id": handoff.department_id,
        "state": str(handoff.state),
        "response": str(handoff.response),
        "urgency": str(handoff.urgency),
        "created_at": handoff.created_at,
        "due_at": handoff.due_at,
        "accepted_at": handoff.accepted_at,
        "done_at": handoff.done_at,
    }
    if _personal():  # free text written about the citizen's case
        data.update(
            summary=handoff.summary,
            record_action=handoff.record_action,
            record_outcome=handoff.record_outcome,
        )
    return data


@bp.route("/tickets/<string(maxlength=16):number>/handoffs", methods=["GET"])
@requires(Scope.TICKETS_READ)
@bp.response(200, schemas.HandoffList)
@bp.doc(summary="相談の引継ぎ（依頼の内容と対応記録は personal の範囲があるときだけ）")
def list_handoffs(number):
    from handoff import services as handoff_services

    ticket = _ticket(number, audit_view=_personal())
    return {"items": [handoff_dict(h) for h in handoff_services.for_ticket(ticket)]}


@bp.route("/handoffs/<int(min=1, max=2147483647):handoff_id>", methods=["GET"])
@requires(Scope.TICKETS_READ)
@bp.response(200, schemas.HandoffOut)
@bp.doc(summary="引継ぎ 1件")
def read_handoff(handoff_id):
    from handoff import services as handoff_services

    handoff = handoff_services.get(g.api_actor, handoff_id)
    if _personal():
        audit.record(g.api_actor, "view", "ticket", handoff.ticket.number, "handoff")
    return handoff_dict(handoff)


@bp.route("/handoffs/<int(min=1, max=2147483647):handoff_id>/steps", methods=["POST"])
@requires(Scope.TICKETS_WRITE)
@idempotent
@bp.arguments(schemas.HandoffStepIn)
@bp.response(200, schemas.HandoffOut)
@bp.doc(
    summary="担当課の操作（担当課に結び付いたトークンだけ。その課あての引継ぎに限る）",
    description="accept（受付）、on_the_way（eta_minutes 分で向かう、来庁対応のみ）、arrive、"
    "finish（action と outcome の対応記録で完了）、decline（reason を添えて差し戻し）。",
)
def handoff_step(data, handoff_id):
    from handoff import services as handoff_services

    actor = g.api_actor
    handoff = handoff_services.get(actor, handoff_id)
    step = data["step"]
    if step == "accept":
        handoff_services.accept(actor, handoff)
    elif step == "on_the_way":
        handoff_services.on_the_way(actor, handoff, data.get("eta_minutes"))
    elif step == "arrive":
        handoff_services.arrive(actor, handoff)
    elif step == "finish":
        handoff_services.finish(
            actor,
            handoff,
            handoff_services.Record(
                action=data.get("action") or "",
                outcome=data.get("outcome") or "",
                follow_up=data.get("follow_up") or "",
                follow_up_by=data.get("follow_up_by") or "",
            ),
        )
    else:
        handoff_services.decline(actor, handoff, data.get("reason") or "")
    db.session.flush()
    return handoff_dict(handoff)


@bp.route("/bookings/slots", methods=["GET"])
@requires(Scope.TICKETS_READ)
@bp.arguments(schemas.SlotArgs, location="query")
@bp.response(200, schemas.SlotList)
@bp.doc(
    summary="予約の空き枠（窓口・電話・オンライン・支所から・専門相談）",
    description="mode か kind_id のどちらかが必要です。専門相談は kind_id（一覧は "
    "/api/v1/bookings/kinds）、支所からのオンライン相談は mode=branch_video と office_id"
    "（一覧は /api/v1/bookings/offices）で指定します。受け付けていない専門相談・支所は 404。",
)
def free_slots(args):
    from channels.booking import services as booking_services
    from channels.booking.models import Mode

    found = booking_services.slots_asked(
        Mode(args["mode"]) if args.get("mode") else None,
        kind_id=args.get("kind_id"),
        office_id=args.get("office_id"),
        start=args.get("start"),
        days=args["days"],
    )
    return {
        "items": [
            {
                "starts_at": slot.starts_at,
                "ends_at": slot.ends_at,
                "capacity": slot.capacity,
                "free": slot.free,
            }
            for slot in found
        ]
    }


@bp.route("/bookings/kinds", methods=["GET"])
@requires(Scope.TICKETS_READ)
@bp.response(200, schemas.SessionKindList)
@bp.doc(summary="予約を受け付けている専門相談の種類（空き枠は kind_id で）")
def list_session_kinds():
    from channels.booking import specialist

    return {
        "items": [
            {
                "id": kind.id,
                "name": kind.name,
                "description": kind.description,
                "mode": kind.mode.value,
                "slot_minutes": kind.slot_minutes,
                "capacity": kind.capacity,
            }
            for kind in specialist.list_kinds(active_only=True)
        ]
    }


@bp.route("/bookings/offices", methods=["GET"])
@requires(Scope.TICKETS_READ)
@bp.response(200, schemas.OfficeList)
@bp.doc(
    summary="支所からのオンライン相談を受け付けている支所",
    description="空き枠は mode=branch_video と office_id で。支所からのオンライン相談を"
    "受け付けていないとき（会議リンクの設定がないとき）は空です。",
)
def list_offices():
    from channels.booking import branch

    offices = branch.list_offices(active_only=True) if branch.offered() else []
    return {
        "items": [
            {"id": office.id, "name": office.name, "address": office.address} for office in offices
        ]
    }


@bp.route("/bookings", methods=["GET"])
@requires(Scope.TICKETS_READ, Scope.PERSONAL)
@bp.arguments(schemas.BookingArgs, location="query")
@bp.response(200, schemas.BookingList)
@bp.doc(summary="予約の一覧（from〜to、31日まで。氏名を含むため personal の範囲も必要）")
def list_bookings(args):
    from channels.booking import services as booking_services

    first, last = args["first"], args["last"]
    if last < first or (last - first).days > 31:
        raise ValidationFailed("期間は from から to まで、31日以内で指定してください。")
    rows = booking_services.bookings_between(g.api_actor, first, last)
    return {
        "items": [
            {
                "id": b.id,
                "reference": b.reference,
                "mode": str(b.mode),
                "status": str(b.status),
                "starts_at": b.starts_at,
                "ends_at": b.ends_at,
                "ticket_number": b.ticket.number if b.ticket else None,
                "name": b.name,
                "kana": b.kana,
            }
            for b in rows
        ]
    }


# --- citizens --------------------------------------------------------------------------------


@bp.route("/citizens", methods=["GET"])
@requires(Scope.PERSONAL)
@bp.arguments(schemas.CitizenSearchArgs, location="query")
@bp.response(200, schemas.CitizenList)
@bp.doc(summary="相談者の検索（氏名の前方一致・電話番号・メールアドレス）")
def search_citizens(args):
    if not any(args.get(key) for key in ("name", "phone", "email")):
        raise ValidationFailed("name、phone、email のいずれかを指定してください。")
    matches = citizen_services.find_matches(
        g.api_actor, phone=args.get("phone"), name=args.get("name"), email=args.get("email")
    )
    return {"items": [citizen_dict(match.citizen) for match in matches]}


@bp.route("/citizens/<int(min=1, max=2147483647):citizen_id>", methods=["GET"])
@requires(Scope.PERSONAL)
@bp.response(200, schemas.CitizenOut)
@bp.doc(summary="相談者")
def read_citizen(citizen_id):
    citizen = citizen_services.get_citizen(g.api_actor, citizen_id, audit_view=False)
    # A protected person (or one whose use is stopped) is answered as if there were none.
    hidden, stopped = protection.split_visible(g.api_actor, [citizen.id])
    if hidden:
        protection.report_search(g.api_actor, hidden, "api.citizen")
        db.session.commit()
    if hidden or stopped:
        raise NotFound("相談者が見つかりません。")
    audit.record(g.api_actor, "view", "citizen", citizen.id)
    return citizen_dict(citizen)


# --- FAQ (public) ----------------------------------------------------------------------------


def faq_dict(entry, *, with_visibility: bool = False) -> dict:
    data = {
        "id": entry.id,
        "question": entry.question,
        "answer": entry.answer,
        "category_id": entry.category_id,
        "published_at": entry.published_at,
    }
    if with_visibility:
        data["visibility"] = str(entry.visibility)
    return data


@bp.route("/faq", methods=["GET"])
@bp.arguments(schemas.FaqListArgs, location="query")
@bp.response(200, schemas.FaqList)
@bp.doc(summary="公開中のFAQ（トークン不要）")
def list_faq(args):
    from faq import services as faq_services

    entries = faq_services.public_entries(args.get("category_id"), limit=args["limit"])
    return {"items": [faq_dict(entry) for entry in entries]}


@bp.route("/faq/<int(min=1, max=2147483647):entry_id>", methods=["GET"])
@bp.response(200, schemas.FaqOut)
@bp.doc(summary="公開中のFAQ 1件（トークン不要）")
def read_faq(entry_id):
    from faq import services as faq_services

    return faq_dict(faq_services.get_public_entry(entry_id))


# The `faq` scope: an approved entry the centre keeps for staff (職員のみ) is no one's personal
# data, so a city's own portal or call-centre tool may show it to its staff. Drafts and
# entries awaiting approval are never served: their redaction has not been checked yet.


@bp.route("/faq/staff", methods=["GET"])
@requires(Scope.FAQ)
@bp.arguments(schemas.FaqListArgs, location="query")
@bp.response(200, schemas.StaffFaqList)
@bp.doc(
    summary="職員向けを含む公開中のFAQ（faq の範囲が必要）",
    description="承認され公開中のFAQを、市民にも公開のもの（public）と職員のみのもの（staff）の"
    "両方返します。下書き・承認待ち・公開終了のFAQは含みません。",
)
def list_staff_faq(args):
    from faq import services as faq_services

    entries = faq_services.public_entries(
        args.get("category_id"), limit=args["limit"], include_staff=True
    )
    return {"items": [faq_dict(entry, with_visibility=True) for entry in entries]}


@bp.route("/faq/staff/<int(min=1, max=2147483647):entry_id>", methods=["GET"])
@requires(Scope.FAQ)
@bp.response(200, schemas.StaffFaqOut)
@bp.doc(summary="職員向けを含む公開中のFAQ 1件（faq の範囲が必要。下書きは 404）")
def read_staff_faq(entry_id):
    from faq import services as faq_services

    entry = faq_services.get_public_entry(entry_id, include_staff=True)
    return faq_dict(entry, with_visibility=True)


# --- reports ---------------------------------------------------------------------------------


@bp.route("/reports/figures", methods=["GET"])
@requires(Scope.REPORTS)
@bp.arguments(schemas.FiguresArgs, location="query")
@bp.response(200, schemas.FiguresOut)
@bp.doc(summary="年度・四半期の相談件数（経路別・分類別）")
def figures(args):
    g.api_actor.require(*reports.REPORT_ROLES)
    period = reports.fiscal_period(args["fiscal_year"], args.get("quarter"))
    return {
        "period": period.label,
        "start": period.start,
        "end": period.end,
        "total": reports.total(period),
        "by_channel": [
            {"key": key, "count": count}
            for key, count in sorted(reports.by_channel(period).items())
        ],
        "by_category": [
            {"key": None if key is None else str(key), "count": count}
            for key, count in sorted(
                reports.by_category(period).items(),
                key=lambda item: (item[0] is None, item[0] or 0),
            )
        ],
    }
