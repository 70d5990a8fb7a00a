"""Injected faults (set through KUBETUNE_FAULT_* env) show as TGI failures and latency in /metrics."""

from __future__ import annotations

from kubetune.testing.servers import Server

from .conftest import metric_value


def test_injected_errors_are_500s_counted_as_failures(faulty_server: Server) -> None:
    before = faulty_server.metrics()
    codes = [faulty_server.generate("reset a password", max_new_tokens=2) for _ in range(16)]
    after = faulty_server.metrics()
    failed = [r for r in codes if r.status_code == 500]
    ok = [r for r in codes if r.status_code == 200]
    assert len(failed) + len(ok) == 16
    assert failed and ok, "a 0.5 error rate over 16 requests should give both outcomes"
    assert failed[0].json() == {"error": "Incomplete generation", "error_type": "incomplete_generation"}

    def delta(series: str) -> float:
        return metric_value(after, series) - metric_value(before, series)

    assert delta('tgi_request_failure{err="incomplete"}') == len(failed)
    assert delta("tgi_request_success") == len(ok)
    assert delta("tgi_request_count") == 16


def test_injected_latency_is_inside_the_measured_durations(faulty_server: Server) -> None:
    response = None
    for _ in range(20):  # half the requests fail on purpose; find a successful one
        response = faulty_server.generate("close an account", max_new_tokens=2)
        if response.status_code == 200:
            break
    assert response is not None and response.status_code == 200
    assert int(response.headers["x-inference-time"]) >= 100
    assert int(response.headers["x-total-time"]) >= 100
    text = faulty_server.metrics()
    assert metric_value(text, "tgi_request_inference_duration_sum") >= 0.1 * metric_value(
        text, "tgi_request_inference_duration_count"
    )
    assert metric_value(text, 'tgi_request_duration_bucket{le="0.0985"}') == 0  # every request took >= 100 ms


def test_env_configures_the_server_like_tgis_launcher(faulty_server: Server, tiny_model: object) -> None:
    info = faulty_server.post("/generate", {"inputs": "x", "parameters": {"max_new_tokens": 500}})
    assert info.status_code == 422 and "must be <= 128" in info.json()["error"]
