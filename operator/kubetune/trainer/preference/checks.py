"""The preflight's findings about preference data and settings.

Spec rules that ``format: auto`` hides from the API validation (the detected format decides),
and per-pair token checks after tokenising: a side whose answer was truncated away by
``maxSeqLength`` (nothing left to score), and two sides that become identical once cut (the
pair would prefer nothing). Every finding names the file and line. Pure.
"""

from __future__ import annotations

from kubetune.api.v1alpha1.common import GENERATION_METRICS, PREFERENCE_METRICS
from kubetune.api.v1alpha1.finetunejob import (
    PREFERENCE_FORMAT_MESSAGE,
    PREFERENCE_METHOD_MESSAGE,
    PREFERENCE_PACKING_MESSAGE,
    FineTuneJobSpec,
)
from kubetune.api.v1alpha1.preference import PREFERENCE_METHODS
from kubetune.trainer.encoding import Encoded
from kubetune.trainer.preference.data import Pair


def spec_errors(spec: FineTuneJobSpec, fmt: str) -> list[str]:
    """Rules that depend on the detected format."""
    out: list[str] = []
    wanted = set(spec.evaluation.metrics)
    if fmt != "preference":
        if spec.preference is not None:
            out.append(PREFERENCE_FORMAT_MESSAGE.format(fmt=f"auto and the rows were detected as {fmt}"))
        if wanted & set(PREFERENCE_METRICS):
            out.append(
                f"spec.evaluation.metrics has {sorted(wanted & set(PREFERENCE_METRICS))} but the dataset is "
                f"{fmt}; these metrics need preference rows (prompt/chosen/rejected)"
            )
        return out
    if wanted & GENERATION_METRICS:
        out.append(
            f"spec.evaluation.metrics has {sorted(wanted & GENERATION_METRICS)} but the dataset is "
            "preference; use loss, perplexity, preferenceAccuracy and rewardMargin"
        )
    if spec.method.type not in PREFERENCE_METHODS:
        out.append(PREFERENCE_METHOD_MESSAGE.format(method=spec.method.type))
    if spec.hyperparameters.packing:
        out.append(PREFERENCE_PACKING_MESSAGE)
    return out


def pair_errors(rows: list[Encoded], max_len: int) -> list[str]:
    """One line per pair that cannot train, naming file and line."""
    out: list[str] = []
    for p in rows:
        if not isinstance(p, Pair):
            continue
        chosen, rejected = p.sides
        cut = False
        for name, side in (("chosen", chosen), ("rejected", rejected)):
            if side.trainable == 0:
                cut = True
                start = side.response_start
                where = (
                    f"starts at token {start} of {side.full_length}" if start is not None else "has no tokens"
                )
                out.append(
                    f"{p.example.where}: the {name} answer was truncated away: it {where} but "
                    f"spec.hyperparameters.maxSeqLength is {max_len}; raise maxSeqLength or shorten the prompt"
                )
        if not cut and chosen.input_ids == rejected.input_ids:
            out.append(
                f"{p.example.where}: chosen and rejected are identical within the first {max_len} tokens "
                "(they differ only after the cut); raise spec.hyperparameters.maxSeqLength or shorten the prompt"
            )
    return out


def scored_tokens(rows: list[Encoded]) -> int:
    """Tokens that carry the loss, both sides of every pair."""
    return sum(s.trainable for p in rows if isinstance(p, Pair) for s in p.sides)
