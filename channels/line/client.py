"""The calls to LINE's Messaging API through line-bot-sdk v3, and nothing else.

``linebot.v3.messaging`` takes about two seconds to import, so it is imported inside the
functions that need it, never when the app starts.
"""

from __future__ import annotations

from dataclasses import dataclass

LINE_API_HOST = "https://api.line.me"
LINE_DATA_HOST = "https://api-data.line.me"


@dataclass(frozen=True)
class LineSettings:
    secret: str
    token: str
    api_host: str
    data_host: str

    @property
    def configured(self) -> bool:
        return bool(self.secret and self.token)


def settings_from(config) -> LineSettings:
    """The API's hosts and credentials from the channel's settings section.

    The SDK sends blob downloads to api-data.line.me unless a host is given; a test or proxy
    host (anything but LINE's own) serves both.
    """
    api_host = (config.api_host or LINE_API_HOST).rstrip("/")
    data_host = config.api_data_host.rstrip("/")
    if not data_host:
        data_host = LINE_DATA_HOST if api_host == LINE_API_HOST else api_host
    return LineSettings(
        secret=config.channel_secret,
        token=config.channel_access_token,
        api_host=api_host,
        data_host=data_host,
    )


class ApiError(Exception):
    """LINE answered with an error status; ``body`` is LINE's own answer."""

    def __init__(self, status: int, body: str, headers: dict | None = None):
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body
        # Lower-cased names: a 409 to a repeated narrowcast names the accepted request's id.
        self.headers = headers or {}


def _client(settings: LineSettings, host: str):
    from linebot.v3.messaging import ApiClient, Configuration

    configuration = Configuration(host=host, access_token=settings.token)
    return ApiClient(configuration)


def _text_messages(texts: list[str], quick_reply: list[dict] | None = None):
    """Plain text messages (emojis are not used: plain text is what every LINE client shows);
    ``quick_reply`` puts postback buttons ({label, data}) under the last one, for a step the
    citizen takes explicitly (e.g. linking), never guessed from what they type."""
    from linebot.v3.messaging import PostbackAction, QuickReply, QuickReplyItem, TextMessage

    messages = [TextMessage(text=text) for text in texts]
    if quick_reply and messages:
        messages[-1].quick_reply = QuickReply(
            items=[
                QuickReplyItem(
                    action=PostbackAction(
                        label=item["label"], data=item["data"], displayText=item["label"]
                    )
                )
                for item in quick_reply
            ]
        )
    return messages


def _call(fn):
    from linebot.v3.audience.exceptions import ApiException as AudienceApiException
    from linebot.v3.messaging.exceptions import ApiException

    try:
        return fn()
    except (ApiException, AudienceApiException) as exc:
        body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else exc.body
        headers = {str(k).lower(): str(v) for k, v in dict(exc.headers or {}).items()}
        raise ApiError(int(exc.status or 0), (body or exc.reason or "")[:1000], headers) from exc


def push(
    settings: LineSettings,
    to: str,
    texts: list[str],
    retry_key: str,
    quick_reply: list[dict] | None = None,
) -> None:
    """Push with X-Line-Retry-Key: LINE delivers a retried request with the same key once."""
    from linebot.v3.messaging import MessagingApi, PushMessageRequest

    with _client(settings, settings.api_host) as api_client:
        api = MessagingApi(api_client)
        request = PushMessageRequest(to=to, messages=_text_messages(texts, quick_reply))
        _call(lambda: api.push_message(request, x_line_retry_key=retry_key, _request_timeout=10))


def reply(
    settings: LineSettings,
    reply_token: str,
    texts: list[str],
    quick_reply: list[dict] | None = None,
) -> None:
    from linebot.v3.messaging import MessagingApi, ReplyMessageRequest

    with _client(settings, settings.api_host) as api_client:
        api = MessagingApi(api_client)
        request = ReplyMessageRequest(
            replyToken=reply_token, messages=_text_messages(texts, quick_reply)
        )
        _call(lambda: api.reply_message(request, _request_timeout=10))


def content(settings: LineSettings, message_id: str) -> tuple[bytes, str | None]:
    """The bytes of an image, video, audio or file message, and LINE's content type."""
    from linebot.v3.messaging import MessagingApiBlob

    with _client(settings, settings.data_host) as api_client:
        api = MessagingApiBlob(api_client)
        response = _call(
            lambda: api.get_message_content_with_http_info(message_id, _request_timeout=30)
        )
        content_type = None
        if response.headers is not None:
            content_type = response.headers.get("Content-Type")
        return bytes(response.data), content_type


def profile(settings: LineSettings, user_id: str) -> str | None:
    """The display name of a user who follows the account (GET /v2/bot/profile/{userId});
    None when LINE has no profile for them (404: not a friend, or blocked)."""
    from linebot.v3.messaging import MessagingApi

    with _client(settings, settings.api_host) as api_client:
        api = MessagingApi(api_client)
        try:
            answer = _call(lambda: api.get_profile(user_id, _request_timeout=10))
        except ApiError as error:
            if error.status == 404:
                return None
            raise
        return answer.display_name


MULTICAST_MAX = 500  # user ids per multicast request (LINE's limit)


def multicast(settings: LineSettings, to: list[str], texts: list[str], retry_key: str) -> None:
    """One multicast to at most 500 users, with X-Line-Retry-Key (a retry is delivered once)."""
    from linebot.v3.messaging import MessagingApi, MulticastRequest

    if not to or len(to) > MULTICAST_MAX:
        raise ValueError(f"multicast takes 1 to {MULTICAST_MAX} user ids")
    with _client(settings, settings.api_host) as api_client:
        api = MessagingApi(api_client)
        request = MulticastRequest(to=to, messages=_text_messages(texts))
        _call(lambda: api.multicast(request, x_line_retry_key=retry_key, _request_timeout=30))


@dataclass(frozen=True)
class Quota:
    """The month's messages: the plan's limit (None: no limit) and how many were sent."""

    limit: int | None
    used: int

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.used, 0)


def quota(settings: LineSettings) -> Quota:
    """GET /v2/bot/message/quota and /v2/bot/message/quota/consumption."""
    from linebot.v3.messaging import MessagingApi

    with _client(settings, settings.api_host) as api_client:
        api = MessagingApi(api_client)
        plan = _call(lambda: api.get_message_quota(_request_timeout=10))
        used = _call(lambda: api.get_message_quota_consumption(_request_timeout=10))
    limited = plan.type == "limited"
    return Quota(limit=int(plan.value or 0) if limited else None, used=int(used.total_usage or 0))


# --- narrowcast to an audience (a large segment in one request) --------------------------------

AUDIENCE_UPLOAD_MAX = 10_000  # user ids per audience upload request (LINE's limit)


def _audience_api(settings: LineSettings):
    """The audience API's own client (linebot.v3.audience has its own ApiClient)."""
    from linebot.v3.audience import ApiClient, Configuration

    return ApiClient(Configuration(host=settings.api_host, access_token=settings.token))


def create_audience(settings: LineSettings, description: str, user_ids: list[str]) -> int:
    """POST /v2/bot/audienceGroup/upload: a new audience of at most 10,000 user ids; its id."""
    from linebot.v3.audience import Audience, CreateAudienceGroupRequest, ManageAudience

    if len(user_ids) > AUDIENCE_UPLOAD_MAX:
        raise ValueError(f"an upload takes at most {AUDIENCE_UPLOAD_MAX} user ids")
    with _audience_api(settings) as api_client:
        api = ManageAudience(api_client)
        request = CreateAudienceGroupRequest(
            description=description[:120],
            isIfaAudience=False,
            audiences=[Audience(id=user_id) for user_id in user_ids],
        )
        answer = _call(lambda: api.create_audience_group(request, _request_timeout=60))
    return int(answer.audience_group_id)


def add_to_audience(settings: LineSettings, audience_id: int, user_ids: list[str]) -> None:
    """PUT /v2/bot/audienceGroup/upload: at most 10,000 more user ids."""
    from linebot.v3.audience import (
        AddAudienceToAudienceGroupRequest,
        Audience,
        ManageAudience,
    )

    if len(user_ids) > AUDIENCE_UPLOAD_MAX:
        raise ValueError(f"an upload takes at most {AUDIENCE_UPLOAD_MAX} user ids")
    with _audience_api(settings) as api_client:
        api = ManageAudience(api_client)
        request = AddAudienceToAudienceGroupRequest(
            audienceGroupId=audience_id, audiences=[Audience(id=u) for u in user_ids]
        )
        _call(lambda: api.add_audience_to_audience_group(request, _request_timeout=60))


def audience_status(settings: LineSettings, audience_id: int) -> tuple[str, int | None]:
    """GET /v2/bot/audienceGroup/{id}: its status (READY, IN_PROGRESS, FAILED …) and size."""
    from linebot.v3.audience import ManageAudience

    with _audience_api(settings) as api_client:
        api = ManageAudience(api_client)
        answer = _call(lambda: api.get_audience_data(audience_id, _request_timeout=10))
    group = answer.audience_group
    status = getattr(group.status, "value", group.status) if group is not None else None
    return str(status or ""), group.audience_count if group is not None else None


def delete_audience(settings: LineSettings, audience_id: int) -> None:
    """DELETE /v2/bot/audienceGroup/{id}: the audience is not kept once the notice is sent."""
    from linebot.v3.audience import ManageAudience

    with _audience_api(settings) as api_client:
        api = ManageAudience(api_client)
        _call(lambda: api.delete_audience_group(audience_id, _request_timeout=10))


def narrowcast(settings: LineSettings, audience_id: int, texts: list[str], retry_key: str) -> str:
    """POST /v2/bot/message/narrowcast to an audience, with X-Line-Retry-Key; LINE accepts it
    (202) and sends in the background: returns the request id its progress is asked by. A
    retry of an accepted request (409) gives the first request's id."""
    from linebot.v3.messaging import AudienceRecipient, MessagingApi, NarrowcastRequest

    with _client(settings, settings.api_host) as api_client:
        api = MessagingApi(api_client)
        request = NarrowcastRequest(
            messages=_text_messages(texts),
            recipient=AudienceRecipient(audienceGroupId=audience_id),
        )
        try:
            answer = _call(
                lambda: api.narrowcast_with_http_info(
                    request, x_line_retry_key=retry_key, _request_timeout=30
                )
            )
        except ApiError as error:
            accepted = error.headers.get("x-line-accepted-request-id")
            if error.status == 409 and accepted:
                return accepted
            raise
    headers = {str(k).lower(): str(v) for k, v in dict(answer.headers or {}).items()}
    request_id = headers.get("x-line-request-id")
    if not request_id:
        raise ApiError(0, "narrowcast accepted without a request id")
    return request_id


@dataclass(frozen=True)
class NarrowcastProgress:
    phase: str  # waiting, sending, succeeded, failed
    success: int | None
    failure: int | None
    target: int | None
    reason: str | None


def narrowcast_progress(settings: LineSettings, request_id: str) -> NarrowcastProgress:
    """GET /v2/bot/message/progress/narrowcast?requestId=…"""
    from linebot.v3.messaging import MessagingApi

    with _client(settings, settings.api_host) as api_client:
        api = MessagingApi(api_client)
        answer = _call(lambda: api.get_narrowcast_progress(request_id, _request_timeout=10))
    return NarrowcastProgress(
        phase=answer.phase,
        success=answer.success_count,
        failure=answer.failure_count,
        target=answer.target_count,
        reason=answer.failed_description,
    )
