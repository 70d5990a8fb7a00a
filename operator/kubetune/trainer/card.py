"""The model card: lineage and scores of a trained artifact, as JSON and as Markdown.

Lineage is what makes a result reproducible and auditable: base model and revision, dataset
URI and SHA-256, method and its settings, hyperparameters, seed, the kubetune and library
versions; then the base-versus-tuned metrics and the gate verdict. The card's ``pictures``
(file names of the PNGs :mod:`kubetune.trainer.charts` drew, next to the card) are linked from
the Markdown. Pure: builds dicts and text; :mod:`kubetune.trainer.export` writes them.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

import kubetune
from kubetune.api.v1alpha1.common import MetricComparison
from kubetune.api.v1alpha1.finetunejob import FineTuneJobSpec


def versions() -> dict[str, str]:
    out = {"kubetune": kubetune.__version__}
    for pkg in ("torch", "transformers", "peft", "accelerate", "tokenizers", "safetensors"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def _shown(uri: str) -> str:
    from kubetune.clients import download

    return download.redact(uri) if uri.startswith(("https://", "http://")) else uri


def lineage(
    *,
    job: str,
    namespace: str | None,
    spec: FineTuneJobSpec,
    base_revision: str | None,
    dataset_sha256: str,
    dataset_format: str,
    train_rows: int,
    validation_rows: int,
) -> dict[str, Any]:
    """Where a result came from, in camelCase like the API."""
    method_block = spec.method.model_dump(mode="json", by_alias=True, exclude_none=True)
    return {
        "job": {"name": job, **({"namespace": namespace} if namespace else {})},
        "baseModel": {"uri": spec.base_model.uri, "revision": base_revision},
        "dataset": {
            # a presigned URL's query is a credential; the sha256 pins the data anyway
            "uri": _shown(spec.dataset.uri),
            "validationUri": _shown(spec.dataset.validation_uri) if spec.dataset.validation_uri else None,
            "sha256": dataset_sha256,
            "format": dataset_format,
            "trainRows": train_rows,
            "validationRows": validation_rows,
        },
        "method": spec.method.type,
        "methodSettings": method_block,
        "hyperparameters": spec.hyperparameters.model_dump(mode="json", by_alias=True, exclude_none=True),
        "seed": spec.hyperparameters.seed,
        "versions": versions(),
        # preference tuning's objective and beta (the defaults when spec.preference is unset)
        **({"preference": spec.preference_settings().to_wire()} if dataset_format == "preference" else {}),
    }


def build(
    *,
    lineage: dict[str, Any],
    metrics: list[MetricComparison],
    gate: dict[str, Any] | None,
    training: dict[str, Any],
    artifacts: dict[str, Any],
    demo_model: bool,
    labels: list[str] | None = None,
) -> dict[str, Any]:
    card: dict[str, Any] = {
        "kind": "KubetuneModelCard",
        "version": 1,
        **lineage,
        "metrics": [m.model_dump(mode="json", by_alias=True, exclude_none=True) for m in metrics],
        "gate": gate,
        "training": training,
        "artifacts": artifacts,
    }
    if labels:
        card["labels"] = labels
    if demo_model:
        card["note"] = "Base model is a tiny random demo model (kubetune.trainer.tiny); not for real use."
    return card


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def markdown(card: dict[str, Any]) -> str:
    """A human-readable rendering of :func:`build`'s card."""
    base = card["baseModel"]
    ds = card["dataset"]
    lines = [
        f"# {card['job']['name']}: {card['method']} fine-tune of {base['uri']}",
        "",
    ]
    if card.get("note"):
        lines += [f"> {card['note']}", ""]
    lines += [
        "## Lineage",
        "",
        f"- Base model: `{base['uri']}` (revision `{base.get('revision') or 'unknown'}`)",
        f"- Dataset: `{ds['uri']}` ({ds['format']}, sha256 `{ds['sha256']}`), {ds['trainRows']} train / {ds['validationRows']} validation rows",
        f"- Method: {card['method']}; seed {card['seed']}",
        "- Hyperparameters: " + ", ".join(f"{k}={v}" for k, v in card["hyperparameters"].items()),
        "- Software: " + ", ".join(f"{k} {v}" for k, v in card["versions"].items()),
        "",
        "## Evaluation (held-out split)",
        "",
        "| metric | base | tuned | improvement |",
        "|---|---|---|---|",
    ]
    for m in card["metrics"]:
        lines.append(
            f"| {m['name']} | {_fmt(m.get('base'))} | {_fmt(m.get('tuned'))} | {_fmt(m.get('delta'))} |"
        )
    pictures = card.get("pictures") or {}
    if pictures.get("metrics"):
        lines += ["", f"![base vs tuned, per metric]({pictures['metrics']})"]
    gate = card.get("gate")
    if gate:
        lines += ["", f"Gate: {'passed' if gate['passed'] else 'NOT met'}: {gate['message']}"]
    review = card.get("humanReview")
    if review:
        lines += ["", *human_review_lines(review)]
    training = card.get("training") or {}
    if training:
        lines += [
            "",
            "## Training",
            "",
            f"- Steps: {training.get('steps')}; final training loss {_fmt(training.get('finalLoss'))}",
            f"- Effective throughput: {training.get('tokensPerSecond') or 0:.0f} tokens/s on {training.get('device')}",
        ]
    if pictures.get("lossCurve"):
        lines += ["", f"![training loss per step]({pictures['lossCurve']})"]
    if card.get("labels"):
        lines += ["", "## Labels", "", ", ".join(card["labels"])]
    lines += ["", "## Files", ""]
    for k, v in card["artifacts"].items():
        if v and k not in ("dir", "registryKind"):
            lines.append(f"- {k}: `{v}`")
    return "\n".join(lines) + "\n"


def human_review_lines(review: dict[str, Any]) -> list[str]:
    """The card's section for a blind human review (``kubetune review import``), camelCase keys
    as :class:`kubetune.api.v1alpha1.adapter.HumanReview` dumps them."""
    n = review["wins"] + review["losses"] + review["ties"]
    who = ", ".join(review.get("reviewers") or []) or "unnamed reviewers"
    return [
        "## Human review (blind, tuned vs base)",
        "",
        f"- Win rate of tuned over base: {review['winRate']:.1%} "
        f"({review['confidence']:.0%} {str(review['method']).capitalize()} interval {review['low']:.1%} to {review['high']:.1%}), "
        "ties counted as half a win",
        f"- {review['wins']} tuned preferred, {review['losses']} base preferred, {review['ties']} ties: "
        f"{n} judgments of {review['items']} prompts by {who}",
        f"- Review export `{review['exportId']}`"
        + (f", imported {review['importedAt']}" if review.get("importedAt") else ""),
    ]
