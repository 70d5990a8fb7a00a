"""``kubetune status ftj NAME``: a FineTuneJob's phase, progress, preflight, metrics and adapter.

Reads the object through :mod:`kubetune.clients.kube` (kubeconfig or in-cluster credentials)
and prints it for people; :func:`render` is pure so tests pin the layout. ``-o json`` prints the
raw status instead.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from kubetune.clients import kube as kubeclient


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("status", help="show a kubetune object's status", description=__doc__)
    parser.add_argument("kind", choices=["ftj", "finetunejob"], help="kind (ftj)")
    parser.add_argument("name", help="object name")
    parser.add_argument("-n", "--namespace", default="default", help="namespace (default: default)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kubetune.cli.main import UserError

    kube = kubeclient.Kube.from_environment(args.kubeconfig)
    try:
        url = kubeclient.path("kubetune.io/v1alpha1", "FineTuneJob", args.namespace, args.name)
        obj = kube.get(url)
    except kubeclient.ApiError as exc:
        raise UserError(f"cannot read FineTuneJob {args.namespace}/{args.name}: {exc}") from None
    finally:
        kube.close()
    if obj is None:
        raise UserError(f"FineTuneJob {args.namespace}/{args.name} not found")
    print(json.dumps(obj.get("status") or {}, indent=2) if args.output == "json" else render(obj))
    return 0


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
    conditions = st.get("conditions") or []
    if conditions:
        lines.append("  Conditions:")
        for c in conditions:
            lines.append(
                f"    {c.get('type'):<16} {c.get('status'):<8} {c.get('reason', ''):<20} {c.get('message', '')}"
            )
    return "\n".join(lines)
