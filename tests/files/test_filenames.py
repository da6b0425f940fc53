from __future__ import annotations

import pytest

from astrlite.files.filenames import (
    MAX_FILENAME_BYTES,
    content_disposition,
    safe_suffix,
    sanitize_filename,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../x", "x"),
        ("../evil.txt", "evil.txt"),
        ("/etc/passwd", "passwd"),
        ("/var/tmp/abs_evil.txt", "abs_evil.txt"),
        ("C:\\x", "x"),
        ("C:\\Users\\me\\My Documents\\a.txt", "a.txt"),
        ("\\\\server\\share\\b.txt", "b.txt"),
        ("a\x00b", "ab"),
        ("a\x01\x1f\x7f\x80\x9fb.txt", "ab.txt"),
        ("line\r\nbreak.txt", "linebreak.txt"),
        ("evil\u202etxt.exe", "eviltxt.exe"),
        ("\u2066x\u2069.png", "x.png"),
        ("zero\u200cwidth.txt", "zero\u200cwidth.txt"),  # ZWNJ is needed by Persian text
        ("bad\ud800.txt", "bad.txt"),
        ("  spaced name.txt \t", "spaced name.txt"),
        ("\u3000全角.txt\u3000", "全角.txt"),
        ("你好.txt", "你好.txt"),
        (".bashrc", ".bashrc"),
        ("...", "..."),
        ("", "file"),
        (None, "file"),
        (".", "file"),
        ("..", "file"),
        ("dir/", "file"),
        ("a/..", "file"),
        ("x/ .. ", "file"),
        ("\x00\x00", "file"),
        ("   ", "file"),
    ],
)
def test_sanitize_filename(raw: str | None, expected: str) -> None:
    assert sanitize_filename(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a" * 300 + ".txt", "a" * 251 + ".txt"),
        ("a" * 300, "a" * 255),
        ("a" * 255, "a" * 255),
        ("你" * 100 + ".txt", "你" * 83 + ".txt"),  # 83 × 3 + 4 = 253: no half character
        ("你" * 100, "你" * 85),
        ("a" * 300 + "." + "e" * 40, ("a" * 300 + "." + "e" * 40)[:255]),  # no real extension
        ("a" * 253 + " b" + ".txt", "a" * 251 + ".txt"),
        ("😀" * 70 + ".jpeg", "😀" * 62 + ".jpeg"),
    ],
)
def test_long_names_are_cut_on_characters(raw: str, expected: str) -> None:
    result = sanitize_filename(raw)
    assert result == expected
    assert len(result.encode()) <= MAX_FILENAME_BYTES


@pytest.mark.parametrize(
    ("name", "suffix"),
    [
        ("a.txt", ".txt"),
        ("A.PNG", ".png"),
        ("archive.tar.gz", ".gz"),
        ("video.mp4", ".mp4"),
        ("x." + "a" * 16, "." + "a" * 16),
        ("x." + "a" * 17, ""),
        ("noext", ""),
        ("trailing.", ""),
        (".bashrc", ""),
        ("a.t-t", ""),
        ("a.tx t", ""),
        ("a.тxt", ""),
        ("a.\u0661", ""),  # an Arabic-Indic digit is not [0-9]
        ("file", ""),
        ("a.php%00", ""),
    ],
)
def test_safe_suffix(name: str, suffix: str) -> None:
    assert safe_suffix(name) == suffix


@pytest.mark.parametrize(
    ("disposition", "filename", "expected"),
    [
        ("inline", "a.txt", "inline; filename=\"a.txt\"; filename*=UTF-8''a.txt"),
        (
            "attachment",
            "你好 world.txt",
            'attachment; filename="__ world.txt"; '
            "filename*=UTF-8''%E4%BD%A0%E5%A5%BD%20world.txt",
        ),
        (
            "attachment",
            'q"uote\\back.txt',
            "attachment; filename=\"q_uote_back.txt\"; filename*=UTF-8''q%22uote%5Cback.txt",
        ),
        (
            "inline",
            "a!#$&+^`|~-_.b;c%d'e(f)*",
            'inline; filename="a!#$&+^`|~-_.b;c%d\'e(f)*"; '
            "filename*=UTF-8''a!#$&+^`|~-_.b%3Bc%25d%27e%28f%29%2A",
        ),
        ("attachment", "x\r\ny", "attachment; filename=\"x__y\"; filename*=UTF-8''x%0D%0Ay"),
    ],
)
def test_content_disposition(disposition: str, filename: str, expected: str) -> None:
    assert content_disposition(disposition, filename) == expected


def test_content_disposition_rejects_other_types() -> None:
    with pytest.raises(ValueError, match="inline or attachment"):
        content_disposition("form-data", "a.txt")
