"""The request pipeline: route, authenticate against the matched entry's policy, call the
handler, turn errors into responses in exactly one place."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from astrlite.background import Background
from astrlite.compat import SEED, Profile
from astrlite.errors import INTERNAL_ERROR, ApiError, PeerGone
from astrlite.http import auth
from astrlite.http.cors import CorsPolicy, is_preflight
from astrlite.http.request import Request
from astrlite.http.response import Response, from_error
from astrlite.http.router import NOT_FOUND, Route, Router
from astrlite.http.tokens import wants_websocket
from astrlite.operations.metrics import OTHER_ROUTE, Metrics
from astrlite.options import Options
from astrlite.principal import Principal

log = logging.getLogger("astrlite")

API_PREFIX = "/api/v1"  # a plain string prefix, as AstrBot's (so /api/v1x needs a key too)
NOT_A_WEBSOCKET_ROUTE = "This path does not speak WebSocket (the chat socket is /api/v1/chat/ws)"
# A preflight for a path we do not have: let the real request find its 404.
ANY_METHOD = b"GET, HEAD, POST, DELETE, OPTIONS"


class App:
    def __init__(
        self,
        options: Options,
        router: Router,
        verify_key: auth.KeyVerifier,
        touch: Callable[[Principal], Awaitable[None]] | None = None,
        background: Background | None = None,
        metrics: Metrics | None = None,
        cors: CorsPolicy | None = None,
        *,
        profile: Profile = SEED,
    ) -> None:
        self.options = options
        self.profile = profile
        self.router = router
        self.verify_key = verify_key
        self.touch = touch
        self.background = background or Background()
        self.metrics = metrics
        self.cors = cors

    def route_label(self, path: str) -> str:
        """A bounded label for metrics: a path of the route table (a template for the
        paths it matches), or `other`."""
        return self.router.entry_path(path) or OTHER_ROUTE

    async def handle(self, request: Request) -> Response:
        if self.cors is None:
            return await self._handle(request)
        origin = request.header(b"origin")
        if origin is None or not self.cors.allows(origin.decode("latin-1")):
            return await self._handle(request)
        if is_preflight(request.method, origin, request.header(b"access-control-request-method")):
            # Answered before authentication: browsers send preflights without the key.
            allow = self.router.allowed(request.path) or ANY_METHOD
            return Response(204, self.cors.preflight_headers(origin, allow))
        response = await self._handle(request)
        response.headers = [*response.headers, *self.cors.response_headers(origin)]
        return response

    async def _handle(self, request: Request) -> Response:
        try:
            found = self.router.find(request.method, request.path)
            route = None if found is None else found[0]
            upgrade = wants_websocket(request.headers)
            # Every /api/v1 path needs a key before routing says anything (unknown paths
            # included), unless its entry is public.
            if request.path.startswith(API_PREFIX) and (route is None or not route.public):
                try:
                    await self._authenticate(request, route)
                except ApiError as error:
                    if not (upgrade and route is not None and route.websocket):
                        raise
                    request.auth_error = error
            if found is None:
                raise ApiError(404, NOT_FOUND)
            route, request.params = found
            if upgrade and not route.websocket:
                raise ApiError(400, NOT_A_WEBSOCKET_ROUTE)
            return await route.handler(request)
        except ApiError as error:
            return self.error_response(error)
        except PeerGone:
            raise  # nobody to answer: the connection layer closes
        except Exception:
            log.exception("handler for %s %s failed", request.method, request.path)
            return self.error_response(ApiError(500, INTERNAL_ERROR))

    async def _authenticate(self, request: Request, route: Route | None) -> None:
        # 4.27 looks at Bearer first on HTTP routes; its WebSocket keeps the seed's order.
        websocket_route = route is not None and route.websocket
        principal = auth.authenticate(
            request,
            self.verify_key,
            allow_query=not self.options.no_query_keys,
            carriers=SEED.key_carriers if websocket_route else self.profile.key_carriers,
        )
        if route is not None and route.scope is not None:
            auth.require_scope(principal, route.scope)
        request.principal = principal
        if self.touch is not None:
            await self.touch(principal)

    def error_response(self, error: ApiError) -> Response:
        return from_error(error, http_errors=self.options.http_errors, style=self.profile.envelope)
