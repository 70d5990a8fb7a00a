"""``samples.jsonl``: the held-out generations of a run, base and tuned side by side.

The trainer writes one row per held-out prompt it decoded for the generation metrics (up to
``spec.evaluation.maxSamples``), into the run's output directory and into each artifact directory
(so a pushed adapter carries them); ``kubetune review export`` reads them to build a blind review.
Rows are in validation order; ``base`` is absent when the base model was not scored
(``compareToBase: false``). Pure data: no torch, no I/O beyond :func:`write` and :func:`read`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

FILENAME = "samples.jsonl"


class Sample(BaseModel):
    """One held-out prompt, its reference, and each model's greedy answer."""

    model_config = ConfigDict(extra="ignore")

    index: int = Field(description="Position in the validation split (0-based).")
    prompt: str = Field(description="The prompt as the model saw it (template applied).")
    reference: str = Field(default="", description="The dataset's answer.")
    base: str | None = Field(default=None, description="The base model's answer.")
    tuned: str = Field(description="The tuned model's answer.")


def write(rows: Sequence[Sample], path: Path) -> Path:
    path.write_text(
        "".join(json.dumps(r.model_dump(exclude_none=True), ensure_ascii=False) + "\n" for r in rows),
        encoding="utf-8",
    )
    return path


def read(path: Path) -> list[Sample]:
    """The rows of ``path``; ValueError naming the line when one is not a sample."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(Sample.model_validate_json(line))
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: not a sample row ({exc.__class__.__name__})") from exc
    return rows
