"""Response heads for h11 without re-validating what never changes.

h11 checks every header of every response against its grammar. Ours are mostly the
same few pairs (Server, a Date that changes once a second, `content-type: application/
json`): each distinct pair is validated once, by h11's own check, and remembered; the
framing headers we make ourselves are well-formed by construction. h11 is pinned to one
minor version (pyproject.toml) because this builds its `Headers` directly.
"""

from __future__ import annotations

import h11
from h11._headers import Headers, normalize_and_validate

HeaderPairs = list[tuple[bytes, bytes]]
_Item = tuple[bytes, bytes, bytes]  # h11's form: (name as given, lower-case name, value)

# Pairs carrying request data (a file name, an origin) are new each time: the memory is
# bounded (a count, and a size per pair, so long values cannot fill it), and such pairs
# are simply validated each time once it is full.
MAX_REMEMBERED = 512
MAX_REMEMBERED_BYTES = 256
_valid: dict[tuple[bytes, bytes], _Item] = {}


def _checked(pair: tuple[bytes, bytes]) -> _Item:
    item = _valid.get(pair)
    if item is None:
        # Raises h11.LocalProtocolError for a name or value h11 would refuse.
        (item,) = normalize_and_validate([pair])._full_items
        if len(_valid) < MAX_REMEMBERED and len(pair[0]) + len(pair[1]) <= MAX_REMEMBERED_BYTES:
            _valid[pair] = item
    return item


def response(
    status: int,
    fixed: HeaderPairs,
    headers: HeaderPairs,
    length: int | None,
    *,
    close: bool,
) -> h11.Response:
    """`fixed`: pairs we make (Server, Date), lower-case and valid; `headers`: the
    handler's, never framing headers; then Content-Length and Connection as asked."""
    items: list[_Item] = [(name, name, value) for name, value in fixed]
    items += [_checked(pair) for pair in headers]
    if length is not None:
        items.append((b"content-length", b"content-length", b"%d" % length))
    if close:
        items.append((b"connection", b"connection", b"close"))
    return h11.Response(status_code=status, headers=Headers(items))
