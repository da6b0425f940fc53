"""POST /api/v1/chat (an SSE stream, observed §4.1) and GET /api/v1/chat/sessions (§4.3).

The chat checks run in the original's order (username, session ownership, config_id then
config_name, message present, content) and all of them before anything changes (F3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from astrlite import sources
from astrlite.chat.admins import AdminIds, guard_username
from astrlite.chat.prompt import quote_of
from astrlite.chat.runner import ChatService, TurnRequest
from astrlite.chat.user_message import Lookups, Quote, parse_message
from astrlite.configs import ConfigSet
from astrlite.errors import EMPTY_CONTENT, business
from astrlite.http.request import Request
from astrlite.http.response import Response, json_ok
from astrlite.http.router import Handler
from astrlite.principal import Principal
from astrlite.sse import SSE_HEADERS

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
MAX_PAGE_SIZE = 100  # observed §4.3: larger sizes are clamped


def post_chat(services: Services) -> Handler:
    chat = services.chat
    heartbeat = services.options.sse_heartbeat or None  # 0 turns heartbeats off

    async def handle(request: Request) -> Response:
        body = await request.json_object(services.options.max_json_bytes)
        assert request.principal is not None  # the app authenticates every /api/v1 call
        turn = accept(body, request.principal, chat, services.configs, services.admins)
        stream = chat.submit(turn)
        return Response(200, list(SSE_HEADERS), stream.body(heartbeat))

    return handle


def list_sessions(services: Services) -> Handler:
    chat = services.chat

    async def handle(request: Request) -> Response:
        username = _username(request.query_value("username"))
        try:
            page = _integer(request.query_value("page"), DEFAULT_PAGE)
            page_size = _integer(request.query_value("page_size"), DEFAULT_PAGE_SIZE)
        except ValueError:
            raise business(400, PAGE_NOT_INTEGER) from None
        page = max(page, 1)
        page_size = min(max(page_size, 1), MAX_PAGE_SIZE)
        sessions, total = chat.list_sessions(
            username, request.query_value("platform_id"), (page - 1) * page_size, page_size
        )
        listed = [session.listed() for session in sessions]
        return json_ok({"sessions": listed, "page": page, "page_size": page_size, "total": total})

    return handle


def accept(
    body: dict[str, Any],
    principal: Principal,
    chat: ChatService,
    configs: ConfigSet,
    admins: AdminIds,
) -> TurnRequest:
    """Check a chat request in the original's order; business errors for what fails."""
    key_id = principal.key_id
    username = _username(body.get("username"))
    guard_username(username, principal, admins)  # right after the username checks
    session_id = _session_id(body)
    creator = chat.creator_of(session_id)
    if creator is not None and creator != username:
        raise business(403, SESSION_TAKEN)
    config_choice = _config_choice(body, configs)
    if "message" not in body:
        raise business(400, MISSING_MESSAGE)
    message = parse_message(body["message"], _lookups(chat, key_id, session_id))
    if not message.has_content:
        raise business(400, EMPTY_CONTENT)
    return TurnRequest(
        message_id=sources.new_uuid(),
        session_id=session_id,
        username=username,
        key_id=key_id,
        message=message,
        streaming=_streaming(body),
        provider_id=_optional_text(body.get("selected_provider")),
        model=_optional_text(body.get("selected_model")),
        config_choice=config_choice,
    )


def _username(value: Any) -> str:
    if value is None:
        raise business(400, MISSING_USERNAME)
    username = str(value).strip()
    if not username:
        raise business(400, EMPTY_USERNAME)
    return username


def _session_id(body: dict[str, Any]) -> str:
    """F4: absent, null or blank is a new UUID (null does not fall back to the alias);
    anything else is ``str(value).strip()``, used and echoed as that string."""
    value = body["session_id"] if "session_id" in body else body.get("conversation_id")
    session_id = "" if value is None else str(value).strip()
    return session_id or sources.new_uuid()


def _config_choice(body: dict[str, Any], configs: ConfigSet) -> str | None:
    """The config to bind the session to (``default`` unbinds it); None: unchanged."""
    config_id = _optional_text(body.get("config_id"))
    if config_id is not None:
        if configs.by_id(config_id) is None:
            raise business(404, CONFIG_ID_NOT_FOUND.format(config_id))
        return config_id
    name = _optional_text(body.get("config_name"))
    if name is None:
        return None
    matched = configs.by_name(name)
    if not matched:
        raise business(404, CONFIG_NAME_NOT_FOUND.format(name))
    if len(matched) > 1:
        raise business(409, CONFIG_NAME_AMBIGUOUS.format(name))
    return matched[0].id


def _streaming(body: dict[str, Any]) -> bool | None:
    """Absent: stream; null: the config decides; anything else by Python truthiness
    (so the string "false" streams, as observed)."""
    if "enable_streaming" not in body:
        return True
    value = body["enable_streaming"]
    return None if value is None else bool(value)


def _optional_text(value: Any) -> str | None:
    text = "" if value is None else str(value).strip()
    return text or None


def _integer(value: str | None, default: int) -> int:
    """Python's int(), as the original parses page and page_size (ValueError)."""
    return default if value is None else int(value)


def _lookups(chat: ChatService, key_id: str, session_id: str) -> Lookups:
    attachments = chat.attachments

    def quoted(row_id: int) -> Quote | None:
        row = chat.store.row_in_session(row_id, session_id)
        return None if row is None else quote_of(row)

    return Lookups(attachment=lambda a: attachments.get(a, key_id), quoted=quoted)
