"""``kubectl kubetune``: the kubectl plugin (the ``kubectl-kubetune`` executable on PATH).

Verbs a user needs while following a job or a rollout, each mapped onto what the API already has,
so nothing happens here that ``kubectl`` could not do by hand:

- ``status ftj|adp|mdep NAME``: the pages of :mod:`kubetune.cli.status`.
- ``logs NAME``: a FineTuneJob's training pod (completion index 0 unless ``--rank``), or its
  preflight pod (``--preflight``); ``-f`` follows.
- ``promote NAME [--full]`` / ``abort NAME``: the ModelDeployment annotations
  ``kubetune.io/promote`` (``true`` skips the current step, ``full`` promotes at once) and
  ``kubetune.io/abort``.
- ``suspend NAME`` / ``resume NAME``: a FineTuneJob's ``spec.suspend``.
- ``diff A B``: two Adapters' lineage and scorecards.

A rollout has no pause field or annotation (a ``pause`` step without a duration waits for
``promote``), so ``pause`` only says that, and ``resume`` is the FineTuneJob's. Writes are merge patches under the field manager
``kubectl-kubetune``; ``--dry-run`` prints the equivalent ``kubectl patch`` and changes nothing.
Talks to Kubernetes only through :mod:`kubetune.clients.kube`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Any

from kubetune.cli import status as pages
from kubetune.clients import kube as kubeclient

FIELD_MANAGER = "kubectl-kubetune"
API_VERSION = "kubetune.io/v1alpha1"
PROMOTE_ANNOTATION = "kubetune.io/promote"
ABORT_ANNOTATION = "kubetune.io/abort"
# The training Job's pods: labels set by controllers/finetunejob/builders.py and by the Job controller.
LABEL_JOB = "kubetune.io/finetunejob"
LABEL_COMPONENT = "kubetune.io/component"
LABEL_INDEX = "batch.kubernetes.io/job-completion-index"
RESOURCES = {"FineTuneJob": "finetunejobs", "Adapter": "adapters", "ModelDeployment": "modeldeployments"}


class PluginError(Exception):
    """A mistake the user can fix: printed as one line, exit code 1."""


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace", help="namespace (default: the context's, else default)")
    common.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    common.add_argument("--context", help="kubeconfig context (default: the current one)")
    parser = argparse.ArgumentParser(
        prog="kubectl kubetune",
        description="Follow and steer kubetune FineTuneJobs, Adapters and ModelDeployments.",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")

    p = verbs.add_parser(
        "status", parents=[common], help="the story of a FineTuneJob, Adapter or ModelDeployment"
    )
    p.add_argument("kind", choices=sorted(pages.KINDS), help="ftj, adp or mdep")
    p.add_argument("name")
    p.add_argument("-o", "--output", choices=["text", "json"], default="text", help="json: the raw status")
    p.set_defaults(func=_status)

    p = verbs.add_parser("logs", parents=[common], help="logs of a FineTuneJob's training (or preflight) pod")
    p.add_argument("name", help="FineTuneJob name")
    p.add_argument(
        "--rank", type=int, default=0, help="node rank (completion index) of a multi-node job (default 0)"
    )
    p.add_argument("--preflight", action="store_true", help="the preflight pod instead of training")
    p.add_argument("-f", "--follow", action="store_true", help="stream the log until the container ends")
    p.add_argument("--tail", type=int, default=None, help="only the last N lines")
    p.set_defaults(func=_logs)

    for verb, text in (
        ("promote", "ModelDeployment: skip the current rollout step (--full: promote the canary now)"),
        ("abort", "ModelDeployment: roll the canary back"),
        ("suspend", "FineTuneJob: checkpoint and free the GPUs (spec.suspend=true)"),
        ("resume", "FineTuneJob: resume a suspended job (spec.suspend=false)"),
    ):
        p = verbs.add_parser(verb, parents=[common], help=text, description=text)
        p.add_argument("name")
        if verb == "promote":
            p.add_argument(
                "--full", action="store_true", help="promote at once, skipping every remaining step"
            )
        p.add_argument(
            "--dry-run", action="store_true", help="print the equivalent kubectl command; change nothing"
        )
        p.set_defaults(func=_write)

    p = verbs.add_parser("pause", parents=[common], help="(not in the API: see promote)")
    p.add_argument("name")
    p.set_defaults(func=_pause)

    p = verbs.add_parser("diff", parents=[common], help="two Adapters' lineage and scorecards side by side")
    p.add_argument("a", help="Adapter A")
    p.add_argument("b", help="Adapter B")
    p.set_defaults(func=_diff)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code: int = args.func(args)
    except PluginError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except kubeclient.ApiError as exc:
        print(f"error: {_api_hint(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `kubectl kubetune logs NAME | head`: the reader is done, so are we
        sys.stderr.close()
        return 141
    return code


# --- plumbing -------------------------------------------------------------------------------


def _connect(args: argparse.Namespace) -> kubeclient.Kube:
    try:
        return kubeclient.Kube.from_environment(args.kubeconfig, args.context)
    except Exception as exc:  # kubernetes.config raises ConfigException and plain OSErrors
        where = args.kubeconfig or "$KUBECONFIG or ~/.kube/config"
        raise PluginError(f"cannot load kubeconfig ({where}): {exc}; pass --kubeconfig/--context") from None


def _namespace(args: argparse.Namespace) -> str:
    """``-n``, else the kubeconfig context's namespace (as kubectl does), else ``default``."""
    if args.namespace:
        return str(args.namespace)
    return kubeclient.context_namespace(args.kubeconfig, args.context) or "default"


def _api_hint(exc: kubeclient.ApiError) -> str:
    if exc.status == 0:
        return f"{exc.message}; check --kubeconfig/--context"
    if exc.status in (401, 403):
        return f"{exc.message} (ask for RBAC on kubetune.io resources, or use another --context)"
    return str(exc)


def _get(kube: kubeclient.Kube, kind: str, namespace: str, name: str) -> dict[str, Any]:
    obj = kube.get(kubeclient.path(API_VERSION, kind, namespace, name))
    if obj is None:
        raise PluginError(
            f"{kind} {namespace}/{name} not found; list them with: kubectl get {RESOURCES[kind]} -n {namespace}"
        )
    return obj


def kubectl_patch(kind: str, namespace: str, name: str, patch: dict[str, Any]) -> str:
    """The ``kubectl`` command that makes the same change as the plugin."""
    return shlex.join(
        [
            "kubectl",
            "patch",
            f"{RESOURCES[kind]}.kubetune.io",
            name,
            "-n",
            namespace,
            "--type=merge",
            f"--field-manager={FIELD_MANAGER}",
            "-p",
            json.dumps(patch, separators=(",", ":")),
        ]
    )


def change(verb: str, full: bool = False) -> tuple[str, dict[str, Any], str]:
    """What a writing verb patches: (kind, merge patch, what it asks for)."""
    if verb == "promote":
        value = "full" if full else "true"
        what = "promote at once" if full else "skip the current rollout step"
        return "ModelDeployment", {"metadata": {"annotations": {PROMOTE_ANNOTATION: value}}}, what
    if verb == "abort":
        return "ModelDeployment", {"metadata": {"annotations": {ABORT_ANNOTATION: "true"}}}, "roll back"
    if verb == "suspend":
        return "FineTuneJob", {"spec": {"suspend": True}}, "checkpoint and suspend"
    if verb == "resume":
        return "FineTuneJob", {"spec": {"suspend": False}}, "resume"
    raise ValueError(verb)


# --- verbs ----------------------------------------------------------------------------------


def _status(args: argparse.Namespace) -> int:
    kind, namespace = pages.KINDS[args.kind], _namespace(args)
    kube = _connect(args)
    try:
        obj = _get(kube, kind, namespace, args.name)
    finally:
        kube.close()
    print(json.dumps(obj.get("status") or {}, indent=2) if args.output == "json" else pages.render_any(obj))
    return 0


def _write(args: argparse.Namespace) -> int:
    kind, patch, what = change(args.verb, getattr(args, "full", False))
    namespace = _namespace(args)
    command = kubectl_patch(kind, namespace, args.name, patch)
    if args.dry_run:
        print(command)
        return 0
    kube = _connect(args)
    try:
        obj = _get(kube, kind, namespace, args.name)
        if kind == "ModelDeployment" and not (obj.get("status") or {}).get("canaryRevision"):
            print(
                f"note: {namespace}/{args.name} has no canary in progress; the annotation waits for the next one"
            )
        if args.verb == "resume" and not (obj.get("spec") or {}).get("suspend"):
            print(f"note: FineTuneJob {namespace}/{args.name} was not suspended")
        kube.patch(
            kubeclient.path(API_VERSION, kind, namespace, args.name), patch, field_manager=FIELD_MANAGER
        )
    finally:
        kube.close()
    print(f"{RESOURCES[kind][:-1]}.kubetune.io/{args.name}: {what} requested")
    return 0


def _pause(args: argparse.Namespace) -> int:
    raise PluginError(
        "a ModelDeployment has no pause field or annotation; add a step {pause: {}} to spec.rollout.steps "
        f"(it waits until: kubectl kubetune promote {args.name})"
    )


def _diff(args: argparse.Namespace) -> int:
    namespace = _namespace(args)
    kube = _connect(args)
    try:
        a, b = (_get(kube, "Adapter", namespace, name) for name in (args.a, args.b))
    finally:
        kube.close()
    print(pages.render_adapter_diff(a, b))
    return 0


def pick_pod(pods: list[dict[str, Any]], rank: int) -> dict[str, Any] | None:
    """The pod of ``rank``: the newest of that completion index (a retried pod replaces the old
    one); a job without indexes (one node) has only rank 0."""
    indexed = [p for p in pods if LABEL_INDEX in ((p.get("metadata") or {}).get("labels") or {})]
    if indexed:
        pods = [p for p in indexed if p["metadata"]["labels"][LABEL_INDEX] == str(rank)]
    elif rank != 0:
        return None
    pods = sorted(pods, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""))
    return pods[-1] if pods else None


def _logs(args: argparse.Namespace) -> int:
    namespace = _namespace(args)
    component = "preflight" if args.preflight else "trainer"
    kube = _connect(args)
    try:
        _get(kube, "FineTuneJob", namespace, args.name)
        pods = kube.list(
            kubeclient.path("v1", "Pod", namespace),
            labelSelector=f"{LABEL_JOB}={args.name},{LABEL_COMPONENT}={component}",
        )
        pod = pick_pod(pods, 0 if args.preflight else args.rank)
        if pod is None:
            if pods:
                raise PluginError(
                    f"FineTuneJob {namespace}/{args.name} has no pod of rank {args.rank}; try --rank 0"
                )
            raise PluginError(
                f"FineTuneJob {namespace}/{args.name} has no {component} pod yet; "
                f"see: kubectl kubetune status ftj {args.name} -n {namespace}"
            )
        name = pod["metadata"]["name"]
        containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
        container = component if component in containers else containers[0]
        if args.follow:
            for chunk in kube.follow_pod_log(namespace, name, container, args.tail):
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
        else:
            sys.stdout.write(kube.pod_log(namespace, name, container, args.tail))
    finally:
        kube.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
