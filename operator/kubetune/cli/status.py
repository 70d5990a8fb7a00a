"""``kubetune status ftj|adp|mdep NAME``: a FineTuneJob's phase, progress, preflight, metrics and
adapter, an Adapter's lineage and scorecard, or a ModelDeployment's revisions, canary weight and
step, latest analysis and history. ``kubectl kubetune`` (:mod:`kubetune.cli.plugin`) prints the
same pages, and :func:`render_adapter_diff` for its ``diff``.

Reads the object through :mod:`kubetune.clients.kube` (kubeconfig or in-cluster credentials)
and prints it for people; :func:`render` is pure so tests pin the layout. ``-o json`` prints the
raw status instead.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from kubetune.clients import kube as kubeclient

KINDS = {
    "ftj": "FineTuneJob",
    "finetunejob": "FineTuneJob",
    "adp": "Adapter",
    "adapter": "Adapter",
    "mdep": "ModelDeployment",
    "modeldeployment": "ModelDeployment",
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("status", help="show a kubetune object's status", description=__doc__)
    parser.add_argument("kind", choices=sorted(KINDS), help="kind (ftj, adp or mdep)")
    parser.add_argument("name", help="object name")
    parser.add_argument("-n", "--namespace", default="default", help="namespace (default: default)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kubetune.cli.main import UserError

    kind = KINDS[args.kind]
    kube = kubeclient.Kube.from_environment(args.kubeconfig)
    try:
        url = kubeclient.path("kubetune.io/v1alpha1", kind, args.namespace, args.name)
        obj = kube.get(url)
    except kubeclient.ApiError as exc:
        raise UserError(f"cannot read {kind} {args.namespace}/{args.name}: {exc}") from None
    finally:
        kube.close()
    if obj is None:
        raise UserError(f"{kind} {args.namespace}/{args.name} not found")
    if args.output == "json":
        print(json.dumps(obj.get("status") or {}, indent=2))
    else:
        print(render_any(obj))
    return 0


def render_any(obj: dict[str, Any]) -> str:
    """The page for whichever kubetune kind ``obj`` is."""
    kind = obj.get("kind")
    if kind == "Adapter":
        return render_adapter(obj)
    if kind == "ModelDeployment":
        return render_deployment(obj)
    return render(obj)


def _num(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}g}" if isinstance(value, (int, float)) else "-"


def render(obj: dict[str, Any]) -> str:
    """A readable summary of a FineTuneJob object."""
    meta, spec, st = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    lines = [
        f"FineTuneJob {meta.get('namespace', '')}/{meta.get('name', '')}",
        f"  Phase:       {st.get('phase', 'Pending')}   (generation {meta.get('generation', '?')}, "
        f"observed {st.get('observedGeneration', '-')}, attempts {st.get('attempts', 0)})",
        f"  Base model:  {(spec.get('baseModel') or {}).get('uri', '-')}",
        f"  Method:      {(spec.get('method') or {}).get('type', 'lora')}",
    ]
    pre = st.get("preflight")
    if pre:
        lines.append(
            f"  Preflight:   {'passed' if pre.get('passed') else 'FAILED'}: {pre.get('trainRows', 0)} train / "
            f"{pre.get('validationRows', 0)} validation rows, {pre.get('tokens', 0)} tokens, "
            f"truncated {_num(pre.get('truncatedPercent'), 3)}%, ~{pre.get('estimatedSteps', 0)} steps, "
            f"est. {_num(pre.get('estimatedGpuHours'), 3)} GPU-h / {_num(pre.get('estimatedCost'), 3)}"
        )
        for err in (pre.get("errors") or [])[:5]:
            lines.append(f"               - {err}")
    prog = st.get("progress")
    if prog:
        lines.append(
            f"  Progress:    {prog.get('summary', '-')}  epoch {_num(prog.get('epoch'), 3)}  "
            f"loss {_num(prog.get('loss'))}  eval loss {_num(prog.get('evalLoss'))}  "
            f"{_num(prog.get('tokensPerSecond'), 5)} tok/s  ETA {_num(prog.get('etaSeconds'), 4)}s  "
            f"(updated {prog.get('updateTime', '-')})"
        )
        history = [v for v in prog.get("lossHistory") or [] if isinstance(v, (int, float))]
        if len(history) >= 2:
            lines.append(
                f"  Loss:        {sparkline(history)}  {_num(history[0])} -> {_num(history[-1])} "
                f"(last {len(history)} reports, min {_num(min(history))})"
            )
    checkpoints = st.get("checkpoints") or []
    if checkpoints:
        lines.append(f"  Checkpoints: {', '.join(str(c.get('step')) for c in checkpoints)} (steps)")
    metrics = st.get("metrics") or []
    if metrics:
        lines.append("  Metrics:     name          base        tuned       delta")
        for m in metrics:
            lines.append(
                f"               {m.get('name', ''):<13} {_num(m.get('base')):<11} {_num(m.get('tuned')):<11} "
                f"{_num(m.get('delta'))}"
            )
    adapter = st.get("adapter")
    lines.append(
        f"  Adapter:     {adapter.get('name')} {adapter.get('ref')}" if adapter else "  Adapter:     -"
    )
    cost = st.get("cost")
    if cost:
        lines.append(
            f"  Cost:        {_num(cost.get('gpuHours'), 4)} GPU-h, {_num(cost.get('amount'), 4)} {cost.get('currency', '')}"
        )
    return "\n".join(lines + _conditions(st))


_BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    """One unicode block per value, scaled between the values' min and max (flat: all low)."""
    low, high = min(values), max(values)
    span = high - low
    if span <= 0 or span != span:  # flat, or NaN
        return _BLOCKS[0] * len(values)
    return "".join(_BLOCKS[min(len(_BLOCKS) - 1, int((v - low) / span * len(_BLOCKS)))] for v in values)


def render_deployment(obj: dict[str, Any]) -> str:
    """A readable summary of a ModelDeployment object."""
    meta, spec, st = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    steps = (spec.get("rollout") or {}).get("steps") or []
    step = st.get("currentStep")
    adapters = ", ".join(
        f"{a.get('name')}={a.get('adapter') or a.get('ref')}" for a in spec.get("adapters") or []
    )
    lines = [
        f"ModelDeployment {meta.get('namespace', '')}/{meta.get('name', '')}",
        f"  Phase:       {st.get('phase', 'Pending')}   (generation {meta.get('generation', '?')}, "
        f"observed {st.get('observedGeneration', '-')})",
        f"  Base model:  {(spec.get('baseModel') or {}).get('uri', '-')}",
        f"  Adapters:    {adapters or '-'}",
        f"  Stable:      {st.get('stableRevision') or '-'}",
        f"  Canary:      {st.get('canaryRevision') or '-'}   weight {st.get('canaryWeight', 0)}%   "
        + (
            f"step {step + 1}/{len(steps)}: {json.dumps(steps[step])}"
            if step is not None and step < len(steps)
            else "no step"
        ),
    ]
    analysis = st.get("analysis") or {}
    if analysis.get("verdict"):
        lines.append(
            f"  Analysis:    {analysis['verdict']} at {analysis.get('time', '-')}  (failures {analysis.get('failures', 0)}, "
            f"inconclusive {analysis.get('inconclusive', 0)}, passes {analysis.get('passes', 0)})"
        )
        lines += ["               " + row for row in verdict_table(analysis.get("metrics") or [])]
    experiment = st.get("experiment") or {}
    if experiment:
        lines.append(
            f"  Experiment:  {experiment.get('verdict') or 'running'} for canary {experiment.get('revision', '-')} "
            f"at {experiment.get('weight', 0)}%, {experiment.get('startedAt', '-')} .. {experiment.get('endedAt') or 'now'}"
            + (f"  ({experiment['decision']})" if experiment.get("decision") else "")
        )
        lines += ["               " + row for row in verdict_table(experiment.get("metrics") or [])]
    history = st.get("history") or []
    if history:
        lines.append("  History:")
        for h in history[-8:]:
            lines.append(
                f"    {h.get('time', '')}  {h.get('revision', ''):<10} {h.get('action', ''):<14} {h.get('message', '')}"
            )
    return "\n".join(lines + _conditions(st))


def verdict_table(metrics: list[dict[str, Any]]) -> list[str]:
    """One row per check: verdict, canary and stable values, effect with its interval, p-value,
    sample counts (canary/stable) and why; the statistical columns are '-' under the threshold judge."""
    rows = [("check", "verdict", "canary", "stable", "effect [interval]", "p", "samples", "why")]
    for m in metrics:
        effect = "-"
        if m.get("effect") is not None:
            effect = _num(m["effect"], 3)
            if m.get("effectLow") is not None and m.get("effectHigh") is not None:
                effect += f" [{_num(m['effectLow'], 3)}, {_num(m['effectHigh'], 3)}]"
        p = m.get("pValue")
        samples = str(m.get("samples", 0))
        if m.get("stableSamples") is not None:
            samples += f"/{m['stableSamples']}"
        rows.append(
            (
                str(m.get("name", "")),
                str(m.get("verdict", "")),
                _num(m.get("canary")),
                _num(m.get("stable")),
                effect,
                "-" if p is None else f"{p:.2g}",
                samples,
                str(m.get("message", "")),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1] for r in rows]


def render_adapter(obj: dict[str, Any]) -> str:
    """A readable summary of an Adapter: where it is, what made it, how it scored, who serves it."""
    meta, spec, st = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    card = spec.get("scorecard") or {}
    source = spec.get("sourceJob") or {}
    lines = [
        f"Adapter {meta.get('namespace', '')}/{meta.get('name', '')}",
        f"  State:       {st.get('state', 'candidate')}   served by {', '.join(st.get('deployments') or []) or '-'}",
        f"  Ref:         {spec.get('ref', '-')}",
        *(f"  {label + ':':<12} {value}" for label, value in _lineage(spec)[1:]),
        f"  From:        FineTuneJob {source.get('namespace') or meta.get('namespace', '')}/{source.get('name', '-')}",
        f"  Scorecard:   {card.get('primaryMetric', '-')} = {_num(card.get('primaryValue'))}   gate "
        f"{'passed' if card.get('gatePassed') else 'not passed'}",
    ]
    metrics = card.get("metrics") or []
    if metrics:
        lines.append("               name          base        tuned       delta")
        for m in metrics:
            lines.append(
                f"               {m.get('name', ''):<13} {_num(m.get('base')):<11} {_num(m.get('tuned')):<11} "
                f"{_num(m.get('delta'))}"
            )
    review = st.get("humanReview")
    if isinstance(review, dict) and "winRate" in review:
        lines.append(
            f"  Human review: tuned wins {review['winRate']:.1%} of judgments vs base (ties half; "
            f"{review.get('confidence', 0.95):.0%} interval {review.get('low', 0):.1%}-{review.get('high', 1):.1%}; "
            f"{review.get('wins')}/{review.get('losses')}/{review.get('ties')} win/loss/tie; export {review.get('exportId')})"
        )
    return "\n".join(lines + _conditions(st))


def _lineage(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """An Adapter's lineage as (label, value) rows, nested settings flattened (``lora.r``)."""
    rows = [
        ("Ref", str(spec.get("ref", "-"))),
        ("Base model", str((spec.get("baseModel") or {}).get("uri", "-"))),
        ("Method", str(spec.get("method", "-"))),
    ]
    rows += _flatten(spec.get("methodConfig") or {}, f"{spec.get('method', 'method')}.")
    rows += _flatten(spec.get("hyperparameters") or {}, "")
    dataset = spec.get("dataset") or {}
    rows += [
        ("Dataset", f"{dataset.get('uri', '-')} (sha256 {str(dataset.get('sha256', '-'))[:12]})"),
        ("Seed", str(spec.get("seed", "-"))),
        ("Trainer", str(spec.get("trainerImage") or "-")),
        ("kubetune", str(spec.get("kubetuneVersion") or "-")),
    ]
    return rows


def _flatten(block: dict[str, Any], prefix: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key in sorted(block):
        value = block[key]
        if isinstance(value, dict):
            out.extend(_flatten(value, f"{prefix}{key}."))
        else:
            out.append((f"{prefix}{key}", json.dumps(value) if not isinstance(value, str) else value))
    return out


def render_adapter_diff(a: dict[str, Any], b: dict[str, Any]) -> str:
    """Two Adapters side by side: the lineage rows that differ, then every metric of both scorecards
    (tuned values and B minus A). Rows that agree are counted, not printed."""
    name_a, name_b = ((x.get("metadata") or {}).get("name", "?") for x in (a, b))
    rows_a, rows_b = dict(_lineage(a.get("spec") or {})), dict(_lineage(b.get("spec") or {}))
    keys = list(rows_a) + [k for k in rows_b if k not in rows_a]
    differ = [(k, rows_a.get(k, "-"), rows_b.get(k, "-")) for k in keys if rows_a.get(k) != rows_b.get(k)]
    # long values (refs, URIs) go on two lines of their own instead of widening every column
    width = max([11, *(len(va) for _, va, _ in differ if len(va) <= 40)])
    lines = [f"Adapters {name_a} (A) vs {name_b} (B)", f"  {'lineage':<16} {'A':<{width}}  B"]
    for key, va, vb in differ:
        if len(va) > 40 or len(vb) > 40:
            lines += [f"  {key:<16} A {va}", f"  {'':<16} B {vb}"]
        else:
            lines.append(f"  {key:<16} {va:<{width}}  {vb}")
    same = len(keys) - len(differ)
    lines.append(f"  ({same} lineage rows identical)" if same else "  (no lineage row identical)")
    cards = [(x.get("spec") or {}).get("scorecard") or {} for x in (a, b)]
    tuned = [{m.get("name"): m.get("tuned") for m in card.get("metrics") or []} for card in cards]
    names = list(tuned[0]) + [n for n in tuned[1] if n not in tuned[0]]
    lines.append(f"  {'scorecard':<16} {'A':<11} {'B':<11} B-A")
    lines.append(
        f"  {'gate':<16} {'passed' if cards[0].get('gatePassed') else 'not passed':<11} "
        f"{'passed' if cards[1].get('gatePassed') else 'not passed'}"
    )
    for metric in names:
        ta, tb = tuned[0].get(metric), tuned[1].get(metric)
        delta = tb - ta if isinstance(ta, (int, float)) and isinstance(tb, (int, float)) else None
        lines.append(f"  {metric!s:<16} {_num(ta):<11} {_num(tb):<11} {_num(delta)}")
    return "\n".join(lines)


def _conditions(status: dict[str, Any]) -> list[str]:
    conditions = status.get("conditions") or []
    lines = ["  Conditions:"] if conditions else []
    for c in conditions:
        lines.append(
            f"    {c.get('type'):<16} {c.get('status'):<8} {c.get('reason', ''):<20} {c.get('message', '')}"
        )
    return lines
