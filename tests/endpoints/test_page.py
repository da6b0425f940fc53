"""The chat page's files over a real socket: headers, validators, no key, --no-page."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from importlib import resources

import httpx
import pytest

from astrlite.endpoints.page import ASSETS
from astrlite.options import parse
from astrlite.testing import AstrliteServer, serve

PAGE_LIMIT_BYTES = 40 * 1024


@pytest.fixture(scope="module")
def server() -> Iterator[AstrliteServer]:
    with serve() as running:
        yield running


def package_file(name: str) -> bytes:
    return resources.files("astrlite.page").joinpath(name).read_bytes()


@pytest.mark.parametrize("path", list(ASSETS))
def test_each_file_is_served_without_a_key_with_strict_headers(
    server: AstrliteServer, path: str
) -> None:
    filename, content_type = ASSETS[path]
    response = httpx.get(server.base_url + path, timeout=5)
    assert response.status_code == 200
    assert response.content == package_file(filename)
    assert response.headers["content-type"] == content_type.decode()
    policy = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert "unsafe" not in policy and "data:" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["etag"].startswith('"')


def test_a_matching_etag_gets_304_without_a_body(server: AstrliteServer) -> None:
    first = httpx.get(server.base_url + "/page.js", timeout=5)
    etag = first.headers["etag"]
    again = httpx.get(server.base_url + "/page.js", headers={"If-None-Match": etag}, timeout=5)
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert "content-length" not in again.headers
    assert "content-security-policy" in again.headers
    other = httpx.get(server.base_url + "/page.js", headers={"If-None-Match": '"x"'}, timeout=5)
    assert other.status_code == 200 and other.content == first.content
    # Each file has its own tag.
    page = httpx.get(server.base_url + "/", headers={"If-None-Match": etag}, timeout=5)
    assert page.status_code == 200


def test_head_and_options(server: AstrliteServer) -> None:
    head = httpx.head(server.base_url + "/", timeout=5)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(package_file("index.html")))
    options = httpx.options(server.base_url + "/", timeout=5)
    assert options.headers["allow"] == "GET, HEAD, OPTIONS"
    post = httpx.post(server.base_url + "/", timeout=5)
    assert post.status_code == 405


class _Inline(HTMLParser):
    """Collects what a strict CSP would refuse: inline scripts, handlers, styles."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        self.found += [f"{tag} {name}" for name in names if name.startswith("on")]
        self.found += [f"{tag} style"] if "style" in names else []
        self.found += ["style element"] if tag == "style" else []
        if tag == "script":
            self._in_script = True
            self.found += [] if "src" in names else ["script without src"]

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.found.append("inline script text")


def test_the_page_has_nothing_inline_and_stays_small() -> None:
    checker = _Inline()
    checker.feed(package_file("index.html").decode())
    assert checker.found == []
    script = package_file("page.js").decode()
    for risky in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert risky not in script
    assert "localStorage.setItem" not in script  # the key stays in sessionStorage
    total = sum(len(package_file(filename)) for filename, _ in ASSETS.values())
    assert total < PAGE_LIMIT_BYTES


def test_no_page_answers_404_and_leaves_the_api() -> None:
    with serve(options={"no_page": True}) as server:
        for path in ASSETS:
            response = httpx.get(server.base_url + path, timeout=5)
            assert response.status_code == 404
            assert response.json() == {"status": "error", "message": "Not found", "data": None}
        api = httpx.get(server.base_url + "/api/v1/openapi.json", timeout=5)
        assert api.status_code == 200


def test_no_page_is_an_option_and_an_environment_variable() -> None:
    assert parse([], {}).no_page is False
    assert parse(["--no-page"], {}).no_page is True
    assert parse([], {"ASTRLITE_NO_PAGE": "1"}).no_page is True
