"""Text built from many small deltas in linear time (`str +=` on an attribute copies the
whole string each time: quadratic on a long streamed reply)."""

from __future__ import annotations


class TextBuffer:
    __slots__ = ("_pieces",)

    def __init__(self) -> None:
        self._pieces: list[str] = []

    def __bool__(self) -> bool:
        return bool(self._pieces)

    def append(self, text: str) -> None:
        if text:
            self._pieces.append(text)

    def replace(self, text: str) -> None:
        self._pieces = [text] if text else []

    def clear(self) -> None:
        self._pieces = []

    def value(self) -> str:
        if len(self._pieces) > 1:
            self._pieces = ["".join(self._pieces)]
        return self._pieces[0] if self._pieces else ""
