"""The 4.27 session and run routes (docs/compatibility.md P3, R1–R10), in both profiles.

Who may act on a session (G1): the key's principal ``api_key:<key_id>`` when it is the
session's creator (what AstrBot checks), or a request that names the creator as
``username`` (in the query, or in the body where there is one), as ``/chat`` trusts it.
Business errors are HTTP 200 like every chat route (404 / 403 with --http-errors).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from astrlite import sources
from astrlite.configs import WEBCHAT
from astrlite.endpoints import validation
from astrlite.errors import Invalid, business
from astrlite.http.request import Request
from astrlite.http.response import Response, json_ok
from astrlite.http.router import Handler
from astrlite.sse import sse_headers

if TYPE_CHECKING:
    from astrlite.chat.runs import Run
    from astrlite.services import Services

SESSION_NOT_FOUND = "Session {} not found"
PERMISSION_DENIED = "Permission denied"
RUN_UNAVAILABLE = "Chat run is unavailable"
INVALID_SESSION_IDS = "Missing or invalid key: session_ids"
INVALID_DISPLAY_NAME = "Invalid key: display_name"
NOT_FOUND_REASON, DENIED_REASON = "not found", "permission denied"
# How long a stop or delete waits for a stopped turn to save what it generated.
STOP_WAIT_SECONDS = 10.0
PRINCIPAL = "api_key:{}"


def principal_of(request: Request) -> str:
    """What AstrBot calls a key caller on these routes: ``api_key:<key_id>``."""
    assert request.principal is not None  # the app authenticates every /api/v1 call
    return PRINCIPAL.format(request.principal.key_id)


def identities(request: Request, body: dict[str, Any] | None = None) -> set[str]:
    """The creators this request may act for (G1)."""
    found = {principal_of(request)}
    for value in (request.query_value("username"), (body or {}).get("username")):
        if isinstance(value, str) and value.strip():
            found.add(value.strip())
    return found


async def _body(services: Services, request: Request) -> dict[str, Any]:
    limit, validate = services.options.max_json_bytes, services.profile.validation_422
    return await validation.request_object(request, limit, validate=validate)


def _owned(services: Services, session_id: str, acting: set[str]) -> None:
    creator = services.chat.creator_of(session_id)
    if creator is None:
        raise business(404, SESSION_NOT_FOUND.format(session_id))
    if creator not in acting:
        raise business(403, PERMISSION_DENIED)


async def _stop_runs(services: Services, session_id: str) -> int:
    stopped = services.chat.stop(session_id)
    with anyio.move_on_after(STOP_WAIT_SECONDS):
        for run in stopped:
            await run.wait_done()
    return len(stopped)


def new_session(services: Services) -> Handler:
    async def handle(request: Request) -> Response:
        username = (request.query_value("username") or "").strip()
        creator = username or principal_of(request)
        platform_id = request.query_value("platform_id") or WEBCHAT
        session_id = sources.new_uuid()
        await services.chat.sessions.create_session(session_id, creator, platform_id)
        data = {"session_id": session_id, "platform_id": platform_id}
        return json_ok(data, services.profile.envelope)

    return handle


def get_session(services: Services) -> Handler:
    async def handle(request: Request) -> Response:
        session_id = request.params["session_id"]
        _owned(services, session_id, identities(request))
        runs: list[Run] = services.chat.active_runs(session_id)
        data = {
            "history": services.chat.sessions.history(session_id),
            "threads": [],  # threads are not built (P5)
            "is_running": bool(runs),
            "active_runs": [run.state() for run in runs],
        }
        return json_ok(data, services.profile.envelope)

    return handle


def rename_session(services: Services) -> Handler:
    async def handle(request: Request) -> Response:
        session_id = request.params["session_id"]
        body = await _body(services, request)
        name = body.get("display_name")
        if name is not None and not isinstance(name, str):
            if services.profile.validation_422:
                msg = "Input should be a valid string"
                loc: list[str | int] = ["body", "display_name"]
                raise Invalid([validation.problem("string_type", loc, msg, name)])
            raise business(400, INVALID_DISPLAY_NAME)
        _owned(services, session_id, identities(request, body))
        if not await services.chat.sessions.rename(session_id, name):
            raise business(404, SESSION_NOT_FOUND.format(session_id))
        return json_ok({}, services.profile.envelope)

    return handle


def delete_session(services: Services) -> Handler:
    async def handle(request: Request) -> Response:
        session_id = request.params["session_id"]
        _owned(services, session_id, identities(request))
        await _stop_runs(services, session_id)
        if not await services.chat.sessions.delete_session(session_id):
            raise business(404, SESSION_NOT_FOUND.format(session_id))
        return json_ok({}, services.profile.envelope)

    return handle


def batch_delete(services: Services) -> Handler:
    chat = services.chat

    async def handle(request: Request) -> Response:
        body = await _body(services, request)
        session_ids = _session_ids(body, validate=services.profile.validation_422)
        acting = identities(request, body)
        failed = []
        for session_id in session_ids:
            creator = chat.creator_of(session_id)
            reason = None
            if creator is None:
                reason = NOT_FOUND_REASON
            elif creator not in acting:
                reason = DENIED_REASON
            else:
                await _stop_runs(services, session_id)
                if not await chat.sessions.delete_session(session_id):
                    reason = NOT_FOUND_REASON
            if reason is not None:
                failed.append({"session_id": session_id, "reason": reason})
        data = {
            "deleted_count": len(session_ids) - len(failed),
            "failed_count": len(failed),
            "failed_items": failed,
        }
        return json_ok(data, services.profile.envelope)

    return handle


def stop_session(services: Services) -> Handler:
    async def handle(request: Request) -> Response:
        session_id = request.params["session_id"]
        _owned(services, session_id, identities(request))
        stopped = await _stop_runs(services, session_id)
        return json_ok({"stopped_count": stopped}, services.profile.envelope)

    return handle


def resume_run(services: Services) -> Handler:
    headers = sse_headers(services.profile)

    async def handle(request: Request) -> Response:
        run = services.chat.run(request.params["run_id"])
        if run is None or run.owner not in identities(request):
            raise business(404, RUN_UNAVAILABLE)
        stream = run.follow()
        return Response(200, list(headers), stream.body(services.sse_heartbeat))

    return handle


def _session_ids(body: dict[str, Any], *, validate: bool) -> list[str]:
    """The list of ids to delete. 4.27: a missing or mistyped field is a 422; both
    profiles: an empty list is a business error (R10)."""
    value = body.get("session_ids")
    if validate:
        loc: list[str | int] = ["body", "session_ids"]
        if "session_ids" not in body:
            raise Invalid([validation.problem("missing", loc, "Field required", body)])
        if not isinstance(value, list):
            msg = "Input should be a valid list"
            raise Invalid([validation.problem("list_type", loc, msg, value)])
        problems = [
            validation.problem("string_type", [*loc, i], "Input should be a valid string", item)
            for i, item in enumerate(value)
            if not isinstance(item, str)
        ]
        if problems:
            raise Invalid(problems)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise business(400, INVALID_SESSION_IDS)
    return list(value)
