"""Decide an upload's MIME type and kind from its first bytes (docs/compatibility.md F9).

The declared Content-Type is never trusted for images, audio or video: only magic
numbers make something ``image``, ``record`` or ``video``. Active content becomes
``application/octet-stream``, and no active type is ever returned: bytes whose first
character is ``<`` (HTML, SVG, XML), and any file that is not media but was declared as
an active type or named with an active suffix (a script needs no ``<``). Otherwise the
declared type and the file name only refine a sniffed passive container (a ZIP that is
a .docx, text that is CSV).
"""

from __future__ import annotations

import codecs
import posixpath
from collections.abc import Callable
from dataclasses import dataclass

# Enough for every signature below: tar's "ustar" sits at offset 257, and ftyp
# compatible brands and the EBML DocType come within the first hundred bytes.
SNIFF_BYTES = 512

OCTET_STREAM = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class Sniffed:
    mime_type: str
    kind: str  # image | record | video | file


# (offset, signature, MIME type)
_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"fLaC", "audio/flac"),
    (0, b"#!AMR\n", "audio/amr"),
    (0, b"#!AMR-WB\n", "audio/amr-wb"),
    (0, b"#!SILK", "audio/silk"),
    (0, b"\x02#!SILK", "audio/silk"),  # Tencent's variant, as QQ and WeChat send it
    (0, b"FLV\x01", "video/x-flv"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"PK\x03\x04", "application/zip"),
    (0, b"PK\x05\x06", "application/zip"),  # an empty archive
    (0, b"\x1f\x8b\x08", "application/gzip"),
    (0, b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (0, b"Rar!\x1a\x07", "application/vnd.rar"),
    (0, b"\xfd7zXZ\x00", "application/x-xz"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),  # .doc .xls .ppt
    (257, b"ustar", "application/x-tar"),
)

_RIFF_FORMS = {b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo", b"WEBP": "image/webp"}

_FTYP_BRANDS = {
    b"avif": "image/avif",
    b"avis": "image/avif",
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"heim": "image/heic",
    b"heis": "image/heic",
    b"hevc": "image/heic-sequence",
    b"hevx": "image/heic-sequence",
    b"mif1": "image/heif",
    b"msf1": "image/heif-sequence",
    b"M4A ": "audio/mp4",
    b"M4B ": "audio/mp4",
    b"M4P ": "audio/mp4",
    b"F4A ": "audio/mp4",
    b"qt  ": "video/quicktime",
    b"3gp4": "video/3gpp",
    b"3gp5": "video/3gpp",
    b"3gp6": "video/3gpp",
    b"3g2a": "video/3gpp2",
    **dict.fromkeys(
        (b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"dash"),
        "video/mp4",
    ),
    **dict.fromkeys((b"M4V ", b"F4V ", b"mmp4", b"MSNV"), "video/mp4"),
}
# Generic HEIF brands: a compatible brand says which codec (AVIF or HEIC) is inside.
_GENERIC_FTYP = frozenset({b"mif1", b"msf1"})

# Top-level atoms a QuickTime file written before the ftyp box existed starts with.
_QUICKTIME_ATOMS = frozenset({b"moov", b"mdat", b"wide"})

_OGG_CODECS = (
    (b"OpusHead", "audio/ogg"),
    (b"\x01vorbis", "audio/ogg"),
    (b"\x7fFLAC", "audio/ogg"),
    (b"Speex   ", "audio/ogg"),
    (b"\x80theora", "video/ogg"),
)
_OGG_PAGE_HEADER = 27  # fixed part of an Ogg page header, before its segment table

# Sizes of the BMP info headers (BITMAPCOREHEADER … BITMAPV5HEADER).
_BMP_INFO_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})

# The first EBML element holds the DocType within a few dozen bytes.
_EBML_DOCTYPE_WINDOW = 64

# Passive types a sniffed container may be refined to, by file extension.
_REFINEMENTS: dict[str, dict[str, str]] = {
    "application/zip": {
        ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        ".odt": "application/vnd.oasis.opendocument.text",
        ".ods": "application/vnd.oasis.opendocument.spreadsheet",
        ".odp": "application/vnd.oasis.opendocument.presentation",
        ".epub": "application/epub+zip",
        ".jar": "application/java-archive",
        ".apk": "application/vnd.android.package-archive",
    },
    "application/x-ole-storage": {
        ".doc": "application/msword",
        ".xls": "application/vnd.ms-excel",
        ".ppt": "application/vnd.ms-powerpoint",
    },
    "text/plain": {
        ".csv": "text/csv",
        ".tsv": "text/tab-separated-values",
        ".md": "text/markdown",
        ".json": "application/json",
    },
}

_KINDS = {"image": "image", "audio": "record", "video": "video"}

# Types a browser runs as a page or a script, beyond the families `is_active_type`
# recognises by name (any "+xml" type, anything "javascript" or "ecmascript").
_ACTIVE_TYPES = frozenset(
    {
        "text/html",
        "text/xml",
        "application/xml",
        "text/xsl",
        "text/jscript",
        "text/vbscript",
        "text/x-component",
        "application/hta",
        "application/x-shockwave-flash",
        "multipart/x-mixed-replace",
    }
)
# File names that make a browser, or the desktop that opens a download, run the file.
ACTIVE_SUFFIXES = frozenset(
    {
        ".htm",
        ".html",
        ".shtml",
        ".xht",
        ".xhtml",
        ".mht",
        ".mhtml",
        ".svg",
        ".svgz",
        ".xml",
        ".xsl",
        ".xslt",
        ".js",
        ".mjs",
        ".cjs",
        ".jsx",
        ".vbs",
        ".hta",
        ".swf",
    }
)


def is_active_type(mime: str | None) -> bool:
    """Whether a browser would run content of this MIME type as a page or a script."""
    essence = (mime or "").partition(";")[0].strip().lower()
    subtype = essence.partition("/")[2]
    return (
        essence in _ACTIVE_TYPES
        or subtype.endswith("+xml")
        or "javascript" in subtype
        or "ecmascript" in subtype
    )


def sniff(head: bytes, declared: str | None, filename: str) -> Sniffed:
    """MIME type and kind of a file from its first ``SNIFF_BYTES`` bytes.

    ``head`` is shorter only when it is the whole file. An empty file is
    ``application/octet-stream``: there is nothing to tell it by.
    """
    head = head[:SNIFF_BYTES]
    if _looks_like_markup(head):
        return Sniffed(OCTET_STREAM, "file")
    mime = _detect(head)
    kind = _KINDS.get(mime.partition("/")[0], "file")
    if kind == "file" and (is_active_type(declared) or _suffix(filename) in ACTIVE_SUFFIXES):
        return Sniffed(OCTET_STREAM, "file")
    return Sniffed(_refine(mime, declared, filename), kind)


def _suffix(filename: str) -> str:
    return posixpath.splitext(filename)[1].lower()


def _looks_like_markup(head: bytes) -> bool:
    # HTML, SVG, XHTML and XML all start with "<" after an optional BOM and whitespace;
    # browsers sniff such bytes as HTML when they get the chance.
    return head.removeprefix(codecs.BOM_UTF8).lstrip(b" \t\r\n\f").startswith(b"<")


def _detect(head: bytes) -> str:
    for matcher in _MATCHERS:
        mime = matcher(head)
        if mime is not None:
            return mime
    return "text/plain" if _is_utf8_text(head, whole_file=len(head) < SNIFF_BYTES) else OCTET_STREAM


def _refine(mime: str, declared: str | None, filename: str) -> str:
    choices = _REFINEMENTS.get(mime)
    if choices is None:
        return mime
    declared_type = (declared or "").partition(";")[0].strip().lower()
    if declared_type in choices.values():
        return declared_type
    return choices.get(_suffix(filename), mime)


def _signature(head: bytes) -> str | None:
    for offset, signature, mime in _SIGNATURES:
        if head.startswith(signature, offset):
            return mime
    return None


def _riff(head: bytes) -> str | None:
    return _RIFF_FORMS.get(head[8:12]) if head.startswith(b"RIFF") else None


def _ftyp(head: bytes) -> str | None:
    if head[4:8] != b"ftyp":
        return None
    box_end = min(len(head), int.from_bytes(head[0:4], "big"))
    major = head[8:12]
    compatible = (head[i : i + 4] for i in range(16, box_end - 3, 4))
    if major in _GENERIC_FTYP:
        for brand in compatible:
            if brand not in _GENERIC_FTYP and _FTYP_BRANDS.get(brand, "").startswith("image/"):
                return _FTYP_BRANDS[brand]
        return _FTYP_BRANDS[major]
    if major in _FTYP_BRANDS:
        return _FTYP_BRANDS[major]
    return next((_FTYP_BRANDS[brand] for brand in compatible if brand in _FTYP_BRANDS), None)


def _quicktime(head: bytes) -> str | None:
    return "video/quicktime" if head[4:8] in _QUICKTIME_ATOMS else None


def _ebml(head: bytes) -> str | None:
    if not head.startswith(b"\x1a\x45\xdf\xa3"):
        return None
    window = head[:_EBML_DOCTYPE_WINDOW]
    if b"webm" in window:
        return "video/webm"
    if b"matroska" in window:
        return "video/x-matroska"
    return None


def _ogg(head: bytes) -> str | None:
    if not head.startswith(b"OggS") or len(head) <= _OGG_PAGE_HEADER:
        return None
    payload = _OGG_PAGE_HEADER + head[_OGG_PAGE_HEADER - 1]  # byte 26: segment count
    for signature, mime in _OGG_CODECS:
        if head.startswith(signature, payload):
            return mime
    return "application/ogg"


def _bmp(head: bytes) -> str | None:
    # "BM" alone would match text; the reserved zeros and info-header size would not.
    reserved_zero = head[6:10] == b"\x00\x00\x00\x00"
    info_size = int.from_bytes(head[14:18], "little")
    if head.startswith(b"BM") and reserved_zero and info_size in _BMP_INFO_SIZES:
        return "image/bmp"
    return None


def _ico(head: bytes) -> str | None:
    has_images = len(head) >= 6 and head[4:6] != b"\x00\x00"
    return "image/x-icon" if head.startswith(b"\x00\x00\x01\x00") and has_images else None


def _mpeg_audio(head: bytes) -> str | None:
    """AAC in ADTS, or an MP3 frame without an ID3 tag, by its 11- or 12-bit sync word."""
    if len(head) < 3 or head[0] != 0xFF:
        return None
    if head[1] & 0xF6 == 0xF0:  # 12-bit sync and layer 00: ADTS
        return "audio/aac"
    version, layer = (head[1] >> 3) & 3, (head[1] >> 1) & 3
    bitrate, sample_rate = head[2] >> 4, (head[2] >> 2) & 3
    valid = version != 1 and layer != 0 and bitrate != 0xF and sample_rate != 3
    return "audio/mpeg" if head[1] & 0xE0 == 0xE0 and valid else None


def _is_utf8_text(head: bytes, *, whole_file: bool) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        # Only the whole file must end on a character: a head may stop inside one.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=whole_file)
    except UnicodeDecodeError:
        return False
    return True


_MATCHERS: tuple[Callable[[bytes], str | None], ...] = (
    _signature,
    _riff,
    _ftyp,
    _quicktime,
    _ebml,
    _ogg,
    _bmp,
    _ico,
    _mpeg_audio,
)
