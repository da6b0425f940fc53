from __future__ import annotations

import struct

import pytest

from astrlite.files.sniff import SNIFF_BYTES, Sniffed, is_active_type, sniff


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = b"ftyp" + major + b"\x00\x00\x02\x00" + b"".join(compatible)
    return struct.pack(">I", len(body) + 4) + body + b"\x00\x00\x00\x08free"


def riff(form: bytes, chunk: bytes) -> bytes:
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + form + chunk


def ogg(payload: bytes) -> bytes:
    header = b"OggS\x00\x02" + b"\x00" * 8 + b"\x01\x00\x00\x00" + b"\x00" * 8
    return header + bytes([1, len(payload)]) + payload


def ebml(doctype: bytes) -> bytes:
    return (
        b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82"
        + bytes([0x80 | len(doctype)])
        + doctype
        + b"\x42\x87\x81\x04"
    )


BMP = (
    b"BM"
    + struct.pack("<I", 70)
    + b"\x00\x00\x00\x00"
    + struct.pack("<I", 54)
    + struct.pack("<IiiHHI", 40, 1, 1, 1, 24, 0)
    + b"\x00" * 20
)
ICO = b"\x00\x00\x01\x00\x01\x00" + b"\x10\x10\x00\x00\x01\x00\x20\x00" + b"\x00" * 8
WEBM_HEAD = ebml(b"webm")

SAMPLES: list[tuple[str, bytes, str, str]] = [
    ("png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01", "image/png", "image"),
    ("jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01", "image/jpeg", "image"),
    ("gif87", b"GIF87a\x01\x00\x01\x00\x80\x00\x00", "image/gif", "image"),
    ("gif89", b"GIF89a\x01\x00\x01\x00\x80\x00\x00", "image/gif", "image"),
    ("webp", riff(b"WEBP", b"VP8 \x00\x00\x00\x00"), "image/webp", "image"),
    ("bmp", BMP, "image/bmp", "image"),
    ("ico", ICO, "image/x-icon", "image"),
    ("avif", ftyp(b"avif", b"avif", b"mif1", b"miaf"), "image/avif", "image"),
    ("avif under mif1", ftyp(b"mif1", b"mif1", b"avif"), "image/avif", "image"),
    ("heic", ftyp(b"heic", b"mif1", b"heic"), "image/heic", "image"),
    ("heic under mif1", ftyp(b"mif1", b"mif1", b"heic"), "image/heic", "image"),
    ("heif", ftyp(b"mif1", b"mif1"), "image/heif", "image"),
    ("tiff le", b"II*\x00\x08\x00\x00\x00", "image/tiff", "image"),
    ("tiff be", b"MM\x00*\x00\x00\x00\x08", "image/tiff", "image"),
    ("mp3 id3", b"ID3\x04\x00\x00\x00\x00\x00\x00", "audio/mpeg", "record"),
    ("mp3 frame", b"\xff\xfb\x90\x64\x00\x00", "audio/mpeg", "record"),
    ("mp3 mpeg2", b"\xff\xf3\x48\xc4\x00\x00", "audio/mpeg", "record"),
    ("wav", riff(b"WAVE", b"fmt \x10\x00\x00\x00"), "audio/wav", "record"),
    ("ogg opus", ogg(b"OpusHead\x01\x02"), "audio/ogg", "record"),
    ("ogg vorbis", ogg(b"\x01vorbis\x00\x00\x00\x00"), "audio/ogg", "record"),
    ("ogg theora", ogg(b"\x80theora\x03\x02"), "video/ogg", "video"),
    ("ogg other", ogg(b"\x7fUNKNOWN"), "application/ogg", "file"),
    ("flac", b"fLaC\x00\x00\x00\x22", "audio/flac", "record"),
    ("aac adts", b"\xff\xf1\x50\x80\x02\x1f\xfc", "audio/aac", "record"),
    ("m4a", ftyp(b"M4A ", b"M4A ", b"mp42", b"isom"), "audio/mp4", "record"),
    ("amr", b"#!AMR\n\x3c", "audio/amr", "record"),
    ("amr-wb", b"#!AMR-WB\n\x04", "audio/amr-wb", "record"),
    ("silk", b"#!SILK_V3\x0c\x00", "audio/silk", "record"),
    ("silk tencent", b"\x02#!SILK_V3\x0c\x00", "audio/silk", "record"),
    ("mp4 isom", ftyp(b"isom", b"isom", b"iso2", b"avc1", b"mp41"), "video/mp4", "video"),
    ("mp4 mp42", ftyp(b"mp42", b"mp42", b"isom"), "video/mp4", "video"),
    ("mp4 avc1", ftyp(b"avc1", b"isom"), "video/mp4", "video"),
    ("mp4 by compatible brand", ftyp(b"xxxx", b"xxxx", b"isom"), "video/mp4", "video"),
    ("3gp", ftyp(b"3gp4", b"isom", b"3gp4"), "video/3gpp", "video"),
    ("mov ftyp", ftyp(b"qt  ", b"qt  "), "video/quicktime", "video"),
    ("mov legacy", b"\x00\x00\x00\x08wide\x00\x00\x00\x00mdat", "video/quicktime", "video"),
    ("webm", WEBM_HEAD, "video/webm", "video"),
    ("mkv", ebml(b"matroska"), "video/x-matroska", "video"),
    ("avi", riff(b"AVI ", b"LIST\x00\x00\x00\x00hdrl"), "video/x-msvideo", "video"),
    ("flv", b"FLV\x01\x05\x00\x00\x00\x09", "video/x-flv", "video"),
    ("pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "application/pdf", "file"),
    ("zip", b"PK\x03\x04\x14\x00\x00\x00\x08\x00", "application/zip", "file"),
    ("empty zip", b"PK\x05\x06" + b"\x00" * 18, "application/zip", "file"),
    ("gzip", b"\x1f\x8b\x08\x00\x00\x00\x00\x00", "application/gzip", "file"),
    ("7z", b"7z\xbc\xaf\x27\x1c\x00\x04", "application/x-7z-compressed", "file"),
    ("rar", b"Rar!\x1a\x07\x01\x00", "application/vnd.rar", "file"),
    ("xz", b"\xfd7zXZ\x00\x00\x04", "application/x-xz", "file"),
    ("tar", b"a.txt" + b"\x00" * 252 + b"ustar\x0000" + b"\x00" * 249, "application/x-tar", "file"),
    ("ole", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00", "application/x-ole-storage", "file"),
    ("text", b"hello, world\n", "text/plain", "file"),
    ("utf-8 text", "你好，世界\n".encode(), "text/plain", "file"),
    ("json text", b'{"a": 1}', "text/plain", "file"),
    ("text, not bmp", b"BMW is a car\n", "text/plain", "file"),
    ("binary", bytes(range(256)), "application/octet-stream", "file"),
    ("latin-1", "café".encode("latin-1"), "application/octet-stream", "file"),
    ("text with nul", b"abc\x00def", "application/octet-stream", "file"),
    ("empty", b"", "application/octet-stream", "file"),
    ("short ff", b"\xff", "application/octet-stream", "file"),
    ("truncated riff", b"RIFF\x00", "application/octet-stream", "file"),
    ("ebml without doctype", b"\x1a\x45\xdf\xa3\x80", "application/octet-stream", "file"),
]


@pytest.mark.parametrize(
    ("head", "mime", "kind"), [case[1:] for case in SAMPLES], ids=[case[0] for case in SAMPLES]
)
def test_sniffed_from_bytes(head: bytes, mime: str, kind: str) -> None:
    assert sniff(head, None, "upload") == Sniffed(mime, kind)
    # The declared type and name never make something an image, record or video...
    assert sniff(head, "video/mp4", "x.mp4").kind == kind
    assert sniff(head, "image/png", "x.png").kind == kind


def test_text_cut_inside_a_character_is_still_text() -> None:
    text = ("中" * SNIFF_BYTES).encode()
    assert sniff(text, None, "a.txt") == Sniffed("text/plain", "file")
    assert sniff(text[:SNIFF_BYTES], None, "a.txt") == Sniffed("text/plain", "file")
    # A short head is the whole file: it must not end inside a character.
    assert sniff(text[:7], None, "a.txt") == Sniffed("application/octet-stream", "file")


ACTIVE = [
    b"<!DOCTYPE html><html><script>alert(1)</script>",
    b"<html><body onload=alert(1)>",
    b"  \r\n\t<script>alert(document.cookie)</script>",
    b"\xef\xbb\xbf<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>',
    b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"/>',
    b"<x:script xmlns:x='http://www.w3.org/1999/xhtml'>alert(1)</x:script>",
    b"\x0c<iframe src=javascript:alert(1)>",
]
ACTIVE_TYPES = [
    "image/png",
    "image/svg+xml",
    "text/html",
    "application/xhtml+xml",
    "text/xml",
    "application/xml",
    "text/javascript",
    "application/javascript",
    None,
]


@pytest.mark.parametrize("head", ACTIVE)
@pytest.mark.parametrize("declared", ACTIVE_TYPES)
def test_markup_is_never_served_as_itself(head: bytes, declared: str | None) -> None:
    for filename in ("x.png", "x.html", "x.svg", "x"):
        assert sniff(head, declared, filename) == Sniffed("application/octet-stream", "file")


@pytest.mark.parametrize("declared", ACTIVE_TYPES)
def test_declared_types_never_pass_through(declared: str | None) -> None:
    for head in (b"alert(document.cookie)", b"plain words", bytes(range(256))):
        result = sniff(head, declared, "x.js")
        assert result.mime_type in ("text/plain", "application/octet-stream")
        assert result.kind == "file"


ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.mark.parametrize(
    ("head", "declared", "filename", "mime"),
    [
        (ZIP, DOCX, "report", DOCX),
        (ZIP, f"{DOCX}; charset=binary", "report", DOCX),
        (ZIP, "application/octet-stream", "report.DOCX", DOCX),
        (ZIP, None, "book.epub", "application/epub+zip"),
        (ZIP, "application/msword", "a.doc", "application/zip"),  # not a ZIP type
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", None, "old.xls", "application/vnd.ms-excel"),
        (b"a,b\n1,2\n", "text/csv", "data", "text/csv"),
        (b"a,b\n1,2\n", None, "data.csv", "text/csv"),
        (b'{"a": 1}', "application/json", "x", "application/json"),
        (b"# Title\n", None, "README.md", "text/markdown"),
        (b"plain", "application/pdf", "x.pdf", "text/plain"),
        (b"%PDF-1.4", "application/zip", "x.docx", "application/pdf"),
    ],
)
def test_passive_refinements(head: bytes, declared: str | None, filename: str, mime: str) -> None:
    assert sniff(head, declared, filename) == Sniffed(mime, "file")


SCRIPT = b"fetch('/api/v1/chat/sessions?username=admin').then(r => r.text())\n"


@pytest.mark.parametrize(
    ("declared", "filename"),
    [
        ("application/javascript", "a.txt"),
        ("text/javascript", "notes"),
        ("text/javascript; charset=utf-8", "notes"),
        ("application/x-javascript", "notes"),
        ("application/ecmascript", "notes"),
        ("TEXT/HTML", "notes"),
        ("application/xhtml+xml", "notes"),
        ("image/svg+xml", "notes"),
        ("application/rss+xml", "notes"),
        ("text/xml", "notes"),
        ("application/xml", "notes"),
        ("text/vbscript", "notes"),
        (None, "a.js"),
        ("text/plain", "a.mjs"),
        ("text/plain", "page.HTML"),
        ("text/plain", "page.htm"),
        ("application/octet-stream", "x.svg"),
        (None, "feed.xml"),
        (None, "app.xhtml"),
        (None, "style.xsl"),
    ],
)
def test_declared_or_named_active_content_is_never_text(
    declared: str | None, filename: str
) -> None:
    """F9: a script needs no leading "<"; what it claims to be decides (issue 12)."""
    assert sniff(SCRIPT, declared, filename) == Sniffed("application/octet-stream", "file")
    assert sniff(ZIP, declared, filename) == Sniffed("application/octet-stream", "file")


@pytest.mark.parametrize("filename", ["x.svg", "x.html", "x.js"])
def test_media_stays_media_whatever_it_claims(filename: str) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"
    assert sniff(png, "text/html", filename) == Sniffed("image/png", "image")


@pytest.mark.parametrize(
    ("mime", "active"),
    [
        ("text/html; charset=utf-8", True),
        ("application/atom+xml", True),
        ("text/javascript1.5", True),
        ("text/plain", False),
        ("application/json", False),
        ("text/css", False),
        ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", False),
        ("", False),
        (None, False),
    ],
)
def test_is_active_type(mime: str | None, active: bool) -> None:
    assert is_active_type(mime) is active


def test_only_the_head_is_looked_at() -> None:
    head = b"plain text" + b" " * SNIFF_BYTES + b"\x00"
    assert sniff(head, None, "a.txt").mime_type == "text/plain"
