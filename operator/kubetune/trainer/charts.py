"""Pictures for the model card: the training loss curve and the base-versus-tuned metric chart.

Drawn with matplotlib's Agg backend (no display, no fonts beyond matplotlib's own) from the
run's own records: the (step, loss) pairs the loop reported and the evaluation's
:class:`MetricComparison` rows. PNGs only; :mod:`kubetune.trainer.export` decides where they go
and :mod:`kubetune.trainer.card` links them. matplotlib comes with the ``trainer`` extra; without
it, or without data, a picture is skipped (None), never an error: a run is not failed for a chart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kubetune.api.v1alpha1.common import MetricComparison

LOSS_CURVE = "loss-curve.png"
METRICS_CHART = "metrics.png"
# Small and crisp: ~6.4x3.2 in at 100 dpi stays well under 100 KB as a PNG.
_SIZE = (6.4, 3.2)
_DPI = 100
_BASE, _TUNED, _LINE = "#9aa5b1", "#2f6fd0", "#2f6fd0"


def _pyplot() -> Any | None:
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _smooth(values: Sequence[float], window: int) -> list[float]:
    """Centred moving mean over ``window`` points (shorter at the ends): unlike a trailing mean,
    it does not lag behind a falling loss."""
    half = window // 2
    out: list[float] = []
    for i in range(len(values)):
        part = values[max(0, i - half) : i + half + 1]
        out.append(sum(part) / len(part))
    return out


def loss_curve(
    losses: Sequence[tuple[int, float]], path: Path, *, title: str = "Training loss"
) -> Path | None:
    """Training loss per optimizer step (raw, and a trailing mean when there are many steps)."""
    points = [(s, v) for s, v in losses if math.isfinite(v)]
    plt = _pyplot()
    if plt is None or not points:
        return None
    steps, values = [s for s, _ in points], [v for _, v in points]
    fig, ax = plt.subplots(figsize=_SIZE, dpi=_DPI)
    try:
        window = max(1, len(values) // 20)
        if window > 1:
            ax.plot(steps, values, color=_LINE, alpha=0.3, linewidth=1, label="per step")
            ax.plot(steps, _smooth(values, window), color=_LINE, linewidth=2, label=f"mean of {window}")
            ax.legend(frameon=False, fontsize=8)
        else:
            ax.plot(
                steps,
                values,
                color=_LINE,
                linewidth=2,
                marker="o" if len(values) < 30 else None,
                markersize=3,
            )
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("loss")
        if min(values) > 0 and max(values) / min(values) > 20:
            # a loss falling by orders of magnitude would leave the tail as a flat line
            ax.set_yscale("log")
            ax.set_ylabel("loss (log scale)")
        first = f"steps {steps[0]}-{steps[-1]}" if steps[0] > 1 else f"{steps[-1]} steps"
        ax.set_title(f"{title} ({first}, final {values[-1]:.4g})", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path


def metrics_chart(
    metrics: Sequence[MetricComparison], path: Path, *, title: str = "Base vs tuned"
) -> Path | None:
    """One panel per metric: base and tuned bars with their values (metrics differ in scale, so
    they never share an axis). Metrics without a base value show the tuned bar alone."""
    plt = _pyplot()
    if plt is None or not metrics:
        return None
    n = len(metrics)
    fig, axes = plt.subplots(1, n, figsize=(max(3.2, 2.2 * n), _SIZE[1]), dpi=_DPI, squeeze=False)
    try:
        for ax, m in zip(axes[0], metrics, strict=True):
            labels, values, colors = ["tuned"], [m.tuned], [_TUNED]
            if m.base is not None:
                labels, values, colors = ["base", "tuned"], [m.base, m.tuned], [_BASE, _TUNED]
            bars = ax.bar(labels, values, color=colors, width=0.6)
            ax.bar_label(bars, labels=[f"{v:.4g}" for v in values], fontsize=8, padding=2)
            top = max(abs(v) for v in values) or 1.0
            ax.set_ylim(min(0.0, *values) * 1.2, top * 1.25)
            better = (
                ""
                if m.delta is None
                else f"\n{'better' if m.delta > 0 else 'worse' if m.delta < 0 else 'same'} by {abs(m.delta):.3g}"
            )
            ax.set_title(f"{m.name}{better}", fontsize=9)
            ax.tick_params(labelsize=8)
            ax.spines[["top", "right"]].set_visible(False)
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path
