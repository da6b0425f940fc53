"""Attachments: multipart uploads, ranges, safe file names, content sniffing, the store on
disk."""

from __future__ import annotations

from pathlib import Path

# The kinds of attachment (AstrBot's message part types for media), in the wire's order.
MEDIA_KINDS = ("image", "record", "file", "video")
ATTACHMENTS_DIR = "attachments"
INCOMING_DIR = ".incoming"  # uploads being written, moved into place when complete


def prepare_incoming(data_dir: Path) -> int:
    """Create the uploads' folder, and delete the temporary files of uploads that never
    finished (a crash, a kill); the number deleted. At start-up, before any upload can
    begin; here, not in the attachment store, whose module start-up does not load."""
    incoming = data_dir / ATTACHMENTS_DIR / INCOMING_DIR
    incoming.mkdir(parents=True, exist_ok=True)
    removed = 0
    for leftover in incoming.iterdir():
        leftover.unlink(missing_ok=True)
        removed += 1
    return removed
