"""Progress reporting for large blobs: log lines when stderr is not a terminal."""

from __future__ import annotations

import logging

import pytest

from kubetune.registry import progress


def test_large_blob_progress_is_logged_at_most_once_per_tenth(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kubetune.registry.progress")
    total = 100 << 20
    with progress.LogLines("push").blob("adapter_model.safetensors", total) as advance:
        for _ in range(100):
            advance(1 << 20)
    lines = [r for r in caplog.records if r.getMessage() == "blob progress"]
    assert 1 <= len(lines) <= 11
    last = lines[-1].__dict__["fields"]
    assert last["percent"] == 100.0 and last["bytes"] == total and last["blob"] == "adapter_model.safetensors"
    done = [r for r in caplog.records if r.getMessage() == "blob done"]
    assert len(done) == 1


def test_small_blobs_are_not_reported(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kubetune.registry.progress")
    with progress.LogLines("push").blob("adapter_config.json", 100) as advance:
        advance(100)
    assert caplog.records == []


def test_bars_are_chosen_only_for_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    assert isinstance(progress.default("pull"), progress.LogLines)
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    assert isinstance(progress.default("pull"), progress.Bars)
