"""POST /api/v1/chat (an SSE stream, docs/compatibility.md M5) and GET /api/v1/chat/sessions
(M8).

The chat checks run in the original's order (username, admin ids, session ownership,
config_id then config_name, message present, content) and all of them before anything
changes (F3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from astrlite import sources
from astrlite.chat.admins import AdminIds, guard_username
from astrlite.chat.prompt import quote_of
from astrlite.chat.runner import ChatService, TurnRequest
from astrlite.chat.user_message import Lookups, Quote, parse_message
from astrlite.compat import Profile
from astrlite.configs import ConfigSet
from astrlite.endpoints import validation
from astrlite.errors import EMPTY_CONTENT, Invalid, business
from astrlite.http.request import Request
from astrlite.http.response import Response, json_ok
from astrlite.http.router import Handler
from astrlite.principal import Principal
from astrlite.sse import sse_headers

if TYPE_CHECKING:
    from astrlite.services import Services

MISSING_USERNAME = "Missing key: username"
EMPTY_USERNAME = "username is empty"
SESSION_TAKEN = "session_id belongs to another username"
CONFIG_ID_NOT_FOUND = "config_id not found: {}"
CONFIG_NAME_NOT_FOUND = "config_name not found: {}"
CONFIG_NAME_AMBIGUOUS = "config_name is ambiguous, please use config_id: {}"
MISSING_MESSAGE = "Missing key: message or files"
PAGE_NOT_INTEGER = "page and page_size must be integers"

DEFAULT_PAGE = 1
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100  # larger sizes are clamped, as AstrBot does (M8)


def post_chat(services: Services) -> Handler:
    chat = services.chat
    profile = services.profile
    heartbeat = services.sse_heartbeat
    headers = sse_headers(profile)

    async def handle(request: Request) -> Response:
        limit = services.options.max_json_bytes
        body = await validation.request_object(request, limit, validate=profile.validation_422)
        assert request.principal is not None  # the app authenticates every /api/v1 call
        turn = accept(body, request.principal, chat, services.configs, services.admins, profile)
        stream = chat.submit(turn)
        return Response(200, list(headers), stream.body(heartbeat))

    return handle


def list_sessions(services: Services) -> Handler:
    chat = services.chat
    style = services.profile.envelope

    async def handle(request: Request) -> Response:
        username = username_of(request.query_value("username"))
        try:
            page = _integer(request.query_value("page"), DEFAULT_PAGE)
            page_size = _integer(request.query_value("page_size"), DEFAULT_PAGE_SIZE)
        except ValueError:
            raise business(400, PAGE_NOT_INTEGER) from None
        page = max(page, 1)
        page_size = min(max(page_size, 1), MAX_PAGE_SIZE)
        sessions, total = await chat.list_sessions(
            username, request.query_value("platform_id"), (page - 1) * page_size, page_size
        )
        listed = [session.listed() for session in sessions]
        return json_ok(
            {"sessions": listed, "page": page, "page_size": page_size, "total": total}, style
        )

    return handle


def accept(
    body: dict[str, Any],
    principal: Principal,
    chat: ChatService,
    configs: ConfigSet,
    admins: AdminIds,
    profile: Profile,
) -> TurnRequest:
    """Check a chat request in the original's order; business errors for what fails
    (4.27: field types first, as a 422)."""
    if profile.request_flags:
        streaming: bool | None = typed_streaming_of(body)
    else:
        streaming = streaming_of(body, null_streams=profile.null_streams)
    key_id = principal.key_id
    username = username_of(body.get("username"))
    guard_username(username, principal, admins)  # right after the username checks
    given = given_session_id(body)
    check_owner(chat, given, username)
    session_id = given or sources.new_uuid()
    config_choice = config_choice_of(body, configs)
    if "message" not in body:
        raise business(400, MISSING_MESSAGE)
    message = parse_message(body["message"], lookups(chat, key_id, session_id))
    if not message.has_content:
        raise business(400, EMPTY_CONTENT)
    return TurnRequest(
        message_id=sources.new_uuid(),
        session_id=session_id,
        username=username,
        key_id=key_id,
        message=message,
        streaming=streaming,
        provider_id=optional_text(body.get("selected_provider")),
        model=optional_text(body.get("selected_model")),
        config_choice=config_choice,
        new_session=given is None,
    )


def username_of(value: Any) -> str:
    if value is None:
        raise business(400, MISSING_USERNAME)
    username = str(value).strip()
    if not username:
        raise business(400, EMPTY_USERNAME)
    return username


def given_session_id(body: dict[str, Any]) -> str | None:
    """F4: absent, null or blank is None, a new session under a new UUID (null does not
    fall back to the alias); anything else is ``str(value).strip()``, used and echoed as
    that string."""
    value = body["session_id"] if "session_id" in body else body.get("conversation_id")
    session_id = "" if value is None else str(value).strip()
    return session_id or None


def check_owner(chat: ChatService, session_id: str | None, username: str) -> None:
    """Business 403 if the given session belongs to another username."""
    if session_id is None:  # a new UUID: nobody has it
        return
    creator = chat.creator_of(session_id)
    if creator is not None and creator != username:
        raise business(403, SESSION_TAKEN)


def config_choice_of(body: dict[str, Any], configs: ConfigSet) -> str | None:
    """The config to bind the session to (``default`` unbinds it); None: unchanged."""
    config_id = optional_text(body.get("config_id"))
    if config_id is not None:
        if configs.by_id(config_id) is None:
            raise business(404, CONFIG_ID_NOT_FOUND.format(config_id))
        return config_id
    name = optional_text(body.get("config_name"))
    if name is None:
        return None
    matched = configs.by_name(name)
    if not matched:
        raise business(404, CONFIG_NAME_NOT_FOUND.format(name))
    if len(matched) > 1:
        raise business(409, CONFIG_NAME_AMBIGUOUS.format(name))
    return matched[0].id


def streaming_of(body: dict[str, Any], *, null_streams: bool = False) -> bool | None:
    """Absent: stream; null: the config decides (``null_streams``, 4.27: stream);
    anything else by Python truthiness (so the string "false" streams, as in AstrBot:
    M14)."""
    if "enable_streaming" not in body:
        return True
    value = body["enable_streaming"]
    if value is None:
        return True if null_streams else None
    return bool(value)


_STRING_FIELDS = ("username", "session_id", "conversation_id", "config_id", "config_name")
_FLAGS = ("enable_streaming", "enable_inline_genui", "enable_default_system_prompt")


def typed_streaming_of(body: dict[str, Any]) -> bool:
    """4.27 (P4, M14): the field types (a 422 listing every problem), then streaming
    from ``flags.enable_streaming``, else the top-level field, else true."""
    problems: list[dict[str, Any]] = []
    validation.optional_strings(body, _STRING_FIELDS, problems)
    top = body.get("enable_streaming")
    streaming = (
        None if top is None else validation.lax_bool(top, ["body", "enable_streaming"], problems)
    )
    flags = body.get("flags")
    if flags is not None and not isinstance(flags, dict):
        problems.append(
            validation.problem(
                "model_attributes_type", ["body", "flags"], validation.NOT_OBJECT, flags
            )
        )
    elif flags is not None:
        for name in _FLAGS:
            if name in flags:
                value = validation.lax_bool(flags[name], ["body", "flags", name], problems)
                if name == "enable_streaming" and value is not None:
                    streaming = value
    if problems:
        raise Invalid(problems)
    return True if streaming is None else streaming


def optional_text(value: Any) -> str | None:
    text = "" if value is None else str(value).strip()
    return text or None


def _integer(value: str | None, default: int) -> int:
    """Python's int(), as the original parses page and page_size (ValueError)."""
    return default if value is None else int(value)


def lookups(chat: ChatService, key_id: str, session_id: str) -> Lookups:
    attachments = chat.attachments

    def quoted(row_id: int) -> Quote | None:
        row = chat.store.row_in_session(row_id, session_id)
        return None if row is None else quote_of(row)

    return Lookups(attachment=lambda a: attachments.get(a, key_id), quoted=quoted)
