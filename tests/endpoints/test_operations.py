"""What an operator reaches for: /health, /metrics, CORS for browser clients, and
failures of providers and platforms in the server log (never a key or a token)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.endpoints.test_chat import chat
from tests.fakes.openai_upstream import OpenAIUpstream, Reply, error_body, openai_upstream
from tests.support.server import TEST_KEY, running_server

KEY = {"X-API-Key": TEST_KEY}
UPSTREAM_KEY = "sk-never-in-logs-0123456789"


# -- /health ----------------------------------------------------------------------------


def test_health_is_public_and_says_ok() -> None:
    with running_server() as srv:
        answer = httpx.get(srv.url + "/health")
        head = httpx.head(srv.url + "/health")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["status"] == "ok" and body["version"] and body["uptime_seconds"] >= 0
    assert head.status_code == 200 and head.content == b""


def test_health_is_503_with_the_reason(tmp_path: Path) -> None:
    # Root writes anywhere, so a "directory" under a regular file stands in for a full
    # or read-only disk.
    (tmp_path / "file").write_text("x")
    broken = tmp_path / "file" / "data"
    with running_server() as srv:
        probe = srv.services.health
        real, probe.data_dir = probe.data_dir, broken
        answer = httpx.get(srv.url + "/health")
        probe.data_dir = real
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "error"
    assert body["message"] == f"data directory {broken} is not writable: Not a directory"


def test_health_reports_a_database_that_does_not_answer() -> None:
    with running_server() as srv:
        srv.db.reader.close()
        answer = httpx.get(srv.url + "/health")
        srv.db.reader = srv.db.reader.__class__(":memory:")
    assert answer.status_code == 503
    assert answer.json()["message"] == "database: Cannot operate on a closed database."


# -- /metrics ---------------------------------------------------------------------------


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_are_off_by_default() -> None:
    with running_server() as srv:
        assert httpx.get(srv.url + "/metrics").status_code == 404


def test_metrics_count_requests_turns_and_queues() -> None:
    with running_server(metrics=True) as srv:
        httpx.get(srv.url + "/api/v1/configs", headers=KEY)
        httpx.get(srv.url + "/api/v1/configs", headers=KEY)
        httpx.get(srv.url + "/api/v1/no/such/path?x=1", headers=KEY)
        chat(srv, {"username": "alice", "message": "hi"})
        chat(srv, {"username": "alice", "message": "hi", "selected_provider": "nope"})
        text = httpx.get(srv.url + "/metrics").text
    found = samples(text)
    configs = (("method", "GET"), ("route", "/api/v1/configs"), ("status", "200"))
    assert found[("astrlite_http_requests_total", configs)] == 2
    assert (
        found[
            (
                "astrlite_http_requests_total",
                (("method", "GET"), ("route", "other"), ("status", "404")),
            )
        ]
        == 1
    )
    assert (
        found[("astrlite_http_request_duration_seconds_count", (("route", "/api/v1/chat"),))] == 2
    )
    assert found[("astrlite_turns_started_total", ())] == 2
    assert found[("astrlite_turns_finished_total", ())] == 1
    assert found[("astrlite_turns_failed_total", ())] == 1
    assert found[("astrlite_open_connections", ())] == 1  # the scrape itself
    assert found[("astrlite_open_streams", ())] == 0
    assert found[("astrlite_queued_turns", ())] == 0
    assert found[("astrlite_database_size_bytes", ())] > 0


# -- CORS -------------------------------------------------------------------------------

ORIGIN = "https://app.example.org"


def test_cors_is_off_by_default() -> None:
    with running_server() as srv:
        answer = httpx.get(srv.url + "/api/v1/configs", headers={**KEY, "Origin": ORIGIN})
        preflight = httpx.options(
            srv.url + "/api/v1/chat",
            headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
        )
    assert not [h for h in answer.headers if h.lower().startswith("access-control-")]
    assert preflight.status_code == 401  # as before: /api/v1 needs a key
    assert not [h for h in preflight.headers if h.lower().startswith("access-control-")]


def test_preflight_is_answered_before_authentication() -> None:
    with running_server(cors_origins=ORIGIN) as srv:
        preflight = httpx.options(
            srv.url + "/api/v1/chat",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-api-key, content-type",
            },
        )
        stranger = httpx.options(
            srv.url + "/api/v1/chat",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
    assert preflight.status_code == 204
    headers = preflight.headers
    assert headers["access-control-allow-origin"] == ORIGIN
    assert headers["access-control-allow-methods"] == "POST, OPTIONS"
    allowed = {h.strip().lower() for h in headers["access-control-allow-headers"].split(",")}
    assert {"x-api-key", "authorization", "content-type", "last-event-id"} <= allowed
    assert headers["vary"] == "Origin"
    assert stranger.status_code == 401
    assert "access-control-allow-origin" not in stranger.headers


def test_answers_to_an_allowed_origin_name_it_and_expose_headers() -> None:
    with running_server(cors_origins="*") as srv:
        uploaded = httpx.post(
            srv.url + "/api/v1/file", headers=KEY, files={"file": ("a.txt", b"hello")}
        ).json()["data"]
        download = httpx.get(
            srv.url + "/api/v1/file",
            params={"attachment_id": uploaded["attachment_id"]},
            headers={**KEY, "Origin": ORIGIN},
        )
        refused = httpx.get(srv.url + "/api/v1/configs", headers={"Origin": ORIGIN})
    assert download.headers["access-control-allow-origin"] == "*"
    exposed = download.headers["access-control-expose-headers"]
    assert "Content-Disposition" in exposed and "ETag" in exposed
    assert refused.status_code == 401  # errors too, so the page can read them
    assert refused.headers["access-control-allow-origin"] == "*"


# -- provider and platform failures in the log ------------------------------------------


@pytest.fixture
def upstream() -> Iterator[OpenAIUpstream]:
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(openai_upstream()) as fake,
    ):
        yield fake


def llm_config(base_url: str) -> dict[str, Any]:
    provider = {
        "id": "llm",
        "type": "openai",
        "base_url": base_url,
        "model": "m",
        "api_key": UPSTREAM_KEY,
        "timeout": 5,
    }
    return {"provider": "llm", "providers": [provider, {"id": "echo", "type": "echo"}]}


def test_an_upstream_401_is_logged_with_the_provider_id(
    upstream: OpenAIUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    body = error_body("Incorrect API key provided")
    upstream.replies.append(Reply(status=401, content_type="application/json", parts=[body]))
    with (
        caplog.at_level(logging.INFO, logger="astrlite"),
        running_server(config=llm_config(upstream.base_url), metrics=True) as srv,
    ):
        chat(srv, {"username": "alice", "message": "hi"})
        found = samples(httpx.get(srv.url + "/metrics").text)
    assert "provider llm failed: upstream returned HTTP 401: Incorrect API key provided" in (
        caplog.text
    )
    assert UPSTREAM_KEY not in caplog.text
    assert found[("astrlite_upstream_errors_total", (("provider", "llm"),))] == 1


def test_a_dead_model_server_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    with (
        caplog.at_level(logging.WARNING, logger="astrlite"),
        running_server(config=llm_config(dead)) as srv,
    ):
        chat(srv, {"username": "alice", "message": "hi"})
    (line,) = [r.getMessage() for r in caplog.records if "provider llm failed" in r.getMessage()]
    assert "127.0.0.1" in line and UPSTREAM_KEY not in caplog.text


def test_an_unknown_selected_provider_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="astrlite"), running_server() as srv:
        body = {"username": "alice", "message": "hi", "selected_provider": "nope"}
        assert [e["type"] for e in chat(srv, body)] == ["session_id", "end"]
    assert "no provider 'nope' in config default; the reply is empty" in caplog.text
