"""The outbound HTTP client against real servers on 127.0.0.1 (plain, TLS, CONNECT proxy)."""

from __future__ import annotations

import logging
import socket
import ssl
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
import trustme
from anyio.abc import ByteStream, SocketAttribute

from astrlite.outbound import HttpClientError
from astrlite.outbound import client as client_module
from astrlite.outbound.client import Client
from astrlite.outbound.connection import MAX_RESPONSE_HEAD_BYTES
from astrlite.outbound.urls import Proxy, ProxyEnv, Url, bypasses_proxy, parse_proxy, parse_url
from tests.fakes.connect_proxy import connect_proxy
from tests.fakes.http_server import (
    LAST_CHUNK,
    FakeServer,
    Received,
    chunk,
    chunked_head,
    response,
    serve,
    serve_raw,
    wait_until_closed,
)

DEADLINE = 5  # seconds for any one test; each takes milliseconds
TINY = 0.2  # an injected timeout that is meant to fire

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def server_names() -> list[str]:
    return []


@pytest.fixture
def server_tls(ca: trustme.CA, server_names: list[str]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "api.example.test").configure_cert(context)

    def note_sni(_: ssl.SSLObject, name: str | None, __: ssl.SSLContext) -> None:
        server_names.append(name or "")

    context.sni_callback = note_sni
    return context


async def hello(request: Received, stream: ByteStream) -> bool:
    await stream.send(response(200, (("x-test", "yes"),), b"hello " + request.body))
    return True


async def get(
    client: Client,
    url: str,
    *,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
) -> tuple[int, bytes]:
    async with client.request(
        "GET", url, connect_timeout=connect_timeout, read_timeout=read_timeout
    ) as reply:
        return reply.status, await reply.read(1 << 20)


async def get_once(client: Client, url: str) -> tuple[int, bytes]:
    try:
        return await get(client, url)
    finally:
        await client.aclose()


async def failure(client: Client, url: str, **options: float | None) -> str:
    with pytest.raises(HttpClientError) as caught:
        await get(client, url, **options)
    await client.aclose()
    return str(caught.value)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- pure functions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        ("http://127.0.0.1:8080/v1/x?a=1", Url("http", "127.0.0.1", 8080, "/v1/x?a=1")),
        ("https://API.example.com", Url("https", "api.example.com", 443, "/")),
        ("http://[::1]/p", Url("http", "::1", 80, "/p")),
        ("https://bücher.example/", Url("https", "xn--bcher-kva.example", 443, "/")),
    ],
)
def test_parse_url(url: str, parsed: Url) -> None:
    assert parse_url(url) == parsed


def test_url_authority_and_host_header() -> None:
    assert parse_url("http://[::1]:81/").authority == "[::1]:81"
    assert parse_url("https://h:443/").host_header == "h"
    assert parse_url("https://h:8443/").host_header == "h:8443"


@pytest.mark.parametrize("url", ["ftp://h/", "http:///path", "http://h:99999/", "h:80"])
def test_parse_url_rejects(url: str) -> None:
    with pytest.raises(HttpClientError, match="invalid URL"):
        parse_url(url)


@pytest.mark.parametrize(
    "host",
    [
        "h",
        "api.example.com",
        "x.",
        "a..b",
        ".x",
        "a" * 63 + ".io",
        "a" * 64 + ".io",
        "io." + "a" * 64,
    ],
)
def test_an_ascii_host_is_checked_as_the_idna_codec_checks_it(host: str) -> None:
    # parse_url does not load the codec for an ASCII host; the outcome is the codec's.
    try:
        expected: str | None = host.encode("idna").decode("ascii")
    except UnicodeError:
        expected = None
    try:
        got: str | None = parse_url(f"http://{host}/").host
    except HttpClientError:
        got = None
    assert got == expected


def test_parse_proxy() -> None:
    assert parse_proxy("http://127.0.0.1:3128") == Proxy("127.0.0.1", 3128)
    assert parse_proxy("proxy.local:8080") == Proxy("proxy.local", 8080)
    assert parse_proxy("http://proxy.local") == Proxy("proxy.local", 80)
    for bad in ("https://p:1", "socks5://p:1", "http://user:s3cret@p:1"):
        with pytest.raises(HttpClientError, match="use an http://host:port CONNECT proxy") as e:
            parse_proxy(bad)
        assert "s3cret" not in str(e.value)


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "bypass"),
    [
        ("api.openai.com", 443, "", False),
        ("api.openai.com", 443, "*", True),
        ("api.openai.com", 443, "openai.com", True),
        ("api.openai.com", 443, ".openai.com", True),
        ("api.openai.com", 443, "*.openai.com", True),
        ("openai.com", 443, ".openai.com", True),
        ("notopenai.com", 443, "openai.com", False),
        ("API.OpenAI.com", 443, "api.openai.COM", True),
        ("127.0.0.1", 8080, "localhost, 127.0.0.1", True),
        ("127.0.0.1", 8080, "127.0.0.1:8080", True),
        ("127.0.0.1", 8081, "127.0.0.1:8080", False),
        ("::1", 80, "::1", True),
        ("::1", 80, "[::1]:80", True),
        ("::1", 81, "[::1]:80", False),
        ("example.org", 443, "example.com,other.org", False),
    ],
)
def test_bypasses_proxy(host: str, port: int, no_proxy: str, bypass: bool) -> None:
    assert bypasses_proxy(host, port, no_proxy) is bypass


def test_proxy_env() -> None:
    https = parse_url("https://api.example.com/")
    http = parse_url("http://api.example.com/")
    env = ProxyEnv.read({"HTTPS_PROXY": "http://p:1", "HTTP_PROXY": "http://q:2"})
    assert env.proxy_for(https) == Proxy("p", 1)
    # HTTP_PROXY is ignored (httpoxy); only the lower-case name counts.
    assert env.proxy_for(http) is None
    env = ProxyEnv.read({"https_proxy": "p:1", "http_proxy": "q:2", "NO_PROXY": "example.com"})
    assert env.proxy_for(https) is None
    assert env.proxy_for(parse_url("http://other.org/")) == Proxy("q", 2)
    with pytest.raises(HttpClientError, match=r"^https_proxy: unsupported proxy URL"):
        ProxyEnv.read({"https_proxy": "socks5://p:1"}).proxy_for(https)


# -- plain HTTP ---------------------------------------------------------------------------


async def test_content_length_response() -> None:
    with anyio.fail_after(DEADLINE):
        async with serve(hello) as server:
            client = Client()
            async with client.request("GET", f"{server.url}/a?b=1") as reply:
                assert reply.status == 200
                assert reply.header("X-Test") == "yes"
                assert await reply.read(100) == b"hello "
            await client.aclose()
        assert server.requests[0].target == "/a?b=1"
        assert server.requests[0].header("host") == f"127.0.0.1:{server.port}"


async def test_chunked_body_arrives_piece_by_piece() -> None:
    second_wanted = anyio.Event()

    async def two_pieces(_: Received, stream: ByteStream) -> bool:
        await stream.send(chunked_head() + chunk(b"first"))
        await second_wanted.wait()
        await stream.send(chunk(b"second") + LAST_CHUNK)
        return True

    with anyio.fail_after(DEADLINE):
        async with serve(two_pieces) as server:
            client = Client()
            async with client.request("GET", server.url) as reply:
                pieces = reply.aiter_bytes()
                assert await pieces.__anext__() == b"first"
                second_wanted.set()
                assert [piece async for piece in pieces] == [b"second"]
            await client.aclose()


async def test_chunks_that_arrived_together_are_one_piece() -> None:
    async def burst(_: Received, stream: ByteStream) -> bool:
        await stream.send(chunked_head())
        await anyio.sleep(0.01)  # the head first, then the body in one write
        await stream.send(chunk(b"a") + chunk(b"b") + chunk(b"c") + LAST_CHUNK)
        return True

    with anyio.fail_after(DEADLINE):
        async with serve(burst) as server:
            client = Client()
            async with client.request("GET", server.url) as reply:
                assert [piece async for piece in reply.aiter_bytes()] == [b"abc"]
            await client.aclose()
        assert server.accepted == 1  # read to its end: the connection was pooled


async def test_data_before_a_malformed_chunk_is_delivered_first() -> None:
    async def broken(_: Received, stream: ByteStream) -> bool:
        await stream.send(chunked_head() + chunk(b"kept") + b"zz\r\n")
        await wait_until_closed(stream)
        return False

    with anyio.fail_after(DEADLINE):
        async with serve(broken) as server:
            client = Client()
            async with client.request("GET", server.url) as reply:
                pieces = reply.aiter_bytes()
                assert await pieces.__anext__() == b"kept"
                with pytest.raises(HttpClientError, match="malformed response"):
                    await pieces.__anext__()
            await client.aclose()


async def test_request_bodies_bytes_and_streamed() -> None:
    async def body() -> AsyncIterator[bytes]:
        for piece in (b"stre", b"", b"amed"):
            yield piece

    with anyio.fail_after(DEADLINE):
        async with serve(hello) as server:
            client = Client()
            async with client.request("POST", server.url, body=b"abc") as reply:
                assert await reply.read(100) == b"hello abc"
            async with client.request("POST", server.url, body=body()) as reply:
                assert await reply.read(100) == b"hello streamed"
            await client.aclose()
        first, second = server.requests
        assert first.header("content-length") == "3"
        assert second.header("transfer-encoding") == "chunked"


async def test_connection_is_reused() -> None:
    with anyio.fail_after(DEADLINE):
        async with serve(hello) as server:
            client = Client()
            for _ in range(3):
                assert await get(client, server.url) == (200, b"hello ")
            await client.aclose()
        assert server.accepted == 1


async def test_unread_body_closes_the_connection() -> None:
    with anyio.fail_after(DEADLINE):
        async with serve(hello) as server:
            client = Client()
            async with client.request("GET", server.url) as reply:
                assert reply.status == 200
            await get(client, server.url)
            await client.aclose()
        assert server.accepted == 2


async def test_connection_closed_while_idle_is_replaced() -> None:
    async def hello_then_close(request: Received, stream: ByteStream) -> bool:
        await hello(request, stream)
        return False  # closes without saying so in a header

    with anyio.fail_after(DEADLINE):
        async with serve(hello_then_close) as server:
            client = Client()
            await get(client, server.url)
            await server.wait_closed(1)
            assert await get(client, server.url) == (200, b"hello ")
            await client.aclose()
        assert server.accepted == 2


async def test_idle_connections_expire() -> None:
    with anyio.fail_after(DEADLINE):
        async with serve(hello) as server:
            client = Client(idle_timeout=0)
            await get(client, server.url)
            await get(client, server.url)
            await client.aclose()
            await server.wait_closed(2)
        assert server.accepted == 2


async def test_dead_connection_retried_once_when_nothing_was_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A connection that dies between the liveness check and the first write.
    monkeypatch.setattr(client_module, "still_open", lambda stream: True)
    with anyio.fail_after(DEADLINE):
        async with serve(hello) as server:
            client = Client()
            await get(client, server.url)
            [idle] = client._idle
            await idle.stream.aclose()
            assert await get(client, server.url) == (200, b"hello ")
            await client.aclose()
        assert server.accepted == 2


async def test_read_limit() -> None:
    with anyio.fail_after(DEADLINE):
        async with serve(hello) as server:
            client = Client()
            async with client.request("POST", server.url, body=b"x" * 50) as reply:
                with pytest.raises(HttpClientError, match=r"larger than 10 bytes"):
                    await reply.read(10)
            await client.aclose()


async def test_illegal_header_value_is_not_echoed() -> None:
    client = Client()
    headers = [("Authorization", "Bearer s3cret\r\nX: y")]
    with anyio.fail_after(DEADLINE):
        async with serve(hello) as server:
            with pytest.raises(HttpClientError) as caught:
                async with client.request("GET", server.url, headers=headers):
                    pass
    assert str(caught.value) == f"cannot send the request to {server.url[7:]}: illegal header value"


# -- failures -----------------------------------------------------------------------------


async def test_connection_refused() -> None:
    port = closed_port()
    with anyio.fail_after(DEADLINE):
        message = await failure(Client(), f"http://127.0.0.1:{port}/")
    assert message == f"connection refused by 127.0.0.1:{port}"


async def test_unknown_host() -> None:
    with anyio.fail_after(DEADLINE):
        message = await failure(Client(), "http://example.invalid/", connect_timeout=DEADLINE)
    assert message == "cannot resolve host example.invalid"


async def test_connect_timeout() -> None:
    # Accepts the TCP connection but never answers the TLS handshake.
    async def silent(stream: ByteStream, _: FakeServer) -> None:
        await wait_until_closed(stream)

    with anyio.fail_after(DEADLINE):
        async with serve_raw(silent) as server:
            url = f"https://127.0.0.1:{server.port}/"
            message = await failure(Client(), url, connect_timeout=TINY)
    assert message == f"timed out connecting to 127.0.0.1:{server.port}"


async def test_read_timeout_before_the_response() -> None:
    async def stall(_: Received, stream: ByteStream) -> bool:
        await wait_until_closed(stream)
        return False

    with anyio.fail_after(DEADLINE):
        async with serve(stall) as server:
            message = await failure(Client(), server.url, read_timeout=TINY)
            await server.wait_closed(1)
    expected = f"timed out waiting for a response from 127.0.0.1:{server.port} (no data for 0.2 s)"
    assert message == expected


async def test_read_timeout_applies_to_each_read() -> None:
    async def stall_mid_body(_: Received, stream: ByteStream) -> bool:
        await stream.send(chunked_head() + chunk(b"partial"))
        await wait_until_closed(stream)
        return False

    with anyio.fail_after(DEADLINE):
        async with serve(stall_mid_body) as server:
            client = Client(read_timeout=TINY)
            async with client.request("GET", server.url) as reply:
                pieces = reply.aiter_bytes()
                assert await pieces.__anext__() == b"partial"
                with pytest.raises(HttpClientError, match="timed out waiting for a response"):
                    await pieces.__anext__()
            await server.wait_closed(1)


@pytest.mark.parametrize(
    ("sent", "problem"),
    [
        (b"", "before a response"),
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten..",
            "before the response was complete",
        ),
        (chunked_head() + chunk(b"piece"), "before the response was complete"),
    ],
)
async def test_connection_closed_by_the_server(sent: bytes, problem: str) -> None:
    async def cut(_: Received, stream: ByteStream) -> bool:
        if sent:
            await stream.send(sent)
        return False

    with anyio.fail_after(DEADLINE):
        async with serve(cut) as server:
            message = await failure(Client(), server.url)
    assert message == f"connection closed by 127.0.0.1:{server.port} {problem}"


async def test_a_reset_before_any_response_is_a_close_before_a_response() -> None:
    # A server that closes without reading the request makes its kernel send a reset.
    async def reset(stream: ByteStream, server: FakeServer) -> None:
        raw = stream.extra(SocketAttribute.raw_socket)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await stream.aclose()

    with anyio.fail_after(DEADLINE):
        async with serve_raw(reset) as server:
            message = await failure(Client(), server.url)
    assert message == f"connection closed by 127.0.0.1:{server.port} before a response"


async def test_malformed_response() -> None:
    async def garbage(_: Received, stream: ByteStream) -> bool:
        await stream.send(b"HTTP/1.1 abc nonsense\r\n\r\n")
        await wait_until_closed(stream)
        return False

    with anyio.fail_after(DEADLINE):
        async with serve(garbage) as server:
            message = await failure(Client(), server.url)
    assert message.startswith(f"malformed response from 127.0.0.1:{server.port}: ")


@pytest.mark.parametrize("complete", [True, False])
async def test_response_headers_too_large(complete: bool) -> None:
    big = b"x-big: " + b"a" * (MAX_RESPONSE_HEAD_BYTES + 1000) + b"\r\n"
    head = b"HTTP/1.1 200 OK\r\n" + big + (b"content-length: 0\r\n\r\n" if complete else b"")

    async def huge_head(_: Received, stream: ByteStream) -> bool:
        await stream.send(head)
        await wait_until_closed(stream)
        return False

    with anyio.fail_after(DEADLINE):
        async with serve(huge_head) as server:
            message = await failure(Client(), server.url)
    assert message == f"response headers from 127.0.0.1:{server.port} too large"


async def test_cancelling_a_request_closes_its_connection() -> None:
    head_sent = anyio.Event()

    async def stall_after_head(_: Received, stream: ByteStream) -> bool:
        await stream.send(chunked_head())
        head_sent.set()
        await wait_until_closed(stream)
        return False

    with anyio.fail_after(DEADLINE):
        async with serve(stall_after_head) as server:
            client = Client()
            with anyio.CancelScope() as scope:
                async with client.request("GET", server.url) as reply:
                    pieces = reply.aiter_bytes()
                    scope.cancel()
                    await pieces.__anext__()
            assert scope.cancelled_caught
            await server.wait_closed(1)


# -- TLS ----------------------------------------------------------------------------------


async def test_https_with_ca_file(server_tls: ssl.SSLContext, ca_file: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with serve(hello, server_tls) as server:
            client = Client(ca_file=ca_file)
            url = f"https://127.0.0.1:{server.port}/"
            assert await get(client, url) == (200, b"hello ")
            assert await get(client, url) == (200, b"hello ")
            await client.aclose()
        assert server.accepted == 1


async def test_https_without_the_ca_fails(server_tls: ssl.SSLContext) -> None:
    with anyio.fail_after(DEADLINE):
        async with serve(hello, server_tls) as server:
            message = await failure(Client(), f"https://127.0.0.1:{server.port}/")
    assert message.startswith(f"TLS handshake with 127.0.0.1:{server.port} failed: ")
    assert "certificate verify failed" in message


async def test_https_without_verification_warns(
    server_tls: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    with anyio.fail_after(DEADLINE), caplog.at_level(logging.WARNING, "astrlite.http"):
        client = Client(verify=False)
        async with serve(hello, server_tls) as server:
            assert await get(client, f"https://127.0.0.1:{server.port}/") == (200, b"hello ")
        await client.aclose()
    assert "verification is disabled" in caplog.text


async def test_tls_context_is_made_on_the_first_https_connection(
    server_tls: ssl.SSLContext,
) -> None:
    # Loading the system's CA certificates costs ~100 ms: not for plain-HTTP upstreams.
    with anyio.fail_after(DEADLINE):
        client = Client(verify=False)
        async with serve(hello) as server:
            assert await get(client, f"http://127.0.0.1:{server.port}/") == (200, b"hello ")
        assert client._ssl is None
        async with serve(hello, server_tls) as server:
            assert await get(client, f"https://127.0.0.1:{server.port}/") == (200, b"hello ")
        assert client._ssl is not None
        await client.aclose()


async def test_https_to_a_plain_http_server() -> None:
    with anyio.fail_after(DEADLINE):
        async with serve(hello) as server:
            message = await failure(Client(), f"https://127.0.0.1:{server.port}/")
    assert message.startswith(f"TLS handshake with 127.0.0.1:{server.port} failed: ")


def test_unreadable_ca_file(tmp_path: Path) -> None:
    with pytest.raises(HttpClientError, match=r"^cannot load ca_file .*missing\.pem: "):
        Client(ca_file=f"{tmp_path}/missing.pem")


# -- CONNECT proxies ----------------------------------------------------------------------


async def test_proxy_for_plain_http() -> None:
    with anyio.fail_after(DEADLINE):
        async with serve(hello) as server, connect_proxy() as proxy:
            client = Client(proxy=proxy.url)
            assert await get(client, server.url) == (200, b"hello ")
            assert await get(client, server.url) == (200, b"hello ")
            await client.aclose()
    assert proxy.targets == [f"127.0.0.1:{server.port}"]
    assert proxy.requests[0].header("host") == f"127.0.0.1:{server.port}"


async def test_proxy_for_https_sends_sni(
    server_tls: ssl.SSLContext, ca_file: str, server_names: list[str]
) -> None:
    with anyio.fail_after(DEADLINE):
        async with serve(hello, server_tls) as server, connect_proxy() as proxy:
            client = Client(ca_file=ca_file, proxy=proxy.url)
            url = f"https://api.example.test:{server.port}/v1"
            assert await get(client, url) == (200, b"hello ")
            await client.aclose()
    assert proxy.targets == [f"api.example.test:{server.port}"]
    assert server_names == ["api.example.test"]
    assert server.requests[0].header("host") == f"api.example.test:{server.port}"


async def test_proxy_from_environment_and_no_proxy(
    server_tls: ssl.SSLContext, ca_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with anyio.fail_after(DEADLINE):
        async with serve(hello, server_tls) as server, connect_proxy() as proxy:
            monkeypatch.setenv("https_proxy", proxy.url)
            named = f"https://api.example.test:{server.port}/"
            assert await get_once(Client(ca_file=ca_file), named) == (200, b"hello ")
            direct = f"https://127.0.0.1:{server.port}/"
            for no_proxy in ("127.0.0.1", f"localhost,127.0.0.1:{server.port}", "*"):
                monkeypatch.setenv("no_proxy", no_proxy)
                assert await get_once(Client(ca_file=ca_file), direct) == (200, b"hello ")
    assert proxy.targets == [f"api.example.test:{server.port}"]
    assert server.accepted == 4


async def test_proxy_refuses_the_tunnel() -> None:
    with anyio.fail_after(DEADLINE):
        async with connect_proxy(refuse_with=403) as proxy:
            port = proxy.server.port
            message = await failure(Client(proxy=proxy.url), "https://api.example.test/")
    assert message == f"proxy 127.0.0.1:{port} refused CONNECT to api.example.test:443: HTTP 403"


async def test_proxy_not_running() -> None:
    port = closed_port()
    client = Client(proxy=f"http://127.0.0.1:{port}")
    with anyio.fail_after(DEADLINE):
        message = await failure(client, "https://api.example.test/")
    assert message == f"connection refused by proxy 127.0.0.1:{port}"
