"""What a handler sees of a request: headers, query, and a body pulled under a limit."""

from __future__ import annotations

import pytest

from astrlite.errors import ApiError
from astrlite.http.request import DeclaredTooLarge, Request

pytestmark = pytest.mark.anyio

TEMPLATE = "Too big (limit {limit} bytes)"


class Body:
    """A body source handing out fixed pieces, counting how often it was asked."""

    def __init__(self, *pieces: bytes, declared_too_large: bool = False) -> None:
        self.pieces = list(pieces)
        self.declared_too_large = declared_too_large
        self.asked = 0

    async def receive_chunk(self, limit: int) -> bytes | None:
        self.asked += 1
        if self.declared_too_large:
            raise DeclaredTooLarge
        return self.pieces.pop(0) if self.pieces else None


def request(
    body: Body, *, content_length: int | None = None, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> Request:
    query = (("a", "1"), ("b", ""), ("a", "2"))
    return Request("POST", "/p", query, list(headers), body, content_length)


def test_the_first_header_and_query_value_win() -> None:
    req = request(Body(), headers=((b"x-one", b"1"), (b"x-one", b"2")))
    assert req.header(b"x-one") == b"1"
    assert req.header(b"x-two") is None
    assert (req.query_value("a"), req.query_value("b"), req.query_value("c")) == ("1", "", None)


async def test_the_body_is_read_in_pieces() -> None:
    assert await request(Body(b"ab", b"", b"cd")).read(10) == b"abcd"


async def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    body = Body(b"x" * 11)
    with pytest.raises(ApiError) as caught:
        await request(body, content_length=11).read(10, TEMPLATE)
    assert (caught.value.status, caught.value.message) == (413, "Too big (limit 10 bytes)")
    assert caught.value.close
    assert body.asked == 0


async def test_a_body_that_grows_over_the_limit_is_refused() -> None:
    with pytest.raises(ApiError) as caught:
        await request(Body(b"x" * 6, b"x" * 6)).read(10, TEMPLATE)
    assert caught.value.status == 413


async def test_a_body_declared_too_large_by_its_framing_gets_the_endpoint_message() -> None:
    with pytest.raises(ApiError) as caught:
        await request(Body(declared_too_large=True)).read(10, TEMPLATE)
    assert (caught.value.status, caught.value.message) == (413, "Too big (limit 10 bytes)")


async def test_a_json_object_is_parsed() -> None:
    assert await request(Body(b'{"a": [1, ', b'"x"]}')).json_object(100) == {"a": [1, "x"]}


@pytest.mark.parametrize(
    "raw", [b"", b"[]", b"nope", b"\xff", b"[" * 5000 + b"]" * 5000, b"1" * 5000, b"null"]
)
async def test_anything_but_a_json_object_is_one_business_error(raw: bytes) -> None:
    with pytest.raises(ApiError) as caught:
        await request(Body(raw)).json_object(20000)
    error = caught.value
    assert (error.status, error.message, error.business) == (
        400,
        "Request body must be a JSON object",
        True,
    )
