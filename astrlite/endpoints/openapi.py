"""GET /api/v1/openapi.json: the published contract, public (no key needed).

The file describes the default profile (4.22). Under another profile the served copy
says what that profile changes on the wire: error envelopes without ``data`` and the
422 validation bodies (``Profile.envelope``, ``Profile.validation_422``). The routes are
the same in both profiles.
"""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Any

from astrlite.compat import Profile
from astrlite.http.request import Request
from astrlite.http.response import Response
from astrlite.http.router import Handler

if TYPE_CHECKING:
    from astrlite.services import Services

# Operations whose JSON body is validated with FastAPI's 422 under validation_422.
VALIDATED = (
    ("/api/v1/chat", "post"),
    ("/api/v1/chat/sessions/{session_id}", "patch"),
    ("/api/v1/chat/sessions/batch-delete", "post"),
)
VALIDATION_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["type", "loc", "msg", "input"],
    "properties": {
        "type": {"type": "string"},
        "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
        "msg": {"type": "string"},
        "input": {},
        "ctx": {"type": "object"},
    },
}


@cache
def openapi_file() -> bytes:
    # Imported here: importlib.resources pulls in tempfile, shutil, bz2 and lzma, start-up
    # time that only this endpoint needs.
    from importlib import resources

    return resources.files("astrlite").joinpath("openapi.json").read_bytes()


@cache
def openapi_document(profile: Profile) -> bytes:
    """The document for a profile: the file itself for the seed's wire."""
    if profile.envelope.error_data and not profile.validation_422:
        return openapi_file()
    document: dict[str, Any] = json.loads(openapi_file())
    schemas = document["components"]["schemas"]
    if not profile.envelope.error_data:
        envelope = schemas["ErrorEnvelope"]
        envelope["required"] = [name for name in envelope["required"] if name != "data"]
        del envelope["properties"]["data"]
    if profile.validation_422:
        schemas["ValidationError"] = VALIDATION_ERROR
        schemas["HTTPValidationError"] = {
            "type": "object",
            "required": ["detail"],
            "properties": {
                "detail": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/ValidationError"},
                }
            },
        }
        for path, method in VALIDATED:
            document["paths"][path][method]["responses"]["422"] = {
                "description": "The body is not a JSON object or a field has the wrong type.",
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/HTTPValidationError"}
                    }
                },
            }
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


def get_openapi(services: Services) -> Handler:
    profile = services.profile

    async def handle(request: Request) -> Response:
        # Read on first use, not at start-up (cached).
        body = openapi_document(profile)
        return Response(200, [(b"content-type", b"application/json")], body)

    return handle
