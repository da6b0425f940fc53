"""Every outbound client of a server, for providers and platforms alike: one shared
client, made on first use (its TLS context costs milliseconds a server that never sends
need not pay), plus one for each entry with its own ca_file, proxy or `verify: false`,
made when the entry is read so that a bad one stops the start."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from astrlite.outbound import HttpClientError
from astrlite.outbound.entries import ConnectionSettings

if TYPE_CHECKING:
    from astrlite.outbound.client import Client

ClientGetter = Callable[[], "Client"]


class ClientRegistry:
    def __init__(self) -> None:
        self._shared: Client | None = None
        self._own: list[Client] = []

    def client_for(self, settings: ConnectionSettings) -> ClientGetter:
        """How an entry reaches its client; ValueError when its ca_file cannot be loaded."""
        if not settings.custom_tls_or_proxy:
            return self._shared_client
        from astrlite.outbound.client import Client  # the HTTP client, loaded when needed

        try:
            client = Client(ca_file=settings.ca_file, verify=settings.verify, proxy=settings.proxy)
        except HttpClientError as exc:
            raise ValueError(str(exc)) from None
        self._own.append(client)
        return lambda: client

    def _shared_client(self) -> Client:
        if self._shared is None:
            from astrlite.outbound.client import Client

            self._shared = Client()
        return self._shared

    async def aclose(self) -> None:
        """Close every pooled connection (at server shutdown)."""
        shared = [] if self._shared is None else [self._shared]
        for client in [*shared, *self._own]:
            await client.aclose()
