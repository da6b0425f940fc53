"""Response heads built from remembered, already validated header pairs."""

from __future__ import annotations

import h11
import pytest

from astrlite.http import heads

FIXED = [(b"server", b"astrlite/test"), (b"date", b"Sun, 06 Dec 2026 07:00:00 GMT")]


def wire(response: h11.Response) -> bytes:
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    connection.next_event()
    return connection.send(response)


def test_the_head_is_what_h11_writes_from_plain_pairs() -> None:
    ours = heads.response(200, FIXED, [(b"Content-Type", b"application/json")], 5, close=True)
    plain = h11.Response(
        status_code=200,
        headers=[
            *FIXED,
            (b"Content-Type", b"application/json"),
            (b"content-length", b"5"),
            (b"connection", b"close"),
        ],
    )
    assert wire(ours) == wire(plain)
    assert ours.headers == plain.headers  # names compared in lower case


@pytest.mark.parametrize(
    "pair", [(b"x-name", b"a\r\nset-cookie: injected"), (b"bad name", b"v"), (b"x", b"\x00")]
)
def test_a_bad_pair_is_refused_every_time(pair: tuple[bytes, bytes]) -> None:
    for _ in range(2):
        with pytest.raises(h11.LocalProtocolError):
            heads.response(200, FIXED, [pair], None, close=False)
    assert pair not in heads._valid


def test_remembered_pairs_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heads, "_valid", {})
    for number in range(heads.MAX_REMEMBERED + 10):
        response = heads.response(200, [], [(b"x-n", b"%d" % number)], None, close=False)
        assert response.headers == [(b"x-n", b"%d" % number)]
    assert len(heads._valid) == heads.MAX_REMEMBERED


def test_a_long_pair_is_not_remembered() -> None:
    pair = (b"content-disposition", b"x" * heads.MAX_REMEMBERED_BYTES)
    response = heads.response(200, [], [pair], None, close=False)
    assert response.headers == [pair] and pair not in heads._valid
