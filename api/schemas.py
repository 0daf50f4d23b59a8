"""The API's marshmallow schemas: they validate requests and describe them in the OpenAPI
document, from one definition (flask-smorest reads them for both)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from consult import timeutil
from consult.models import Channel, Priority, Status
from consult.services.normalize import strip_controls


class Text(ma.fields.String):
    """A string without control characters or lone surrogates (PostgreSQL refuses NUL)."""

    def __init__(self, *args, multiline: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.multiline = multiline

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        return strip_controls(text, multiline=self.multiline)


def in_range(value) -> None:
    """Years the system (and datetime's arithmetic) can handle; year 1 or 9999 is refused."""
    if not timeutil.in_range(value):
        raise ma.ValidationError(timeutil.OUT_OF_RANGE)


class Strict(ma.Schema):
    class Meta:
        unknown = ma.RAISE
        ordered = True


class ProblemSchema(ma.Schema):
    type = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    code = ma.fields.String(required=True, metadata={"description": "変わらない機械向けのコード"})
    detail = ma.fields.String(required=True)
    errors = ma.fields.List(
        ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String()),
        metadata={"description": "入力の誤り（項目ごと）"},
    )


def _values(enum_cls) -> list[str]:
    return [member.value for member in enum_cls]


# --- tickets ---------------------------------------------------------------------------------


class TicketListArgs(Strict):
    status = ma.fields.String(validate=validate.OneOf(_values(Status)))
    channel = ma.fields.String(validate=validate.OneOf(_values(Channel)))
    category_id = ma.fields.Integer(validate=validate.Range(1, 2**31 - 1))
    assignee_id = ma.fields.Integer(validate=validate.Range(1, 2**31 - 1))
    unassigned = ma.fields.Boolean(load_default=False)
    include_closed = ma.fields.Boolean(load_default=False)
    cursor = Text(
        validate=validate.Length(max=60), metadata={"description": "前のページの next_cursor"}
    )
    limit = ma.fields.Integer(load_default=50, validate=validate.Range(1, 200))


class CitizenOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(allow_none=True)
    kana = ma.fields.String(allow_none=True)
    address = ma.fields.String(allow_none=True)
    phones = ma.fields.List(ma.fields.String(), required=True)
    emails = ma.fields.List(ma.fields.String(), required=True)


class TicketOut(ma.Schema):
    number = ma.fields.String(required=True, metadata={"example": "2026-000123"})
    subject = ma.fields.String(required=True)
    status = ma.fields.String(required=True, validate=validate.OneOf(_values(Status)))
    channel = ma.fields.String(required=True, validate=validate.OneOf(_values(Channel)))
    priority = ma.fields.String(required=True, validate=validate.OneOf(_values(Priority)))
    category_id = ma.fields.Integer(allow_none=True, required=True)
    assignee_id = ma.fields.Integer(allow_none=True, required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    last_activity_at = ma.fields.AwareDateTime(required=True)
    closed_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    citizen = ma.fields.Nested(
        CitizenOut,
        allow_none=True,
        metadata={"description": "個人情報の範囲（personal）を持つトークンにだけ返します"},
    )


class TicketPage(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(TicketOut), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True)


class CitizenIn(Strict):
    name = Text(validate=validate.Length(max=80))
    kana = Text(validate=validate.Length(max=80))
    phone = Text(validate=validate.Length(max=40))
    email = Text(validate=validate.Length(max=254))
    address = Text(validate=validate.Length(max=200))


class TicketIn(Strict):
    subject = Text(required=True, validate=validate.Length(1, 200))
    channel = ma.fields.String(
        load_default=Channel.API.value,
        validate=validate.OneOf(_values(Channel)),
        metadata={
            "description": "相談が届いた経路。省略すると api（外部システム連携）。"
            "連携先が窓口や電話で受けた相談なら counter・phone などを指定"
        },
    )
    message = Text(
        multiline=True,
        validate=validate.Length(max=10_000),
        metadata={"description": "相談者の最初のメッセージ（経過に記録）"},
    )
    priority = ma.fields.String(
        load_default=Priority.NORMAL.value, validate=validate.OneOf(_values(Priority))
    )
    category_id = ma.fields.Integer(validate=validate.Range(1, 2**31 - 1))
    citizen = ma.fields.Nested(CitizenIn)


class StatusIn(Strict):
    status = ma.fields.String(required=True, validate=validate.OneOf(_values(Status)))
    reason = Text(multiline=True, validate=validate.Length(max=10_000))


class AssigneeIn(Strict):
    assignee_id = ma.fields.Integer(
        required=True, allow_none=True, validate=validate.Range(1, 2**31 - 1)
    )


class NoteIn(Strict):
    body = Text(required=True, multiline=True, validate=validate.Length(1, 10_000))


class EntryOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    kind = ma.fields.String(required=True)
    at = ma.fields.AwareDateTime(required=True)
    author_id = ma.fields.Integer(allow_none=True, required=True)
    body = ma.fields.String(required=True)


class EntryList(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(EntryOut), required=True)


# --- handoffs and bookings ----------------------------------------------------------------------


class HandoffOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    ticket_number = ma.fields.String(required=True)
    department_id = ma.fields.Integer(required=True)
    state = ma.fields.String(required=True)
    response = ma.fields.String(required=True)
    urgency = ma.fields.String(required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    due_at = ma.fields.AwareDateTime(required=True)
    accepted_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    done_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    summary = ma.fields.String(
        metadata={"description": "依頼の内容（personal の範囲があるときだけ）"}
    )
    record_action = ma.fields.String(allow_none=True)
    record_outcome = ma.fields.String(allow_none=True)


class HandoffList(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(HandoffOut), required=True)


class HandoffStepIn(Strict):
    step = ma.fields.String(
        required=True,
        validate=validate.OneOf(["accept", "on_the_way", "arrive", "finish", "decline"]),
        metadata={"description": "受付・向かっています・到着・対応記録（完了）・差し戻し"},
    )
    eta_minutes = ma.fields.Integer(
        validate=validate.Range(1, 2**31 - 1), metadata={"description": "on_the_way のとき"}
    )
    action = Text(multiline=True, validate=validate.Length(max=10_000))
    outcome = Text(multiline=True, validate=validate.Length(max=10_000))
    follow_up = Text(multiline=True, validate=validate.Length(max=10_000))
    follow_up_by = Text(validate=validate.Length(max=120))
    reason = Text(multiline=True, validate=validate.Length(max=10_000))


class SlotArgs(Strict):
    mode = ma.fields.String(
        validate=validate.OneOf(["counter", "phone", "video", "branch_video"]),
        metadata={
            "description": "相談の方法: counter（窓口）・phone（電話）・video（オンライン）・"
            "branch_video（支所からのオンライン相談。office_id が必要）。"
            "kind_id を指定するときは省略できます（指定するなら専門相談の方法と同じもの）"
        },
    )
    kind_id = ma.fields.Integer(
        validate=validate.Range(1, 2**31 - 1),
        metadata={
            "description": "専門相談の種類（/api/v1/bookings/kinds の id）。"
            "指定するとその専門相談の枠（実施日・時間・定員は種類ごと）を返します"
        },
    )
    office_id = ma.fields.Integer(
        validate=validate.Range(1, 2**31 - 1),
        metadata={
            "description": "支所（/api/v1/bookings/offices の id）。mode=branch_video のときだけ"
            "指定し、そのときは必須。枠と定員はセンターのもので、どの支所でも同じです"
        },
    )
    start = ma.fields.Date(validate=in_range, metadata={"description": "最初の日（省略時は今日）"})
    days = ma.fields.Integer(load_default=7, validate=validate.Range(1, 62))


class SlotOut(ma.Schema):
    starts_at = ma.fields.AwareDateTime(required=True)
    ends_at = ma.fields.AwareDateTime(required=True)
    capacity = ma.fields.Integer(required=True)
    free = ma.fields.Integer(required=True)


class SlotList(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(SlotOut), required=True)


class SessionKindOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    description = ma.fields.String(allow_none=True, required=True)
    mode = ma.fields.String(
        required=True,
        validate=validate.OneOf(["counter", "phone", "video"]),
        metadata={"description": "専門相談の方法"},
    )
    slot_minutes = ma.fields.Integer(required=True, metadata={"description": "1回の長さ（分）"})
    capacity = ma.fields.Integer(required=True, metadata={"description": "1枠の定員"})


class SessionKindList(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(SessionKindOut), required=True)


class OfficeOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    address = ma.fields.String(allow_none=True, required=True)


class OfficeList(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(OfficeOut), required=True)


class BookingArgs(Strict):
    first = ma.fields.Date(required=True, data_key="from", validate=in_range)
    last = ma.fields.Date(required=True, data_key="to", validate=in_range)


class BookingOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    reference = ma.fields.String(required=True)
    mode = ma.fields.String(required=True)
    status = ma.fields.String(required=True)
    starts_at = ma.fields.AwareDateTime(required=True)
    ends_at = ma.fields.AwareDateTime(required=True)
    ticket_number = ma.fields.String(allow_none=True, required=True)
    name = ma.fields.String(required=True)
    kana = ma.fields.String(required=True)


class BookingList(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(BookingOut), required=True)


# --- citizens --------------------------------------------------------------------------------


class CitizenSearchArgs(Strict):
    name = Text(validate=validate.Length(max=80))
    phone = Text(validate=validate.Length(max=40))
    email = Text(validate=validate.Length(max=254))


class CitizenList(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(CitizenOut), required=True)


# --- FAQ -------------------------------------------------------------------------------------


class FaqListArgs(Strict):
    category_id = ma.fields.Integer(validate=validate.Range(1, 2**31 - 1))
    limit = ma.fields.Integer(load_default=50, validate=validate.Range(1, 200))


class FaqOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    question = ma.fields.String(required=True)
    answer = ma.fields.String(required=True, metadata={"description": "Markdown"})
    category_id = ma.fields.Integer(allow_none=True, required=True)
    published_at = ma.fields.AwareDateTime(allow_none=True, required=True)


class FaqList(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(FaqOut), required=True)


class StaffFaqOut(FaqOut):
    visibility = ma.fields.String(
        required=True,
        validate=validate.OneOf(["public", "staff"]),
        metadata={"description": "public（市民にも公開）または staff（職員のみ）"},
    )


class StaffFaqList(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(StaffFaqOut), required=True)


# --- reports ---------------------------------------------------------------------------------


class FiguresArgs(Strict):
    fiscal_year = ma.fields.Integer(required=True, validate=validate.Range(2000, 2100))
    quarter = ma.fields.Integer(validate=validate.Range(1, 4))


class CountOut(ma.Schema):
    key = ma.fields.String(allow_none=True, required=True)
    count = ma.fields.Integer(required=True)


class FiguresOut(ma.Schema):
    period = ma.fields.String(required=True)
    start = ma.fields.Date(required=True)
    end = ma.fields.Date(required=True)
    total = ma.fields.Integer(required=True)
    by_channel = ma.fields.List(ma.fields.Nested(CountOut), required=True)
    by_category = ma.fields.List(ma.fields.Nested(CountOut), required=True)
