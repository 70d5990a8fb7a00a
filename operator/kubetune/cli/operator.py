"""``kubetune operator run``: the FineTuneJob and ModelDeployment operator (kopf) with kubetune's settings.

Watches every namespace unless ``--namespace`` is given (repeatable); serves ``/healthz``,
``/readyz`` and ``/metrics`` on ``--metrics-port``; logs JSON lines; with ``--leader-elect``
holds a ``coordination.k8s.io`` Lease so that of several replicas only one reconciles.
Images, registry and prices come from ``KUBETUNE_*`` environment variables (see
:mod:`kubetune.controllers.settings`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kubetune.controllers import operator as runtime
from kubetune.controllers.admission import webhook
from kubetune.controllers.settings import Settings, SettingsError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("operator", help="run the kubetune operator", description=__doc__)
    commands = parser.add_subparsers(dest="operator_command", metavar="COMMAND", required=True)
    run_parser = commands.add_parser(
        "run", help="reconcile FineTuneJobs and ModelDeployments until stopped", description=__doc__
    )
    run_parser.add_argument(
        "-n", "--namespace", action="append", default=[], help="namespace to watch (repeatable; default: all)"
    )
    run_parser.add_argument(
        "--metrics-port", type=int, default=8080, help="port of /metrics, /healthz, /readyz"
    )
    run_parser.add_argument("--metrics-host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")
    run_parser.add_argument(
        "--leader-elect",
        action="store_true",
        help="hold a Lease so only one replica reconciles (for 2+ replicas)",
    )
    run_parser.add_argument("--lease-namespace", help="namespace of the Lease (default: $POD_NAMESPACE)")
    run_parser.add_argument(
        "--lease-duration",
        type=float,
        default=15.0,
        help="seconds another replica waits after the last renewal before taking the Lease (default 15)",
    )
    run_parser.add_argument(
        "--lease-renew-deadline",
        type=float,
        default=10.0,
        help="seconds after its last renewal the leader stops; below --lease-duration (default 10)",
    )
    run_parser.add_argument(
        "--lease-retry-period",
        type=float,
        default=2.0,
        help="seconds between tries to acquire or renew the Lease (default 2)",
    )
    run_parser.add_argument(
        "--resync-seconds", type=float, default=2.0, help="reconcile active jobs this often (default 2)"
    )
    run_parser.add_argument(
        "--webhook-port",
        type=int,
        default=0,
        help="serve the validating admission webhook (HTTPS, POST /validate) on this port (0: off)",
    )
    run_parser.add_argument(
        "--webhook-cert-dir",
        type=Path,
        help="directory with tls.crt and tls.key (the chart mounts one); default: self-signed",
    )
    run_parser.add_argument(
        "--webhook-url",
        help="manage the ValidatingWebhookConfiguration itself, pointing at this https:// URL "
        "with the self-signed certificate as caBundle (development; the chart renders its own)",
    )
    run_parser.add_argument(
        "--webhook-failure-policy",
        choices=["Fail", "Ignore"],
        default="Fail",
        help="with --webhook-url: what the API server does when the webhook does not answer",
    )
    run_parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not 0 < args.lease_retry_period < args.lease_renew_deadline < args.lease_duration:
        raise SystemExit(
            "kubetune operator run: need 0 < --lease-retry-period < --lease-renew-deadline < "
            f"--lease-duration (got {args.lease_retry_period}, {args.lease_renew_deadline}, "
            f"{args.lease_duration}); otherwise two replicas could lead at once. client-go uses 2, 10, 15"
        )
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        # refuse to start rather than accept jobs whose adapters would be lost
        print(f"kubetune operator: {exc}", file=sys.stderr)
        return 2
    return runtime.run(
        settings,
        namespaces=args.namespace,
        metrics_address=(args.metrics_host, args.metrics_port),
        leader_election=args.leader_elect,
        lease_namespace=args.lease_namespace,
        lease_duration=args.lease_duration,
        renew_deadline=args.lease_renew_deadline,
        retry_period=args.lease_retry_period,
        resync_seconds=args.resync_seconds,
        webhook=webhook.Options(
            port=args.webhook_port,
            cert_dir=args.webhook_cert_dir,
            url=args.webhook_url,
            failure_policy=args.webhook_failure_policy,
            namespaces=tuple(args.namespace),
        )
        if args.webhook_port
        else None,
    )
