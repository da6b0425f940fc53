"""Bot rows under the 4.27 profile: arrival order, and files with both names."""

from __future__ import annotations

from astrlite.chat.accumulator import ReplyAccumulator
from astrlite.chat.events import complete_event, media_event, media_names, plain_event

MID = "m"


def feed_reply(accumulator: ReplyAccumulator, display: str | None) -> dict[str, object] | None:
    accumulator.feed(plain_event("see ", streaming=True, message_id=MID))
    file_event = media_event(
        "file", "ab12.txt", streaming=True, message_id=MID, display_name=display
    )
    accumulator.feed(file_event, "att-1")
    accumulator.feed(plain_event("above", streaming=True, message_id=MID))
    return accumulator.feed(complete_event("see above", "", message_id=MID))


def test_seed_rows_put_media_first_and_keep_the_stored_name() -> None:
    row = feed_reply(ReplyAccumulator(), None)
    assert row == {
        "type": "bot",
        "message": [
            {"type": "file", "attachment_id": "att-1", "filename": "ab12.txt"},
            {"type": "plain", "text": "see above"},
        ],
    }


def test_4_27_rows_keep_arrival_order_and_both_file_names() -> None:
    row = feed_reply(ReplyAccumulator(arrival_order=True), "report.txt")
    assert row == {
        "type": "bot",
        "message": [
            {"type": "plain", "text": "see "},
            {
                "type": "file",
                "attachment_id": "att-1",
                "filename": "report.txt",
                "stored_filename": "ab12.txt",
            },
            {"type": "plain", "text": "above"},
        ],
    }


def test_media_names() -> None:
    shown = media_event("file", "x.txt", streaming=True, message_id=MID, display_name="a|b.txt")
    assert shown["data"] == "[FILE]x.txt|a|b.txt"
    assert media_names(shown) == ("x.txt", "a|b.txt")
    image = media_event("image", "y.png", streaming=True, message_id=MID, display_name="p.png")
    assert image["data"] == "[IMAGE]y.png"  # only files carry the display name
    assert media_names(image) == ("y.png", None)
