"""GET|PUT /api/v1/system-config (scope config): the default config's `admins_id`, and
nothing else (docs/compatibility.md G2: AstrBot returns the whole config, secrets
included). Changing the list needs `config:edit_admin`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from astrlite.errors import ApiError
from astrlite.http.request import Request
from astrlite.http.response import Response, json_ok
from astrlite.http.router import Handler
from astrlite.principal import CONFIG_EDIT_ADMIN
from astrlite.store import clock

if TYPE_CHECKING:
    from astrlite.services import Services

EDIT_ADMIN_REQUIRED = "config:edit_admin scope is required to change admins_id"
SAVED = "保存成功~"
# AstrBot's schema check, in its words: '错误的类型 <key>: 期望是 <type>, 得到了 <type>'.
WRONG_TYPE = "格式校验未通过: ['错误的类型 {}: 期望是 {}, 得到了 {}']"


def get_config(services: Services) -> Handler:
    admins = services.admins
    style = services.profile.envelope

    async def handle(request: Request) -> Response:
        return json_ok(
            {
                "config": {"admins_id": admins.default},
                "metadata": {},
                "server_utc_time": clock.now_iso(),
                "server_utc_offset_minutes": 0,  # astrlite keeps time in UTC
            },
            style,
        )

    return handle


def put_config(services: Services) -> Handler:
    admins = services.admins
    style = services.profile.envelope

    async def handle(request: Request) -> Response:
        body = await request.json_object(services.options.max_json_bytes)
        assert request.principal is not None  # the app authenticates every /api/v1 call
        # Other keys name settings astrlite does not have; they are ignored.
        if "admins_id" not in body or body["admins_id"] == admins.default:
            return json_ok({}, style, message=SAVED)
        if not request.principal.allows(CONFIG_EDIT_ADMIN):
            raise ApiError(403, EDIT_ADMIN_REQUIRED)
        await admins.replace_default(_admins_id(body["admins_id"]))
        return json_ok({}, style, message=SAVED)

    return handle


def _admins_id(value: Any) -> list[str]:
    """A list of ids (strings, or whole numbers kept as text)."""
    if not isinstance(value, list):
        raise ApiError(400, WRONG_TYPE.format("admins_id", "list", type(value).__name__))
    for index, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            where = f"admins_id[{index}]"
            raise ApiError(400, WRONG_TYPE.format(where, "str", type(item).__name__))
    return [str(item) for item in value]
