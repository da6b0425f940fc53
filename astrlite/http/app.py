"""The request pipeline: route, authenticate against the matched entry's policy, call the
handler, turn errors into responses in exactly one place."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from astrlite import compat
from astrlite.background import Background
from astrlite.errors import INTERNAL_ERROR, ApiError, PeerGone
from astrlite.http import auth
from astrlite.http.request import Request
from astrlite.http.response import Response, from_error
from astrlite.http.router import NOT_FOUND, Router
from astrlite.options import Options
from astrlite.principal import Principal

log = logging.getLogger("astrlite")

API_PREFIX = "/api/v1"  # a plain string prefix, as AstrBot's (so /api/v1x needs a key too)


class App:
    def __init__(
        self,
        options: Options,
        router: Router,
        verify_key: auth.KeyVerifier,
        touch: Callable[[Principal], Awaitable[None]] | None = None,
        background: Background | None = None,
    ) -> None:
        self.options = options
        self.router = router
        self.verify_key = verify_key
        self.touch = touch
        self.background = background or Background()
        self.carriers = compat.PROFILES[options.compat].key_carriers

    async def handle(self, request: Request) -> Response:
        try:
            route = self.router.find(request.method, request.path)
            # Every /api/v1 path needs a key before routing says anything (unknown paths
            # included), unless its entry is public.
            if request.path.startswith(API_PREFIX) and (route is None or not route.public):
                principal = auth.authenticate(
                    request,
                    self.verify_key,
                    allow_query=not self.options.no_query_keys,
                    carriers=self.carriers,
                )
                if route is not None and route.scope is not None:
                    auth.require_scope(principal, route.scope)
                request.principal = principal
                if self.touch is not None:
                    await self.touch(principal)
            if route is None:
                raise ApiError(404, NOT_FOUND)
            return await route.handler(request)
        except ApiError as error:
            return self.error_response(error)
        except PeerGone:
            raise  # nobody to answer: the connection layer closes
        except Exception:
            log.exception("handler for %s %s failed", request.method, request.path)
            return self.error_response(ApiError(500, INTERNAL_ERROR))

    def error_response(self, error: ApiError) -> Response:
        return from_error(error, http_errors=self.options.http_errors)
