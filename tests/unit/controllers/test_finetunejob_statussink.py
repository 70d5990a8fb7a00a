"""The trainer's status sink: rate-limited merge patches of status.progress, never fatal."""

from __future__ import annotations

from typing import Any

from kubetune.api.contract import events
from kubetune.api.contract.events import ProgressEvent
from kubetune.api.contract.result import RunResult
from kubetune.clients import kube as kubeclient
from kubetune.trainer import statussink


class FakeKube:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.fail = fail

    def patch(self, url: str, body: Any, kind: str = "merge") -> dict[str, Any]:
        if self.fail:
            raise kubeclient.ApiError(403, "forbidden")
        self.calls.append((url, body))
        return {}


def step(n: int, total: int = 10) -> ProgressEvent:
    return ProgressEvent(n, total, n / total, 1.0, 0.01, 100.0, float(total - n))


def make(kube: FakeKube, now: list[float]) -> statussink.StatusSink:
    return statussink.StatusSink(kube, "ml", "bot", interval=2.0, clock=lambda: now[0])  # type: ignore[arg-type]


def test_progress_is_patched_at_most_every_interval_and_on_the_last_step() -> None:
    kube, now = FakeKube(), [100.0]
    sink = make(kube, now)
    for n in range(1, 10):
        sink.emit(step(n))
        now[0] += 0.5
    sink.emit(step(10))
    steps = [body["status"]["progress"]["step"] for _, body in kube.calls]
    assert steps == [1, 5, 9, 10]
    assert kube.calls[0][0] == "/apis/kubetune.io/v1alpha1/namespaces/ml/finetunejobs/bot/status"
    assert kube.calls[-1][1]["status"]["progress"]["summary"] == "10/10 (100%)"


def test_close_flushes_the_latest_unsent_step() -> None:
    kube, now = FakeKube(), [0.0]
    sink = make(kube, now)
    sink.emit(step(1))
    sink.emit(step(2))
    sink.close()
    assert [b["status"]["progress"]["step"] for _, b in kube.calls] == [1, 2]


def test_api_errors_never_stop_training() -> None:
    sink = make(FakeKube(fail=True), [0.0])
    sink.emit(step(1))
    sink.emit(step(10))
    sink.close()
    assert sink.patches == 0


def test_result_event_reports_metrics() -> None:
    kube = FakeKube()
    sink = make(kube, [0.0])
    metrics = [{"name": "loss", "base": 2.0, "tuned": 1.5, "delta": 0.5}]
    sink.emit(
        events.result(
            RunResult.model_validate(
                {"job": "bot", "outcome": "Succeeded", "exitCode": 0, "metrics": metrics}
            )
        )
    )
    assert kube.calls == [(kube.calls[0][0], {"status": {"metrics": metrics}})]


def test_no_sink_outside_a_cluster() -> None:
    assert statussink.from_environment({}) is None
    assert statussink.from_environment({"KUBETUNE_JOB_NAME": "bot", "KUBETUNE_NAMESPACE": "ml"}) is None
