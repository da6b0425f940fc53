"""The accept loop: our own, supervised (anyio's Listener.serve() dies on one handler
exception or on EMFILE), with a connection cap and a graceful shutdown."""

from __future__ import annotations

import errno
import logging
import signal
import socket

import anyio
import anyio.abc
import anyio.lowlevel

from astrlite import envelope
from astrlite.background import TaskSet
from astrlite.errors import SERVER_BUSY
from astrlite.http.app import App
from astrlite.http.connection import Connection, Lifecycle
from astrlite.http.rawsocket import GONE, RawSocketStream

log = logging.getLogger("astrlite")

# Descriptors beyond the connection cap: the listener, the database, files being served.
SPARE_DESCRIPTORS = 256
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_BACKOFF_FIRST, _BACKOFF_MAX = 0.01, 1.0
_BUSY_BODY = envelope.error(SERVER_BUSY)
BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"content-length: " + str(len(_BUSY_BODY)).encode() + b"\r\nconnection: close\r\n\r\n"
) + _BUSY_BODY


def raise_file_limit(max_connections: int) -> None:
    """Raise the soft descriptor limit so the connection cap, not EMFILE, is what binds."""
    try:
        import resource
    except ImportError:  # not on every platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + SPARE_DESCRIPTORS
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if wanted > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError) as error:
            log.warning("could not raise the open file limit to %d: %s", wanted, error)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=4096, reuse_port=False)
    sock.setblocking(False)
    return sock


def peer_of(address: object) -> str:
    """`host:port` of a client for the access log (`[host]:port` for IPv6)."""
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address) or "-"


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class Server:
    """Serves an App on a bound socket until stop() (or SIGTERM/SIGINT) is called."""

    def __init__(self, app: App, sock: socket.socket) -> None:
        self.app = app
        self.sock = sock
        self.url = url_of(sock)
        self.lifecycle = Lifecycle()
        self._stop: anyio.Event | None = None
        self._stop_requested = False
        self._grace: anyio.CancelScope | None = None
        self._hurry = False  # a second signal: do not wait for in-flight requests
        if app.metrics is not None:
            lifecycle = self.lifecycle
            app.metrics.gauge(
                "open_connections", "Client connections open.", lambda: lifecycle.active
            )

    def stop(self) -> None:
        """Begin the graceful shutdown (call from the server's own event loop)."""
        self._stop_requested = True
        if self._stop is not None:
            self._stop.set()

    async def serve(self, *, handle_signals: bool = False) -> None:
        options = self.app.options
        raise_file_limit(options.max_connections)
        self.lifecycle.all_done = anyio.Event()
        self._stop = anyio.Event()
        if self._stop_requested:
            self._stop.set()
        workers = TaskSet(scoped=True)
        async with anyio.create_task_group() as background:
            self.app.background.attach(workers)
            if handle_signals:  # before accepting: it needs a descriptor or two
                await background.start(self._handle_signals)
            connections = TaskSet()
            try:
                async with anyio.create_task_group() as control:
                    control.start_soon(self._accept_loop, connections)
                    await self._stop.wait()
                    control.cancel_scope.cancel()
                anyio.notify_closing(self.sock)
                self.sock.close()
                self.lifecycle.stop()
                with anyio.move_on_after(options.shutdown_grace) as self._grace:
                    if self._hurry:
                        self._grace.cancel()
                    await self.lifecycle.all_done.wait()
            finally:
                with anyio.CancelScope(shield=True):
                    await connections.cancel_all()
            try:
                await self.app.background.shut_down()
            finally:
                with anyio.CancelScope(shield=True):
                    await workers.cancel_all()
            background.cancel_scope.cancel()
        self.app.background.attach(None)

    async def _handle_signals(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """The first SIGINT/SIGTERM starts the graceful shutdown and says what it waits
        for; a second one cuts the wait short. The receiver stays open until the server
        is done, so a second Ctrl-C never becomes a KeyboardInterrupt."""
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            task_status.started()
            async for signum in signals:
                name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
                if not self._stop_requested:
                    log.info("%s", self._shutdown_notice(name))
                    self.stop()
                elif not self._hurry:
                    log.info("received %s again, stopping now", name)
                    self._hurry = True
                    if self._grace is not None:
                        self._grace.cancel()

    def _shutdown_notice(self, name: str) -> str:
        busy = self.lifecycle.busy
        if busy == 0:
            return f"received {name}, shutting down"
        grace = self.app.options.shutdown_grace
        requests = "request" if busy == 1 else "requests"
        return (
            f"received {name}, shutting down: waiting up to {grace:g} s for {busy} {requests}; "
            f"{name} again to stop now"
        )

    async def _accept_loop(self, connections: TaskSet) -> None:
        backoff = _BACKOFF_FIRST
        cap = self.app.options.max_connections
        while True:
            try:
                client, address = self.sock.accept()
            except BlockingIOError:
                await anyio.wait_readable(self.sock)
                continue
            except OSError as error:
                if error.errno not in _OUT_OF_RESOURCES:
                    log.warning("accept failed: %s", error)
                    continue
                log.warning("accept failed (%s); retrying in %.2f s", error, backoff)
                await anyio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                continue
            backoff = _BACKOFF_FIRST
            stream = RawSocketStream(client)
            if self.lifecycle.active >= cap:
                connections.start_soon(_refuse_busy, stream)
            else:
                self.lifecycle.active += 1
                connections.start_soon(self._run_connection, stream, peer_of(address))
            # Let the new connection (and everything else) run: a burst of queued
            # connections must not starve the loop until descriptors run out.
            await anyio.lowlevel.checkpoint()

    async def _run_connection(self, stream: RawSocketStream, peer: str) -> None:
        try:
            await Connection(stream, self.app, self.lifecycle, peer).run()
        finally:
            self.lifecycle.active -= 1
            self.lifecycle.connection_ended()


async def _refuse_busy(stream: RawSocketStream) -> None:
    try:
        with anyio.move_on_after(1):
            view = memoryview(BUSY_RESPONSE)
            await stream.send_rest(view[stream.try_send(view) :])
    except GONE:
        pass
    finally:
        stream.close()
