"""URLs and proxies: parsing, the proxy environment variables and `no_proxy`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from astrlite.outbound import HttpClientError

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Url:
    scheme: str
    host: str  # lower case, IDNA-encoded, IPv6 without brackets
    port: int
    target: str  # path and query

    @property
    def authority(self) -> str:
        return f"{_bracketed(self.host)}:{self.port}"

    @property
    def host_header(self) -> str:
        default = self.port == DEFAULT_PORTS[self.scheme]
        return _bracketed(self.host) if default else self.authority


@dataclass(frozen=True, slots=True)
class Proxy:
    host: str
    port: int

    @property
    def label(self) -> str:
        return f"proxy {_bracketed(self.host)}:{self.port}"


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _wire_host(host: str) -> str:
    """The host as sent: IDNA for a non-ASCII name. An ASCII name gets the idna codec's
    own checks (each label 1-63 characters; a final dot allowed) without loading it:
    the codec brings stringprep and unicodedata (~0.1 MiB) into every start-up."""
    if not host.isascii():
        return host.encode("idna").decode("ascii")
    *labels, last = host.split(".")
    if not all(0 < len(label) < 64 for label in labels) or len(last) >= 64:
        raise UnicodeError("label empty or too long")
    return host


def parse_url(url: str) -> Url:
    try:
        parts = urlsplit(url)
        port = parts.port
        host = _wire_host(parts.hostname or "")
    except (ValueError, UnicodeError) as exc:
        raise HttpClientError(f"invalid URL {url!r}: {exc}") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise HttpClientError(f"invalid URL {url!r}: use http:// or https://")
    if not host:
        raise HttpClientError(f"invalid URL {url!r}: no host")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Url(parts.scheme, host, port or DEFAULT_PORTS[parts.scheme], target)


def parse_proxy(proxy: str) -> Proxy:
    """An `http://host:port` CONNECT proxy (the scheme may be left out)."""
    try:
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        port = parts.port or 80
    except ValueError as exc:
        raise HttpClientError(f"invalid proxy URL: {exc}") from None
    if parts.scheme != "http" or not parts.hostname or parts.username is not None:
        raise HttpClientError("unsupported proxy URL: use an http://host:port CONNECT proxy")
    return Proxy(parts.hostname, port)


def bypasses_proxy(host: str, port: int, no_proxy: str) -> bool:
    """Whether no_proxy (curl's syntax: `*`, or names that match themselves and their
    subdomains, with or without a leading `.` or `*.`, each with an optional `:port`)
    covers host:port."""
    entries = no_proxy.lower().replace(",", " ").split()
    return any(_no_proxy_match(entry, host.lower(), port) for entry in entries)


def _no_proxy_match(entry: str, host: str, port: int) -> bool:
    if entry == "*":
        return True
    name, entry_port = _split_host_port(entry)
    if entry_port is not None and entry_port != port:
        return False
    name = name.removeprefix("*").removeprefix(".")
    return bool(name) and (host == name or host.endswith(f".{name}"))


def _split_host_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):
        name, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":")
    elif entry.count(":") == 1:
        name, _, port = entry.partition(":")
    else:  # a bare name or IPv6 address
        return entry, None
    return name, int(port) if port.isdigit() else None


@dataclass(frozen=True, slots=True)
class ProxyEnv:
    """The proxy environment variables, read once."""

    https: str | None
    http: str | None
    no_proxy: str

    @classmethod
    def read(cls, environ: Mapping[str, str]) -> ProxyEnv:
        # Only the lower-case http_proxy: CGI servers set HTTP_PROXY from a request's
        # `Proxy:` header ("httpoxy", CVE-2016-5385).
        https = environ.get("https_proxy") or environ.get("HTTPS_PROXY")
        no_proxy = environ.get("no_proxy") or environ.get("NO_PROXY") or ""
        return cls(https, environ.get("http_proxy"), no_proxy)

    def proxy_for(self, url: Url) -> Proxy | None:
        name, value = (
            ("https_proxy", self.https) if url.scheme == "https" else ("http_proxy", self.http)
        )
        if not value or bypasses_proxy(url.host, url.port, self.no_proxy):
            return None
        try:
            return parse_proxy(value)
        except HttpClientError as exc:
            raise HttpClientError(f"{name}: {exc}") from None
