"""Progress events survive the JSON lines another process prints (what ``kubetune run --nproc``
reads from rank 0); anything else on the stream is not an event."""

from __future__ import annotations

import io
import json

from kubetune.trainer import progress


def test_json_lines_read_back_as_the_events_written() -> None:
    events: list[progress.Event] = [
        progress.PhaseEvent("training", "90 steps, 2 processes", {"totalSteps": 90, "worldSize": 2}),
        progress.ProgressEvent(
            step=3,
            total_steps=90,
            epoch=0.1,
            loss=1.25,
            learning_rate=1e-3,
            tokens_per_second=900.0,
            eta_seconds=8.0,
        ),
    ]
    stream = io.StringIO()
    sink = progress.JsonLinesSink(stream)
    for event in events:
        sink.emit(event)
    back = [progress.from_json(json.loads(line)) for line in stream.getvalue().splitlines()]
    assert back == events


def test_other_json_is_not_an_event() -> None:
    assert progress.from_json({"ts": "2026-01-01T00:00:00Z", "msg": "joined the process group"}) is None
    assert progress.from_json({"event": "progress", "step": 1}) is None  # incomplete
