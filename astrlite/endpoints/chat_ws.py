"""WebSocket /api/v1/chat/ws (docs/compatibility.md M17, W1–W6).

The key is checked after the handshake, as the original does: a failure is one
`UNAUTHORIZED` error frame, then close 1008 with the same reason. Client messages are
handled in arrival order, one turn at a time per socket; only pings skip the line and
are answered at once (W1). A turn runs in the chat runner like an SSE turn (same
providers, persistence and per-session queue) and keeps running when the socket goes
(W4). On shutdown the running turn is finished, then the socket closes with 1001 (W5).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from astrlite import sources
from astrlite.chat.admins import AdminIds, guard_username
from astrlite.chat.framing import Framing
from astrlite.chat.runner import ChatService, TurnRequest
from astrlite.chat.user_message import parse_message
from astrlite.configs import ConfigSet
from astrlite.endpoints import chat as chat_http
from astrlite.errors import EMPTY_CONTENT, INTERNAL_ERROR, ApiError, PeerGone
from astrlite.http import websocket as ws
from astrlite.http.request import Request
from astrlite.http.response import Response
from astrlite.http.router import Handler
from astrlite.http.upgrade import websocket_response
from astrlite.http.websocket_channel import Message, WebSocketChannel
from astrlite.principal import Principal

if TYPE_CHECKING:
    from astrlite.compat import Profile
    from astrlite.services import Services

log = logging.getLogger("astrlite")

PATH = "/api/v1/chat/ws"

UNAUTHORIZED = "UNAUTHORIZED"
BAD_USER = "BAD_USER"
INVALID_MESSAGE = "INVALID_MESSAGE"
SESSION_ERROR = "SESSION_ERROR"
CONFIG_ERROR = "CONFIG_ERROR"
PROCESSING_ERROR = "PROCESSING_ERROR"

NOT_AN_OBJECT = "message must be an object"
UNSUPPORTED_TYPE = "Unsupported message type: {}"
MISSING_MESSAGE = "Missing key: message"
PROCESSING_FAILED = "Failed to process message: {}"
SHUTTING_DOWN = "Server shutting down"

# Messages read ahead of the running turn (so pings behind them are still answered at
# once); beyond, reading waits. Each may be a whole --max-json-bytes, so this bounds what a
# flooding client costs.
QUEUED_MESSAGES = 2


@dataclass(frozen=True, slots=True)
class FrameStyle:
    """Everything about this socket's frames that an AstrBot version decides (4.27:
    compact separators, raw UTF-8, close 1011 on invalid JSON)."""

    separators: tuple[str, str] = (", ", ": ")
    ensure_ascii: bool = True
    invalid_json_close: int = ws.NORMAL

    @classmethod
    def of(cls, profile: Profile) -> FrameStyle:
        if not profile.ws_compact_frames:
            return cls(invalid_json_close=profile.ws_invalid_json_close)
        return cls((",", ":"), False, profile.ws_invalid_json_close)

    def encode(self, event: dict[str, Any]) -> bytes:
        text = json.dumps(event, separators=self.separators, ensure_ascii=self.ensure_ascii)
        return ws.text_frame(text)

    def error(self, code: str, data: str) -> bytes:
        return self.encode({"type": "error", "code": code, "data": data})


class FrameError(Exception):
    """A client message refused with an error frame; the connection stays open."""

    def __init__(self, code: str, data: str) -> None:
        super().__init__(data)
        self.code = code
        self.data = data


def chat_ws(services: Services) -> Handler:
    style = FrameStyle.of(services.profile)
    framing = Framing(style.encode, ids_in_events=True, shows_saves=False)
    pong = style.encode({"type": "pong"})

    async def handle(request: Request) -> Response:
        async def session(channel: WebSocketChannel) -> None:
            await _Socket(services, channel, style, framing, pong).run(request)

        return websocket_response(request, session)

    return handle


# -- what the reader hands the turn worker, in arrival order --------------------------


@dataclass(frozen=True, slots=True)
class _Send:
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Refuse:
    code: str
    data: str


class _CloseInvalid:
    """Invalid JSON: closed with no error frame (the seed: 1000; FrameStyle)."""


_CLOSE_INVALID = _CloseInvalid()
_Item = _Send | _Refuse | _CloseInvalid


class _Ping:
    pass


_PING = _Ping()


def classify(message: Message) -> _Item | _Ping:
    try:
        value = json.loads(message.data)
    except (ValueError, RecursionError):  # ValueError covers bad UTF-8 in binary frames
        return _CLOSE_INVALID
    if not isinstance(value, dict):
        return _Refuse(INVALID_MESSAGE, NOT_AN_OBJECT)
    kind = value.get("t", "send")
    if kind == "ping":
        return _PING
    if kind != "send":
        return _Refuse(INVALID_MESSAGE, UNSUPPORTED_TYPE.format(kind))
    return _Send(value)


class _Socket:
    def __init__(
        self,
        services: Services,
        channel: WebSocketChannel,
        style: FrameStyle,
        framing: Framing,
        pong: bytes,
    ) -> None:
        self.services = services
        self.channel = channel
        self.style = style
        self.framing = framing
        self.pong = pong
        self.principal: Principal | None = None
        self.busy = False  # a turn is being streamed
        self.stopping = False
        self.scope = anyio.CancelScope()  # cancelled when the connection is over

    async def run(self, request: Request) -> None:
        if not await self._authenticate(request):
            return
        send, receive = anyio.create_memory_object_stream[_Item](QUEUED_MESSAGES)
        with self.scope:
            async with anyio.create_task_group() as group:
                group.start_soon(self._guard, self._work, receive)
                group.start_soon(self._guard, self._watch_shutdown)
                await self._guard(self._read, send)

    async def _authenticate(self, request: Request) -> bool:
        """The app checked the key and kept a refusal for us to report in-band."""
        error = request.auth_error
        if error is not None:
            try:
                await self.channel.send(self.style.error(UNAUTHORIZED, error.message))
            except PeerGone:
                return False
            await self.channel.close(ws.POLICY_VIOLATION, error.message)
            return False
        assert request.principal is not None  # the route needs a key
        self.principal = request.principal
        return True

    async def _guard(self, task: Callable[..., Awaitable[None]], *args: Any) -> None:
        """A vanished peer (or our own close) ends every task of the connection."""
        with contextlib.suppress(PeerGone):
            await task(*args)
        self.scope.cancel()

    async def _read(self, queue: anyio.abc.ObjectSendStream[_Item]) -> None:
        async with queue:
            while (message := await self.channel.receive()) is not None:
                item = classify(message)
                if isinstance(item, _Ping):
                    await self.channel.send(self.pong)  # at once, even mid-turn (W1)
                    continue
                await queue.send(item)
                if item is _CLOSE_INVALID:
                    await anyio.sleep_forever()  # the worker closes after what came first

    async def _work(self, queue: anyio.abc.ObjectReceiveStream[_Item]) -> None:
        async for item in queue:
            if isinstance(item, _Refuse):
                await self.channel.send(self.style.error(item.code, item.data))
            elif isinstance(item, _Send):
                self.busy = True
                try:
                    await self._turn(item.body)
                finally:
                    self.busy = False
            else:
                await self.channel.close(self.style.invalid_json_close)
                return
            if self.stopping:  # the turn in flight is done: now close (W5)
                await self.channel.close(ws.GOING_AWAY, SHUTTING_DOWN)
                return
        await anyio.sleep_forever()  # the reader ends the connection

    async def _watch_shutdown(self) -> None:
        await self.channel.stop_requested.wait()
        self.stopping = True
        if not self.busy:
            await self.channel.close(ws.GOING_AWAY, SHUTTING_DOWN)
        else:
            await anyio.sleep_forever()  # the worker closes after its turn

    async def _turn(self, body: dict[str, Any]) -> None:
        services = self.services
        try:
            turn = accept_frame(
                body,
                self.principal,
                services.chat,
                services.configs,
                services.admins,
                services.profile,
            )
            stream = services.chat.submit(turn, self.framing)
        except FrameError as error:
            await self.channel.send(self.style.error(error.code, error.data))
            return
        except ApiError as error:  # the session's queue is full
            failed = PROCESSING_FAILED.format(error.message)
            await self.channel.send(self.style.error(PROCESSING_ERROR, failed))
            return
        except Exception:  # a bug or a store failure: logged, never shown to the client
            log.exception("WebSocket turn on %s refused", PATH)
            failed = PROCESSING_FAILED.format(INTERNAL_ERROR)
            await self.channel.send(self.style.error(PROCESSING_ERROR, failed))
            return
        events = stream.body(None)  # keepalive is the socket's own ping (W3)
        try:
            async for chunk in events:
                await self.channel.send(chunk)
        finally:
            await events.aclose()  # the turn runs on in the background and is saved (W4)


def accept_frame(
    body: dict[str, Any],
    principal: Principal | None,
    chat: ChatService,
    configs: ConfigSet,
    admins: AdminIds,
    profile: Profile,
) -> TurnRequest:
    """A `send` message checked in the original's order (M3, M17), all before anything
    changes (F3): username, message present (4.27: message first), session owner,
    config, content."""
    if profile.ws_message_first and body.get("message") is None:
        raise FrameError(INVALID_MESSAGE, MISSING_MESSAGE)
    assert principal is not None  # a turn starts only after the key was accepted
    key_id = principal.key_id
    try:
        username = chat_http.username_of(body.get("username"))
    except ApiError as error:
        raise FrameError(BAD_USER, error.message) from None
    try:
        guard_username(username, principal, admins)  # right after the username (K2)
    except ApiError as error:
        raise FrameError(INVALID_MESSAGE, error.message) from None
    if body.get("message") is None:
        raise FrameError(INVALID_MESSAGE, MISSING_MESSAGE)
    given = chat_http.given_session_id(body)
    try:
        chat_http.check_owner(chat, given, username)
    except ApiError as error:
        raise FrameError(SESSION_ERROR, error.message) from None
    session_id = given or sources.new_uuid()
    try:
        config_choice = chat_http.config_choice_of(body, configs)
    except ApiError as error:
        raise FrameError(CONFIG_ERROR, error.message) from None
    message = parse_message(body["message"], chat_http.lookups(chat, key_id, session_id))
    if not message.has_content:
        raise FrameError(INVALID_MESSAGE, EMPTY_CONTENT)
    streaming = flag_streaming_of(body) if profile.request_flags else chat_http.streaming_of(body)
    return TurnRequest(
        message_id=message_id_of(body),
        session_id=session_id,
        username=username,
        key_id=key_id,
        message=message,
        streaming=streaming,
        provider_id=chat_http.optional_text(body.get("selected_provider")),
        model=chat_http.optional_text(body.get("selected_model")),
        config_choice=config_choice,
        new_session=given is None,
    )


def flag_streaming_of(body: dict[str, Any]) -> bool:
    """4.27 over the WebSocket (P4): ``flags.enable_streaming`` if it is a real bool,
    else the top-level field if it is one, else true; no lax booleans, no 422."""
    flags = body.get("flags")
    if isinstance(flags, dict) and isinstance(flags.get("enable_streaming"), bool):
        return bool(flags["enable_streaming"])
    top = body.get("enable_streaming")
    return top if isinstance(top, bool) else True


def message_id_of(body: dict[str, Any]) -> str:
    """The client's turn id as Python's str() shows it (not stripped); absent or falsy
    gives a new uuid4 (M20)."""
    value = body.get("message_id")
    return str(value) if value else sources.new_uuid()
