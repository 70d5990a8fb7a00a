"""The preflight report: what was found, as the API's ``PreflightSummary`` and as a table.

:class:`Report` holds every number and problem the preflight computed (more than the status
has room for: the length histogram, warnings, all errors); :meth:`Report.summary` is
``status.preflight``; :func:`render` is the readable table ``kubetune run`` prints; :func:`save`
writes ``preflight.json``. Pure data and formatting; no checks here.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from kubetune.api.v1alpha1.finetunejob import PreflightSummary

MAX_ERRORS_IN_STATUS = 20


@dataclasses.dataclass
class Report:
    """What the preflight found. ``errors`` non-empty means it failed."""

    job: str
    format: str | None = None
    dataset: str | None = None
    dataset_sha256: str | None = None
    rows: int = 0
    train_rows: int = 0
    validation_rows: int = 0
    tokens: int = 0
    trainable_tokens: int = 0
    truncated_rows: int = 0
    zero_trainable_rows: int = 0
    length_mean: float = 0.0
    length_p50: int = 0
    length_p95: int = 0
    length_max: int = 0
    max_seq_length: int = 0
    histogram: list[tuple[str, int]] = dataclasses.field(default_factory=list)
    duplicates: int = 0
    overlap: int = 0
    method: str = ""
    model_type: str | None = None
    parameters: int = 0
    device: str = "cpu"
    steps_per_epoch: int = 0
    estimated_steps: int = 0
    estimated_seconds: float = 0.0
    estimated_gpu_hours: float = 0.0
    estimated_cost: float = 0.0
    currency: str = "USD"
    sample: str | None = None  # the first row as trained, loss-carrying text in [[ ]]
    errors: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.errors

    def summary(self) -> PreflightSummary:
        """The API's ``status.preflight``."""
        return PreflightSummary(
            passed=self.passed,
            format=self.format,
            rows=self.rows,
            train_rows=self.train_rows,
            validation_rows=self.validation_rows,
            tokens=self.tokens,
            truncated_percent=round(100.0 * self.truncated_rows / self.train_rows, 2)
            if self.train_rows
            else 0.0,
            trainable_token_share=round(self.trainable_tokens / self.tokens, 4) if self.tokens else 0.0,
            duplicates=self.duplicates,
            overlap=self.overlap,
            estimated_steps=self.estimated_steps,
            estimated_gpu_hours=round(self.estimated_gpu_hours, 4),
            estimated_cost=round(self.estimated_cost, 2),
            errors=self.errors[:MAX_ERRORS_IN_STATUS],
        )

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["passed"] = self.passed
        out["histogram"] = [{"bucket": b, "rows": n} for b, n in self.histogram]
        return out


def render(report: Report) -> str:
    """The report as a readable block of text."""
    verdict = "PASSED" if report.passed else "FAILED"
    s = report.summary()
    lines = [f"Preflight {verdict}: {report.job}"]

    def row(label: str, value: str) -> None:
        lines.append(f"  {label:<13} {value}")

    if report.dataset:
        row("dataset", f"{report.dataset} ({report.format}, sha256 {str(report.dataset_sha256)[:12]})")
    row("rows", f"{report.rows} read: {report.train_rows} train, {report.validation_rows} validation")
    if report.tokens:
        row("tokens", f"{report.tokens:,} in training; {100 * s.trainable_token_share:.1f}% carry loss")
        row(
            "lengths",
            f"mean {report.length_mean}, p50 {report.length_p50}, p95 {report.length_p95}, max {report.length_max} "
            f"(maxSeqLength {report.max_seq_length}); {s.truncated_percent:.1f}% truncated",
        )
        peak = max((n for _, n in report.histogram), default=0) or 1
        width = max((len(b) for b, _ in report.histogram), default=0)
        for bucket, n in report.histogram:
            bar = "#" * max(1 if n else 0, round(24 * n / peak))
            lines.append(f"  {'':<13} {bucket:>{width}} {bar} {n}")
    if report.sample:
        shown = report.sample if len(report.sample) <= 600 else report.sample[:600] + " ..."
        lines.append(f"  {'first row':<13} (loss on [[...]])")
        lines += [f"  {'':<13} | {line}" for line in shown.splitlines()]
    row("duplicates", f"{report.duplicates} in training; {report.overlap} validation rows also in training")
    if report.parameters:
        row(
            "model",
            f"{report.model_type}, {report.parameters / 1e6:.2f}M parameters; method {report.method} on {report.device}",
        )
    if report.estimated_steps:
        row(
            "estimate",
            f"{report.estimated_steps} steps ({report.steps_per_epoch}/epoch), ~{_duration(report.estimated_seconds)}, "
            f"{report.estimated_gpu_hours:.3f} GPU-hours, {report.estimated_cost:.2f} {report.currency}",
        )
    for w in report.warnings:
        lines.append(f"  warning       {w}")
    for e in report.errors[:50]:
        lines.append(f"  error         {e}")
    if len(report.errors) > 50:
        lines.append(f"  error         ... and {len(report.errors) - 50} more")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}min"
    return f"{seconds / 3600:.1f}h"


def save(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_json(), indent=2), encoding="utf-8")
