"""Upload file names: what is kept for display, and how a download names itself (F8, F9).

The stored file is always ``<uuid hex><safe_suffix>``; the client's name is only shown
back (in the upload answer and the download's Content-Disposition), so it is cleaned
but never used as a path.
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
import urllib.parse

# The common file-system name limit (ext4, NTFS, APFS): a longer name would not survive
# being saved by the user.
MAX_FILENAME_BYTES = 255
# Longer than any real extension; a longer "extension" is just a dotted name, cut freely.
MAX_KEPT_EXTENSION_BYTES = 32
# Shown for a name that is empty once cleaned (also "." and ".."). A fixed word reads
# better than a random id, and the stored name is a uuid anyway.
FALLBACK_FILENAME = "file"

# Unicode categories dropped from names: control characters (C0, DEL, C1) and lone
# surrogates (not encodable as UTF-8).
_REMOVED_CATEGORIES = frozenset({"Cc", "Cs"})
# Bidirectional overrides and isolates make "evil\u202etxt.exe" display as "evilexe.txt".
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)

# At most 16 characters: long enough for any common extension, short enough for a tidy
# stored name.
_SAFE_SUFFIX_RE = re.compile(r"[a-z0-9]{1,16}")

# RFC 8187 attr-char beyond the letters, digits and "-._~" that quote() keeps anyway.
_ATTR_CHAR_EXTRA = "!#$&+^`|"
_DISPOSITIONS = frozenset({"inline", "attachment"})


def sanitize_filename(raw: str | None) -> str:
    """The client's name reduced to a safe display name; never empty.

    Last path component (``\\`` counts as a separator too), control and bidi characters
    removed, surrounding whitespace stripped, at most 255 UTF-8 bytes (the extension is
    kept when it is short). Empty, ``.`` and ``..`` become ``"file"``.
    """
    last = (raw or "").replace("\\", "/").rpartition("/")[2]
    name = "".join(ch for ch in last if not _is_removed(ch)).strip()
    if name in ("", ".", ".."):
        return FALLBACK_FILENAME
    return _truncate(name)


def _is_removed(ch: str) -> bool:
    return unicodedata.category(ch) in _REMOVED_CATEGORIES or ch in _BIDI_CONTROLS


def _truncate(name: str) -> str:
    if len(name.encode("utf-8")) <= MAX_FILENAME_BYTES:
        return name
    stem, extension = posixpath.splitext(name)
    if len(extension.encode("utf-8")) > MAX_KEPT_EXTENSION_BYTES:
        stem, extension = name, ""
    room = MAX_FILENAME_BYTES - len(extension.encode("utf-8"))
    # Decoding with "ignore" drops a character the byte cut split in two.
    return stem.encode("utf-8")[:room].decode("utf-8", "ignore").rstrip() + extension


def safe_suffix(name: str) -> str:
    """``.ext`` in lower-case ASCII letters and digits (at most 16), or ``""``."""
    extension = posixpath.splitext(name)[1][1:].lower()
    return "." + extension if _SAFE_SUFFIX_RE.fullmatch(extension) else ""


def content_disposition(disposition: str, filename: str) -> str:
    """A Content-Disposition value: an ASCII ``filename`` and an RFC 8187 ``filename*``.

    ``filename`` should come from ``sanitize_filename``. Clients that read ``filename*``
    get the exact name; older ones get ``_`` for every non-ASCII character.
    """
    if disposition not in _DISPOSITIONS:
        raise ValueError(f"disposition must be inline or attachment, not {disposition!r}")
    fallback = "".join(ch if " " <= ch <= "~" and ch not in '"\\' else "_" for ch in filename)
    encoded = urllib.parse.quote(filename, safe=_ATTR_CHAR_EXTRA)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
