"""Booking pages: public (no login, Japanese/English) and staff (desk and administrator)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale, gettext
from wtforms import IntegerField
from wtforms.validators import InputRequired, NumberRange

from channels.booking import branch, forms, ical, services, specialist
from channels.booking.models import BookingStatus, Mode
from consult import urls
from consult.extensions import db
from consult.forms import ConfirmForm, choices
from consult.models import STAFF_ROLES, Role
from consult.services import calendar
from consult.services import staff as staff_service
from consult.services.actor import DESK_ROLES
from consult.services.calendar import DayType, centre_hours, day_type, holiday_name
from consult.services.errors import DomainError, NotFound
from consult.timeutil import TOKYO, WEEKDAYS_JA, in_range, to_tokyo, tokyo_today
from consult.web import actor, attempt, public, rate_limited, roles_required

public_bp = Blueprint("booking", __name__, url_prefix="/booking")
staff_bp = Blueprint("booking_staff", __name__, url_prefix="/booking")

WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
ADMIN = (Role.ADMIN,)
FEED_ROLES = (*DESK_ROLES, Role.ADMIN)


def check_rate_limit(app) -> None:
    """Refuse an unreadable MADOGUCHI_BOOKING_RATE_LIMIT at start, not at the first booking."""
    from channels.booking.settings import BookingSettings
    from consult.services import ratelimit
    from consult.settings import section

    ratelimit.parse(section(BookingSettings, app).rate_limit)


def _lang() -> str:
    return str(get_locale() or "ja")


def format_slot(moment: datetime, lang: str | None = None, with_date: bool = True) -> str:
    local = to_tokyo(moment)
    lang = lang or _lang()
    if not with_date:
        return f"{local:%H:%M}"
    if lang == "en":
        return f"{WEEKDAYS_EN[local.weekday()]} {local.day} {local:%b %Y}, {local:%H:%M}"
    return (
        f"{local.year}年{local.month}月{local.day}日({WEEKDAYS_JA[local.weekday()]}) {local:%H:%M}"
    )


def format_day(day: date, lang: str | None = None) -> str:
    if (lang or _lang()) == "en":
        return f"{WEEKDAYS_EN[day.weekday()]} {day.day} {day:%b}"
    return f"{day.month}月{day.day}日({WEEKDAYS_JA[day.weekday()]})"


@public_bp.app_template_filter("slot_time")
def slot_time_filter(moment, lang=None, with_date=True):
    return format_slot(moment, lang, with_date)


@public_bp.app_template_filter("slot_day")
def slot_day_filter(day, lang=None):
    return format_day(day, lang)


def _mode(raw: str | None) -> Mode | None:
    try:
        return Mode(raw or "")
    except ValueError:
        return None


def _start(raw: str | None) -> datetime | None:
    try:
        return datetime.strptime(raw or "", "%Y-%m-%dT%H:%M").replace(tzinfo=TOKYO)
    except ValueError:
        return None


def _category_id(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() else None


def _kind(raw: str | None):
    """The active specialist-session kind a link names, None for the centre's ordinary slots,
    or NotFound (a made-up or withdrawn kind)."""
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 9:
        raise NotFound("この専門相談は現在予約を受け付けていません。")
    return specialist.get_kind(int(raw))


def _categories():
    return staff_service.list_categories(active_only=True)


def _message(error: DomainError) -> str:
    """Service messages are Japanese msgids; the public pages show them translated."""
    return gettext(error.message)


# --- public ----------------------------------------------------------------------------------


@public_bp.route("/")
@public
def index():
    offices = branch.list_offices(active_only=True) if branch.offered() else []
    return render_template(
        "booking/index.html",
        categories=_categories(),
        modes=[m for m in Mode if offices or m is not Mode.BRANCH_VIDEO],
        kinds=specialist.list_kinds(active_only=True),
        offices=offices,
    )


def _office(mode: Mode | None, raw: str | None):
    """The branch office a link names for 支所からのオンライン相談 (None for other modes), or
    NotFound (none chosen, made up, closed)."""
    if mode is not Mode.BRANCH_VIDEO:
        return None
    if not raw or not raw.isdigit() or len(raw) > 9:
        raise NotFound("相談に行く支所を選んでください。")
    return branch.get_office(int(raw))


def _week_context(mode: Mode, week: int, link, kind=None):
    week = max(0, min(week, 8))
    first = tokyo_today() + timedelta(days=7 * week)
    if kind is not None:
        slots = specialist.kind_slots(kind, start=first, days=7)
    else:
        slots = services.free_slots([mode], start=first, days=7)[mode]
    days = []
    by_day = services.group_by_day(slots)
    for offset in range(7):
        day = first + timedelta(days=offset)
        # A specialist session runs on its own days: no 休業日 for the days it does not run.
        is_open = kind is not None or centre_hours(day) is not None
        days.append({"day": day, "open": is_open, "slots": by_day.get(day, [])})
    return {"days": days, "week": week, "link": link, "mode": mode, "last_week": 8, "kind": kind}


@public_bp.route("/slots")
@public
def slots():
    try:
        kind = _kind(request.args.get("kind"))
    except NotFound as error:
        flash(_message(error), "error")
        return redirect(url_for("booking.index"))
    mode = kind.mode if kind else _mode(request.args.get("mode"))
    category = _category_id(request.args.get("category"))
    if mode is None:
        flash(gettext("相談の方法を選んでください。"), "error")
        return redirect(url_for("booking.index"))
    try:
        office = _office(mode, request.args.get("branch"))
    except NotFound as error:
        flash(_message(error), "error")
        return redirect(url_for("booking.index"))
    week = request.args.get("week", "0")
    week_no = int(week) if week.isdigit() else 0

    kind_arg = kind.id if kind else ""
    branch_arg = office.id if office else ""

    def link(slot):
        return url_for(
            "booking.details",
            mode=mode.value,
            category=category or "",
            kind=kind_arg,
            branch=branch_arg,
            start=f"{slot.starts_at:%Y-%m-%dT%H:%M}",
        )

    def page(n):
        return url_for(
            "booking.slots",
            mode=mode.value,
            category=category or "",
            kind=kind_arg,
            branch=branch_arg,
            week=n,
        )

    return render_template(
        "booking/slots.html",
        page=page,
        office=office,
        **_week_context(mode, week_no, link, kind),
    )


def _full_page(error: services.SlotFull, link_for):
    kind = specialist.get_kind(error.kind_id, active_only=False) if error.kind_id else None
    nearest = services.nearest_free(error.mode, error.starts_at, kind=kind)
    return render_template(
        "booking/full.html",
        nearest=nearest,
        link_for=link_for,
        mode=error.mode,
        asked=error.starts_at,
    ), 409


@public_bp.route("/details", methods=["GET", "POST"])
@public
@rate_limited("booking", "BOOKING_RATE_LIMIT")
def details():
    values = request.form if request.method == "POST" else request.args
    try:
        kind = _kind(values.get("kind"))
    except NotFound as error:
        return render_template("booking/problem.html", message=_message(error)), 404
    form = forms.details_form(kind, _lang(), values)
    if kind is not None:
        form.mode.data = kind.mode.value  # the kind decides how the session is held
    mode = _mode(form.mode.data)
    start = _start(form.start.data)
    if mode is None or start is None:
        return render_template(
            "booking/problem.html",
            message=gettext("予約の日時が正しくありません。最初からやり直してください。"),
        ), 400
    try:
        office = _office(mode, form.branch.data)
    except NotFound as error:
        return render_template("booking/problem.html", message=_message(error)), 404
    category_id = _category_id(form.category.data)
    status = 200
    if request.method == "POST":
        status = 422
        if form.website.data:
            # Only a bot sees this field; tell it nothing useful and book nothing.
            return render_template(
                "booking/problem.html",
                message=gettext("送信できませんでした。最初からやり直してください。"),
            ), 400
        if form.validate():
            data = services.BookingInput(
                mode=mode.value,
                starts_at=start,
                name=form.name.data,
                kana=form.kana.data,
                content=form.content.data,
                category_id=category_id,
                email=form.email.data,
                phone=form.phone.data,
                language=_lang(),
                kind_id=kind.id if kind else None,
                answers=forms.answers_of(form) if kind else None,
                branch_office_id=office.id if office else None,
            )
            try:
                booking = services.create_booking(actor(), data)
                db.session.flush()
            except services.SlotFull as error:
                db.session.rollback()

                def link_for(slot):
                    return url_for(
                        "booking.details",
                        mode=mode.value,
                        category=category_id or "",
                        kind=kind.id if kind else "",
                        branch=office.id if office else "",
                        start=f"{slot.starts_at:%Y-%m-%dT%H:%M}",
                    )

                return _full_page(error, link_for)
            except DomainError as error:
                db.session.rollback()
                form.form_errors.append(_message(error))
            else:
                token = services.manage_token(booking)
                return redirect(url_for("booking.manage", token=token, done=1), 303)
    elif form.start.data:
        try:
            if kind is not None:
                specialist.check_kind_slot(kind, start.astimezone(TOKYO))
            else:
                services.check_slot(mode, start.astimezone(TOKYO))
        except DomainError as error:
            form.form_errors.append(_message(error))
            status = 422
    category = db.session.get(services.Category, category_id) if category_id else None
    return render_template(
        "booking/details.html",
        form=form,
        mode=mode,
        start=start,
        category=category,
        kind=kind,
        office=office,
        answer_fields=[f for name, f in form._fields.items() if name.startswith("answer_")],
        # After a POST with errors, the language links still lead back to this slot.
        language_carry={
            "mode": mode.value,
            "start": form.start.data,
            "category": form.category.data,
            "kind": kind.id if kind else "",
            "branch": office.id if office else "",
        },
    ), status


def _booking_or_invalid(token: str):
    try:
        return services.booking_from_token(token), None
    except NotFound:
        return None, (render_template("booking/invalid_link.html"), 404)


@public_bp.route("/manage/<token>")
@public
def manage(token):
    booking, problem = _booking_or_invalid(token)
    if problem:
        return problem
    return render_template(
        "booking/manage.html",
        booking=booking,
        token=token,
        done=request.args.get("done") == "1",
        form=ConfirmForm(),
        BookingStatus=BookingStatus,
        place=ical.location(booking, gettext, _lang()),
    )


@public_bp.route("/manage/<token>/slots")
@public
def move_slots(token):
    booking, problem = _booking_or_invalid(token)
    if problem:
        return problem
    week = request.args.get("week", "0")

    def link(slot):
        return url_for("booking.move", token=token, start=f"{slot.starts_at:%Y-%m-%dT%H:%M}")

    def page(n):
        return url_for("booking.move_slots", token=token, week=n)

    return render_template(
        "booking/slots.html",
        page=page,
        moving=booking,
        **_week_context(booking.mode, int(week) if week.isdigit() else 0, link, booking.kind),
    )


@public_bp.route("/manage/<token>/move", methods=["GET", "POST"])
@public
@rate_limited("booking", "BOOKING_RATE_LIMIT")
def move(token):
    booking, problem = _booking_or_invalid(token)
    if problem:
        return problem
    form = forms.MoveForm(request.form if request.method == "POST" else request.args)
    start = _start(form.start.data)
    if start is None:
        return render_template(
            "booking/problem.html",
            message=gettext("予約の日時が正しくありません。最初からやり直してください。"),
        ), 400
    error_message = None
    status = 422 if request.method == "POST" else 200
    if request.method == "GET":
        form.version.data = str(booking.sequence)
    elif form.validate():
        seen = form.version.data
        try:
            services.move_booking(
                actor(),
                booking,
                start,
                # Without a version (a page from before it was added) the booking as read now.
                seen_sequence=None if not seen else int(seen) if seen.isdigit() else -1,
            )
            db.session.flush()
        except services.SlotFull as error:
            db.session.rollback()
            return _full_page(
                error,
                lambda s: url_for(
                    "booking.move", token=token, start=f"{s.starts_at:%Y-%m-%dT%H:%M}"
                ),
            )
        except services.BookingChanged as error:
            db.session.rollback()
            error_message = _message(error)
            status = 409
        except DomainError as error:
            db.session.rollback()
            error_message = _message(error)
        else:
            flash(gettext("予約の日時を変更しました。確認のメールをお送りします。"), "success")
            return redirect(url_for("booking.manage", token=token), 303)
    return render_template(
        "booking/move.html",
        booking=booking,
        form=form,
        start=start,
        token=token,
        error_message=error_message,
        language_carry={"start": form.start.data},
    ), status


@public_bp.route("/manage/<token>/cancel", methods=["POST"])
@public
@rate_limited("booking", "BOOKING_RATE_LIMIT")
def cancel(token):
    booking, problem = _booking_or_invalid(token)
    if problem:
        return problem
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            services.cancel_booking(actor(), booking)
            db.session.flush()
        except DomainError as error:
            db.session.rollback()
            flash(_message(error), "error")
        else:
            flash(gettext("予約を取り消しました。"), "success")
    return redirect(url_for("booking.manage", token=token), 303)


@public_bp.route("/privacy")
@public
def privacy():
    return render_template("booking/privacy.html")


@public_bp.route("/feeds/<token>.ics")
@public
def feed(token):
    found = services.feed_for_token(token)
    bookings = services.feed_bookings(found)
    body = ical.feed(f"予約 {found.kind} {found.key}", bookings)
    return Response(body, mimetype="text/calendar")


# --- staff -----------------------------------------------------------------------------------


def _day_arg() -> date:
    try:
        day = date.fromisoformat(request.args.get("date", ""))
    except ValueError:
        return tokyo_today()
    return day if in_range(day) else tokyo_today()


def _rooms(day: date) -> list[tuple[Mode, int]]:
    table = services.capacities()
    kind = day_type(day).value
    return [(mode, n) for mode in Mode for n in range(1, table[mode][kind] + 1)]


@staff_bp.route("/staff/day")
@roles_required(*DESK_ROLES)
def day():
    current = _day_arg()
    bookings = services.bookings_between(actor(), current, current)
    rooms = _rooms(current)
    # Specialist sessions have seats of their own: listed apart, below the rooms' grid.
    centre = [b for b in bookings if b.kind_id is None]
    for b in centre:
        if b.seat_no and (b.mode, b.seat_no) not in rooms:
            rooms.append((b.mode, b.seat_no))
    hours = centre_hours(current)
    times = []
    if hours:
        times = [s for s, _ in services.slot_times(current, hours, services.config().slot_minutes)]
    grid = {}
    for b in centre:
        if b.status is not BookingStatus.CANCELLED:
            grid[(to_tokyo(b.starts_at), b.mode, b.seat_no)] = b
    return render_template(
        "booking/staff/day.html",
        day=current,
        bookings=bookings,
        rooms=rooms,
        times=times,
        grid=grid,
        hours=hours,
        hours_text=calendar.hours_text(current),
        duty=calendar.duty_department_for(current),
        day_label=day_type(current).label,
        holiday=holiday_name(current),
        timedelta=timedelta,
        BookingStatus=BookingStatus,
    )


@staff_bp.route("/staff/week")
@roles_required(*DESK_ROLES)
def week():
    current = _day_arg()
    first = current - timedelta(days=current.weekday())
    last = first + timedelta(days=6)
    bookings = services.bookings_between(actor(), first, last)
    hours = calendar.centre_hours_between(first, last)
    duty = calendar.duty_departments_between(first, last)
    days = []
    for offset in range(7):
        d = first + timedelta(days=offset)
        days.append(
            {
                "day": d,
                "label": day_type(d).label,
                "hours": hours[d],
                "duty": duty.get(d) if day_type(d) is not DayType.WEEKDAY else None,
                "bookings": [b for b in bookings if to_tokyo(b.starts_at).date() == d],
            }
        )
    return render_template(
        "booking/staff/week.html",
        days=days,
        first=first,
        timedelta=timedelta,
    )


@staff_bp.route("/staff/new", methods=["GET", "POST"])
@roles_required(*DESK_ROLES)
def staff_new():
    form = forms.StaffBookingForm(
        request.form if request.method == "POST" else None,
        start=request.args.get("start", ""),
        mode=request.args.get("mode", "phone"),
    )
    form.mode.choices = choices((m.value, m.label) for m in Mode if m is not Mode.BRANCH_VIDEO)
    form.category_id.choices = choices(((c.id, c.name) for c in _categories()), blank="未分類")
    if form.validate_on_submit():
        start = _start(form.start.data)
        if start is None:
            form.start.errors.append("開始日時は 2026-12-01T10:00 の形で入力してください。")
        else:
            data = services.BookingInput(
                mode=form.mode.data,
                starts_at=start,
                name=form.name.data,
                kana=form.kana.data,
                content=form.content.data,
                category_id=form.category_id.data,
                email=form.email.data,
                phone=form.phone.data,
            )
            ok, booking = attempt(
                lambda: services.create_booking(actor(), data), "予約を登録しました。"
            )
            if ok:
                return redirect(url_for("booking_staff.detail", booking_id=booking.id))
    return render_template("booking/staff/new.html", form=form), (
        422 if request.method == "POST" else 200
    )


def _version(value: str | None) -> int | None:
    """The booking's SEQUENCE that a form carried back (None from a form without it)."""
    return int(value) if (value or "").isdigit() else None


@staff_bp.route("/staff/b/<int:booking_id>", methods=["GET", "POST"])
@roles_required(*DESK_ROLES)
def detail(booking_id):
    booking = services.staff_get(actor(), booking_id)
    form = forms.BookingDetailsForm(obj=booking)
    if request.method == "GET":
        form.version.data = str(booking.sequence)
    desk = staff_service.list_staff(include_inactive=False)
    form.staff_id.choices = choices(
        ((s.id, s.full_name) for s in desk if s.active and s.role in DESK_ROLES), blank="未定"
    )
    if form.validate_on_submit():
        ok, _ = attempt(
            lambda: services.set_details(
                actor(),
                booking,
                form.video_url.data,
                form.staff_id.data,
                seen_sequence=_version(form.version.data),
            ),
            "予約の詳細を保存しました。",
        )
        if ok:
            return redirect(url_for("booking_staff.detail", booking_id=booking.id))
    return render_template(
        "booking/staff/detail.html",
        booking=booking,
        form=form,
        action=ConfirmForm(),
        check_in_form=forms.CheckInForm(),
        candidates=services.citizen_candidates(actor(), booking),
        BookingStatus=BookingStatus,
    ), (422 if request.method == "POST" else 200)


def _booking_action(booking_id: int, operation, success: str):
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    booking = db.session.get(services.Booking, booking_id)
    if booking is None:
        abort(404)
    ok, result = attempt(lambda: operation(booking), success)
    return booking, ok, result


@staff_bp.route("/staff/b/<int:booking_id>/check-in", methods=["POST"])
@roles_required(*DESK_ROLES)
def check_in(booking_id):
    form = forms.CheckInForm()
    if not form.validate_on_submit():
        abort(400)
    booking = db.session.get(services.Booking, booking_id)
    if booking is None:
        abort(404)
    ok, ticket = attempt(
        lambda: services.check_in(actor(), booking, choice=form.citizen_choice.data),
        "受付しました。相談票を作成しました。",
    )
    if ok:
        return redirect(url_for("desk.ticket", number=ticket.number))
    return redirect(url_for("booking_staff.detail", booking_id=booking_id))


@staff_bp.route("/staff/b/<int:booking_id>/no-show", methods=["POST"])
@roles_required(*DESK_ROLES)
def no_show(booking_id):
    _booking_action(
        booking_id, lambda b: services.mark_no_show(actor(), b), "無断欠席として記録しました。"
    )
    return redirect(url_for("booking_staff.detail", booking_id=booking_id))


@staff_bp.route("/staff/b/<int:booking_id>/cancel", methods=["POST"])
@roles_required(*DESK_ROLES)
def staff_cancel(booking_id):
    _booking_action(
        booking_id, lambda b: services.cancel_booking(actor(), b), "予約を取り消しました。"
    )
    return redirect(url_for("booking_staff.detail", booking_id=booking_id))


@staff_bp.route("/staff/feeds", methods=["GET", "POST"])
@roles_required(*FEED_ROLES)
def feeds():
    form = ConfirmForm()
    new_url = None
    if form.validate_on_submit():
        kind = request.form.get("kind", "")
        key = str(current_user_id()) if kind == "staff" else request.form.get("key", "")
        if kind not in ("staff", "room"):
            abort(400)
        ok, token = attempt(lambda: services.reset_feed(actor(), kind, key))
        if ok:
            new_url = urls.base_url() + url_for("booking.feed", token=token)
    rooms = [(m, n) for m in Mode for n in range(1, max(services.capacities()[m].values()) + 1)]
    return render_template("booking/staff/feeds.html", form=form, rooms=rooms, new_url=new_url)


def current_user_id() -> int:
    from flask_login import current_user

    return current_user.id


# --- administrator -----------------------------------------------------------------------------


def _settings_form():
    table = services.capacities()

    class Dynamic(forms.SettingsForm):
        pass

    for mode in Mode:
        for kind in DayType:
            setattr(
                Dynamic,
                f"cap_{mode.value}_{kind.value}",
                IntegerField(
                    f"{mode.label}・{kind.label}",
                    default=table[mode][kind.value],
                    validators=[
                        InputRequired("数を入力してください。"),
                        NumberRange(min=0, max=50, message="0〜50で入力してください。"),
                    ],
                ),
            )
    return Dynamic(
        request.form if request.method == "POST" else None,
        slot_minutes=services.config().slot_minutes,
    )


@staff_bp.route("/admin/settings", methods=["GET", "POST"])
@roles_required(*ADMIN)
def admin_settings():
    form = _settings_form()
    if form.validate_on_submit():
        table = {
            mode: {
                kind.value: getattr(form, f"cap_{mode.value}_{kind.value}").data for kind in DayType
            }
            for mode in Mode
        }
        ok, _ = attempt(
            lambda: services.save_settings(actor(), form.slot_minutes.data, table),
            "予約の設定を保存しました。",
        )
        if ok:
            return redirect(url_for("booking_staff.admin_settings"))
    return render_template(
        "booking/admin/settings.html",
        form=form,
        modes=list(Mode),
        kinds=list(DayType),
    ), (422 if request.method == "POST" else 200)


# The calendar pages are the kernel's now (consult/views/calendar.py): the addresses (and the
# endpoint names) the administrators and their bookmarks know still lead there. 308 keeps the
# method, so a form posted from a page opened before the move still saves.


@staff_bp.route("/admin/exceptions", methods=["GET", "POST"])
@roles_required(*ADMIN)
def admin_exceptions():
    return redirect(url_for("calendar_admin.exceptions"), code=308)


@staff_bp.post("/admin/exceptions/<int:exception_id>/delete")
@roles_required(*ADMIN)
def admin_exception_delete(exception_id):
    return redirect(url_for("calendar_admin.exception_delete", exception_id=exception_id), 308)


@staff_bp.route("/admin/rota", methods=["GET", "POST"])
@roles_required(*ADMIN)
def admin_rota():
    return redirect(url_for("calendar_admin.rota"), code=308)


@staff_bp.get("/admin/rota.ics")
@roles_required(*ADMIN, *DESK_ROLES)
def admin_rota_ics():
    return redirect(url_for("calendar_admin.rota_ics"), code=308)


# --- specialist sessions -----------------------------------------------------------------------

ALL_STAFF = STAFF_ROLES


@staff_bp.route("/staff/specialist")
@roles_required(*ALL_STAFF)
def specialist_list():
    """The specialist's own list: the sessions of the kinds they hold, four weeks from a day."""
    first = _day_arg()
    me = actor()
    return render_template(
        "booking/staff/specialist.html",
        first=first,
        kinds=specialist.kinds_of(me.staff),
        bookings=specialist.specialist_bookings(me, first),
        BookingStatus=BookingStatus,
        timedelta=timedelta,
    )


def _clock(raw: str | None):
    from datetime import time as clock

    hours, _, minutes = (raw or "").partition(":")
    return clock(int(hours), int(minutes)) if hours.isdigit() and minutes.isdigit() else None


def _kind_form(kind=None):
    data = None
    if kind is not None and request.method == "GET":
        data = {
            "name": kind.name,
            "name_en": kind.name_en or "",
            "description": kind.description or "",
            "description_en": kind.description_en or "",
            "mode": kind.mode.value,
            "specialist_id": kind.specialist_id,
            "weekdays": [int(d) for d in kind.weekdays],
            "dates_only": kind.dates_only,
            "dates": "\n".join(d.day.isoformat() for d in kind.dates),
            "opens": f"{kind.opens:%H:%M}",
            "closes": f"{kind.closes:%H:%M}",
            "slot_minutes": kind.slot_minutes,
            "capacity": kind.capacity,
            "questions": specialist.questions_text(kind),
            "active": kind.active,
        }
    form = forms.KindForm(request.form if request.method == "POST" else None, data=data)
    if kind is None and request.method == "GET":
        form.opens.data, form.closes.data = "10:00", "16:00"
        form.slot_minutes.data, form.capacity.data = 60, 1
    form.mode.choices = choices((m.value, m.label) for m in Mode if m is not Mode.BRANCH_VIDEO)
    members = staff_service.list_staff(include_inactive=False)
    form.specialist_id.choices = choices(
        ((s.id, s.full_name) for s in members if s.active), blank="未定"
    )
    form.weekdays.choices = choices(enumerate(specialist.WEEKDAY_LABELS))
    return form


def _save_kind(form, kind=None):
    data = specialist.KindInput(
        name=form.name.data,
        name_en=form.name_en.data,
        description=form.description.data,
        description_en=form.description_en.data,
        mode=form.mode.data,
        specialist_id=form.specialist_id.data,
        weekdays=list(form.weekdays.data or []),
        dates_only=form.dates_only.data,
        dates=form.dates.data or "",
        opens=_clock(form.opens.data),
        closes=_clock(form.closes.data),
        slot_minutes=form.slot_minutes.data,
        capacity=form.capacity.data,
        questions=form.questions.data or "",
        active=form.active.data,
    )
    return attempt(
        lambda: specialist.save_kind(actor(), kind, data), "専門相談の設定を保存しました。"
    )


@staff_bp.route("/admin/kinds")
@roles_required(*ADMIN)
def admin_kinds():
    return render_template(
        "booking/admin/kinds.html",
        kinds=specialist.list_kinds(),
        format_weekdays=specialist.format_weekdays,
    )


@staff_bp.route("/admin/kinds/new", methods=["GET", "POST"])
@roles_required(*ADMIN)
def admin_kind_new():
    form = _kind_form()
    if form.validate_on_submit():
        ok, kind = _save_kind(form)
        if ok:
            return redirect(url_for("booking_staff.admin_kind", kind_id=kind.id))
    return render_template("booking/admin/kind.html", form=form, kind=None), (
        422 if request.method == "POST" else 200
    )


@staff_bp.route("/admin/kinds/<int:kind_id>", methods=["GET", "POST"])
@roles_required(*ADMIN)
def admin_kind(kind_id):
    kind = specialist.get_kind(kind_id, active_only=False)
    form = _kind_form(kind)
    if form.validate_on_submit():
        ok, _ = _save_kind(form, kind)
        if ok:
            return redirect(url_for("booking_staff.admin_kind", kind_id=kind.id))
    return render_template("booking/admin/kind.html", form=form, kind=kind), (
        422 if request.method == "POST" else 200
    )


# --- branch offices (支所からのオンライン相談) -------------------------------------------------


def _save_office(form, office=None):
    return attempt(
        lambda: branch.save_office(
            actor(),
            office,
            name=form.name.data,
            name_en=form.name_en.data,
            address=form.address.data,
            active=form.active.data,
        ),
        "支所を保存しました。",
    )


@staff_bp.route("/admin/branches", methods=["GET", "POST"])
@roles_required(*ADMIN)
def admin_branches():
    form = forms.BranchOfficeForm()
    if form.validate_on_submit():
        ok, _office_row = _save_office(form)
        if ok:
            return redirect(url_for("booking_staff.admin_branches"))
    return render_template(
        "booking/admin/branches.html",
        offices=branch.list_offices(),
        form=form,
        offered=branch.offered(),
    ), (422 if request.method == "POST" else 200)


@staff_bp.route("/admin/branches/<int:office_id>", methods=["GET", "POST"])
@roles_required(*ADMIN)
def admin_branch(office_id):
    office = branch.get_office(office_id, active_only=False)
    form = forms.BranchOfficeForm(obj=office if request.method == "GET" else None)
    if form.validate_on_submit():
        ok, _ = _save_office(form, office)
        if ok:
            return redirect(url_for("booking_staff.admin_branches"))
    return render_template("booking/admin/branch.html", form=form, office=office), (
        422 if request.method == "POST" else 200
    )


@staff_bp.route("/branch")
@roles_required(Role.BRANCH)
def branch_home():
    """The branch account's home: its own branch's sessions, each with the meeting link."""
    office, rows = branch.sessions(actor())
    today = tokyo_today()
    return render_template(
        "booking/staff/branch.html",
        office=office,
        today=[r for r in rows if to_tokyo(r.starts_at).date() == today],
        upcoming=[r for r in rows if to_tokyo(r.starts_at).date() != today],
        days=branch.UPCOMING_DAYS,
        shown_days=[today + timedelta(days=i) for i in range(branch.UPCOMING_DAYS + 1)],
    )
