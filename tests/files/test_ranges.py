from __future__ import annotations

import pytest

from astrlite.files.ranges import (
    FullContent,
    PartialContent,
    RangeNotSatisfiable,
    RangeResult,
    etag_matches,
    parse_range,
)

FULL = FullContent()


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 100, FULL),
        ("", 100, FULL),
        ("bytes=0-9", 100, PartialContent(0, 9, 100)),
        ("bytes=10-10", 100, PartialContent(10, 10, 100)),
        ("bytes=90-", 100, PartialContent(90, 99, 100)),
        ("bytes=0-", 100, PartialContent(0, 99, 100)),
        ("bytes=50-1000", 100, PartialContent(50, 99, 100)),
        ("bytes=99-99", 100, PartialContent(99, 99, 100)),
        ("bytes=-10", 100, PartialContent(90, 99, 100)),
        ("bytes=-1000", 100, PartialContent(0, 99, 100)),
        ("bytes=-0", 100, RangeNotSatisfiable(100)),
        ("bytes=100-", 100, RangeNotSatisfiable(100)),
        ("bytes=100-200", 100, RangeNotSatisfiable(100)),
        ("bytes=0-0", 0, RangeNotSatisfiable(0)),
        ("bytes=0-", 0, RangeNotSatisfiable(0)),
        ("bytes=-5", 0, RangeNotSatisfiable(0)),
        ("BYTES=1-2", 100, PartialContent(1, 2, 100)),
        (" bytes= 1-2 ", 100, PartialContent(1, 2, 100)),
        ("bytes=007-008", 100, PartialContent(7, 8, 100)),
        ("bytes=5-2", 100, FULL),  # reversed: invalid, ignored
        ("bytes=0-1,5-6", 100, FULL),  # multi-range: ignored
        ("bytes=0-1,", 100, FULL),
        ("bytes=-", 100, FULL),
        ("bytes=", 100, FULL),
        ("bytes=a-b", 100, FULL),
        ("bytes=1 - 2", 100, FULL),
        ("bytes=-1-2", 100, FULL),
        ("bytes=+1-2", 100, FULL),
        ("bytes=١-٢", 100, FULL),  # non-ASCII digits
        ("items=0-1", 100, FULL),
        ("bytes 0-1", 100, FULL),
        ("bytes=" + "9" * 5000 + "-", 100, RangeNotSatisfiable(100)),
        ("bytes=0-" + "9" * 5000, 100, PartialContent(0, 99, 100)),
        ("bytes=-" + "9" * 5000, 100, PartialContent(0, 99, 100)),
        ("bytes=" + "0" * 5000 + "1-2", 100, PartialContent(1, 2, 100)),
        ("bytes=" + "9" * 5000 + "-5", 100, FULL),
    ],
)
def test_parse_range(header: str | None, size: int, expected: RangeResult) -> None:
    assert parse_range(header, size) == expected


def test_content_range_values() -> None:
    partial = parse_range("bytes=10-19", 100)
    assert isinstance(partial, PartialContent)
    assert (partial.content_range, partial.length) == ("bytes 10-19/100", 10)
    unsatisfiable = parse_range("bytes=200-", 100)
    assert isinstance(unsatisfiable, RangeNotSatisfiable)
    assert unsatisfiable.content_range == "bytes */100"


@pytest.mark.parametrize(
    ("if_none_match", "etag", "matches"),
    [
        (None, '"abc"', False),
        ("", '"abc"', False),
        ('"abc"', '"abc"', True),
        ('"abd"', '"abc"', False),
        ("*", '"abc"', True),
        (" * ", '"abc"', True),
        ('W/"abc"', '"abc"', True),
        ('"abc"', 'W/"abc"', True),
        ('"x", "abc"', '"abc"', True),
        ('"x",W/"abc" , "y"', '"abc"', True),
        ('"x", "y"', '"abc"', False),
        ('"a,b"', '"a,b"', True),
        ("abc", '"abc"', False),  # not an entity-tag
        ('w/"abc"', '"abc"', False),  # "W/" is case-sensitive
        ('""', '"abc"', False),
        ('"abc", garbage', '"abc"', False),  # malformed: ignored
        ('"x",, ,"abc",', '"abc"', True),  # empty list elements are allowed
    ],
)
def test_etag_matches(if_none_match: str | None, etag: str, matches: bool) -> None:
    assert etag_matches(if_none_match, etag) is matches
