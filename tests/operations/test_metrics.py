"""The Prometheus exposition, read back with the reference parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from astrlite.operations.metrics import Metrics


def families(metrics: Metrics) -> dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    parsed: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        samples = parsed.setdefault(family.name, {})
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return parsed


def test_an_idle_server_renders_every_family() -> None:
    metrics = Metrics()
    metrics.gauge("open_connections", "Open client connections.", lambda: 3)
    parsed = families(metrics)
    assert parsed["astrlite_open_connections"] == {("astrlite_open_connections", ()): 3}
    assert parsed["astrlite_turns_started"] == {("astrlite_turns_started_total", ()): 0}
    assert parsed["astrlite_http_requests"] == {}
    assert parsed["astrlite_upstream_errors"] == {}


def test_requests_latency_and_errors_are_counted() -> None:
    metrics = Metrics()
    metrics.request_done("/api/v1/chat", "POST", 200, 0.003)
    metrics.request_done("/api/v1/chat", "POST", 200, 7.0)
    metrics.request_done("other", "GET", 404, 100.0)
    metrics.upstream_error('odd "id"\\')
    metrics.turns_started += 2
    metrics.turns_failed += 1
    parsed = families(metrics)
    requests = parsed["astrlite_http_requests"]
    route = (("method", "POST"), ("route", "/api/v1/chat"), ("status", "200"))
    assert requests[("astrlite_http_requests_total", route)] == 2
    latency = parsed["astrlite_http_request_duration_seconds"]
    bucket = "astrlite_http_request_duration_seconds_bucket"
    assert latency[(bucket, (("le", "0.005"), ("route", "/api/v1/chat")))] == 1
    assert latency[(bucket, (("le", "5.0"), ("route", "/api/v1/chat")))] == 1
    assert latency[(bucket, (("le", "10.0"), ("route", "/api/v1/chat")))] == 2
    assert latency[(bucket, (("le", "+Inf"), ("route", "other")))] == 1
    assert latency[(bucket, (("le", "60.0"), ("route", "other")))] == 0
    assert (
        latency[("astrlite_http_request_duration_seconds_sum", (("route", "/api/v1/chat"),))]
        == 7.003
    )
    assert latency[("astrlite_http_request_duration_seconds_count", (("route", "other"),))] == 1
    errors = parsed["astrlite_upstream_errors"]
    assert errors == {("astrlite_upstream_errors_total", (("provider", 'odd "id"\\'),)): 1}
    assert parsed["astrlite_turns_failed"] == {("astrlite_turns_failed_total", ()): 1}
