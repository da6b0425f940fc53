"""The request pipeline: authenticate, route, call the handler, turn errors into
responses in exactly one place."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from astrlite.background import Background
from astrlite.errors import INTERNAL_ERROR, ApiError, PeerGone
from astrlite.http import auth
from astrlite.http.request import Request
from astrlite.http.response import Response, from_error
from astrlite.http.router import Router
from astrlite.options import Options

log = logging.getLogger("astrlite")

API_PREFIX = "/api/v1"  # a plain string prefix, as AstrBot's (so /api/v1x needs a key too)
PUBLIC = {("GET", "/api/v1/openapi.json"), ("HEAD", "/api/v1/openapi.json")}


class App:
    def __init__(
        self,
        options: Options,
        router: Router,
        verify_key: auth.KeyVerifier,
        touch: Callable[[auth.Principal], Awaitable[None]] | None = None,
        background: Background | None = None,
    ) -> None:
        self.options = options
        self.router = router
        self.verify_key = verify_key
        self.touch = touch
        self.background = background or Background()

    async def handle(self, request: Request) -> Response:
        try:
            if request.path.startswith(API_PREFIX) and (request.method, request.path) not in PUBLIC:
                request.principal = auth.authenticate(
                    request, self.verify_key, allow_query=not self.options.no_query_keys
                )
                if self.touch is not None:
                    await self.touch(request.principal)
            handler = self.router.find(request.method, request.path)
            return await handler(request)
        except ApiError as error:
            return self.error_response(error)
        except PeerGone:
            raise  # nobody to answer: the connection layer closes
        except Exception:
            log.exception("handler for %s %s failed", request.method, request.path)
            return self.error_response(ApiError(500, INTERNAL_ERROR))

    def error_response(self, error: ApiError) -> Response:
        return from_error(error, http_errors=self.options.http_errors)
