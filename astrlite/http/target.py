"""Strict parsing of the request target: percent-decoding must be valid and UTF-8."""

from __future__ import annotations

from dataclasses import dataclass

from astrlite.errors import MALFORMED_TARGET, ApiError

_HEX = frozenset(b"0123456789abcdefABCDEF")


@dataclass(frozen=True, slots=True)
class Target:
    path: str
    query: tuple[tuple[str, str], ...]


def _bad_target() -> ApiError:
    return ApiError(400, MALFORMED_TARGET)


def unquote(raw: bytes, *, plus_is_space: bool) -> str:
    """Percent-decode strictly: every % must start a hex pair; the result must be UTF-8."""
    if plus_is_space:
        raw = raw.replace(b"+", b" ")
    if b"%" not in raw:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _bad_target() from None
    out = bytearray()
    pieces = raw.split(b"%")
    out += pieces[0]
    for piece in pieces[1:]:
        if len(piece) < 2 or piece[0] not in _HEX or piece[1] not in _HEX:
            raise _bad_target()
        out.append(int(piece[:2], 16))
        out += piece[2:]
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad_target() from None


def parse_query(raw: bytes) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in raw.split(b"&"):
        if not item:
            continue
        name, _, value = item.partition(b"=")
        pairs.append((unquote(name, plus_is_space=True), unquote(value, plus_is_space=True)))
    return tuple(pairs)


def parse_target(raw: bytes) -> Target:
    """Split a target into a decoded path and decoded query pairs."""
    if not raw.startswith(b"/"):
        raw = _origin_form(raw)
    raw_path, _, raw_query = raw.partition(b"?")
    raw_query = raw_query.partition(b"#")[0]
    return Target(unquote(raw_path, plus_is_space=False), parse_query(raw_query))


def _origin_form(raw: bytes) -> bytes:
    """The path and query of an absolute-form target, which RFC 9112 §3.2.2 says a server
    must accept. Its host is not checked: astrlite serves one origin, whatever its name."""
    scheme, separator, rest = raw.partition(b"://")
    if not separator or scheme.lower() not in _SCHEMES:
        raise _bad_target()
    end = next((i for i, byte in enumerate(rest) if byte in _AUTHORITY_ENDS), len(rest))
    authority, path = rest[:end], rest[end:]
    if not authority or b"@" in authority:  # RFC 9110 §4.2.4: userinfo is an error
        raise _bad_target()
    return path if path.startswith(b"/") else b"/" + path


_SCHEMES = (b"http", b"https")
_AUTHORITY_ENDS = frozenset(b"/?#")
_REDACTED_NAMES = (b"api_key", b"key")


def redact(raw: bytes) -> str:
    """The target for the access log, with api_key/key values replaced (F18)."""
    path, sep, query = raw.partition(b"?")
    if not sep:
        return raw.decode("latin-1")
    items = []
    for item in query.split(b"&"):
        name, eq, _ = item.partition(b"=")
        items.append(name + b"=REDACTED" if eq and name in _REDACTED_NAMES else item)
    return (path + b"?" + b"&".join(items)).decode("latin-1")
