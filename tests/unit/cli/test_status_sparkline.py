"""``kubetune status ftj NAME`` draws the loss history in status as a unicode sparkline."""

from __future__ import annotations

from kubetune.cli import status


def test_sparkline_scales_between_min_and_max() -> None:
    assert status.sparkline([3.0, 2.0, 1.0, 0.0]) == "█▆▃▁"
    assert status.sparkline([1.0, 1.0, 1.0]) == "▁▁▁"


def test_ftj_page_shows_the_loss_line_from_status_progress() -> None:
    obj = {
        "metadata": {"name": "bot", "namespace": "ml"},
        "status": {"progress": {"summary": "4/8 (50%)", "loss": 1.0, "lossHistory": [4.0, 3.0, 2.0, 1.0]}},
    }
    lines = status.render(obj).splitlines()
    loss = next(line for line in lines if line.startswith("  Loss:"))
    assert loss == "  Loss:        █▆▃▁  4 -> 1 (last 4 reports, min 1)"


def test_no_history_no_loss_line() -> None:
    obj = {"metadata": {"name": "bot"}, "status": {"progress": {"summary": "1/8 (12%)", "loss": 2.0}}}
    assert not any(line.startswith("  Loss:") for line in status.render(obj).splitlines())
