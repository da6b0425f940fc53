"""One WebSocket connection's I/O, after the 101: the socket plus the sans-IO parser.

One task reads (`receive`), any number write (`send`, serialised by a lock). Control
frames are handled here: a ping is answered at once, before anything else is read, so a
client's pings are answered even mid-turn (W1) and a client that pings without reading
blocks its own reading when our pongs stop leaving (bounded memory). Every write has the
write deadline; a missed one drops the peer. After `keepalive` seconds with nothing sent
or received the server pings, and a peer that then sends nothing within the write
deadline is dropped (W3).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

import anyio

from astrlite.errors import PeerGone
from astrlite.http import websocket as ws
from astrlite.http.rawsocket import GONE
from astrlite.http.transport import Transport

RECEIVE_SIZE = 64 * 1024
# After our close frame, how long to drain the client's last bytes before the socket is
# closed (closing with unread input would reset the connection and could destroy the
# close frame on its way).
LINGER_SECONDS = 1.0
KEEPALIVE_PAYLOAD = b"astrlite"

Message = ws.TextMessage | ws.BytesMessage


class WebSocketChannel:
    def __init__(
        self,
        stream: Transport,
        received: bytes,
        *,
        max_message_bytes: int,
        write_timeout: float,
        keepalive: float | None,
    ) -> None:
        self._stream = stream
        self._parser = ws.WebSocket(max_message_bytes)
        self._parser.receive_data(received)
        self._write_timeout = write_timeout
        self._keepalive = keepalive
        self._lock = anyio.Lock()
        self._close_sent = False
        self._gone = False
        self._last_activity = anyio.current_time()
        self.stop_requested = anyio.Event()  # the server is shutting down (W5)

    def request_stop(self) -> None:
        self.stop_requested.set()

    @property
    def open(self) -> bool:
        """Whether frames may still be sent (no close sent, peer not gone)."""
        return not self._close_sent and not self._gone

    async def receive(self) -> Message | None:
        """The next whole message; None once the connection is over (the client closed
        and was answered, broke the protocol and was told, or went away)."""
        events = self._parser.events()
        while True:
            for event in events:
                if isinstance(event, ws.TextMessage | ws.BytesMessage):
                    return event
                if not await self._control(event):
                    return None
            if self._gone or self._close_sent or self._parser.closed:
                return None
            data = await self._read()
            if not data:
                self._gone = True
                return None
            self._parser.receive_data(data)
            events = self._parser.events()

    async def _control(self, event: ws.Event) -> bool:
        """Answer a control event; False when it ends the connection."""
        if isinstance(event, ws.Ping):
            try:
                await self.send(ws.frame(ws.OP_PONG, event.payload))
            except PeerGone:
                return False
            return True
        if isinstance(event, ws.Pong):
            return True
        if isinstance(event, ws.CloseReceived):
            await self._send_close(ws.close_reply(event))
        elif isinstance(event, ws.Failure):
            await self._send_close(ws.close_frame(event.code, event.reason))
        return False

    async def _read(self) -> bytes:
        """Bytes from the peer, pinging it after silence; b"" when it is gone."""
        pinged = False
        while True:
            if self._keepalive is None:
                return await self._receive()
            if pinged:
                wait = self._write_timeout
            else:
                wait = self._last_activity + self._keepalive - anyio.current_time()
            with anyio.move_on_after(max(wait, 0.0)):
                data = await self._receive()
                self._last_activity = anyio.current_time()
                return data
            if pinged:
                return b""  # nothing since our ping: the peer is dead or not reading
            if anyio.current_time() >= self._last_activity + self._keepalive:
                await self.send(ws.frame(ws.OP_PING, KEEPALIVE_PAYLOAD))
                pinged = True

    async def _receive(self) -> bytes:
        try:
            return await self._stream.receive(RECEIVE_SIZE)
        except GONE:
            return b""

    async def send(self, data: bytes) -> None:
        """Write frames, within the write deadline; PeerGone when the peer is gone or
        too slow (it is then dropped), or when a close was already sent."""
        async with self._lock:
            if self._gone or self._close_sent:
                raise PeerGone
            await self._write(data)

    async def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            view = view[self._stream.try_send(view) :]
            if view:
                with anyio.fail_after(self._write_timeout):
                    await self._stream.send_rest(view)
        except GONE:
            self._gone = True
            raise PeerGone from None
        except BaseException:
            self._gone = True  # cancelled mid-frame: nothing more may follow it
            raise
        self._last_activity = anyio.current_time()

    async def close(self, code: int, reason: str = "") -> None:
        """Send our close frame (once); the connection ends after it (`finish`)."""
        await self._send_close(ws.close_frame(code, reason))

    async def _send_close(self, frame: bytes) -> None:
        async with self._lock:
            if self._gone or self._close_sent:
                return
            self._close_sent = True
            with contextlib.suppress(PeerGone):
                await self._write(frame)

    async def finish(self) -> None:
        """End the TCP connection: after our close frame, let the client's last bytes
        drain (briefly) so the close frame is not lost to a reset."""
        if self._close_sent and not self._gone:
            with anyio.move_on_after(LINGER_SECONDS):
                try:
                    self._stream.send_eof()
                    while await self._stream.receive(RECEIVE_SIZE):
                        pass
                except GONE:
                    pass
        self._gone = True


WebSocketSession = Callable[[WebSocketChannel], Awaitable[None]]
