"""``kubetune registry push|pull|ls|show|rm|cp``: adapters in OCI registries and local layouts.

References are ``oci://host[:port]/repo[:tag][@sha256:...]`` or a path to an OCI image layout
(``./layout:tag``); the local registry directory is ``$KUBETUNE_REGISTRY_DIR`` or
``./.kubetune/registry``. Results go to stdout, progress and logs to stderr; a registry error is
printed as one line with what to do, and the exit code is 1. This module only parses arguments
and renders results: the work is in :mod:`kubetune.registry`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import yaml

from kubetune import logs, registry
from kubetune.registry import auth, catalog, errors, progress, reference, transfer


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "registry",
        help="push, pull and inspect adapters in OCI registries",
        description=(
            "Adapters in OCI registries and local OCI layouts. References are "
            "oci://host[:port]/repo[:tag][@sha256:...] or a layout path (./dir:tag); the local "
            "registry directory is $KUBETUNE_REGISTRY_DIR or ./.kubetune/registry. Credentials come "
            "from --username/--password-stdin (the destination's, in cp), $KUBETUNE_REGISTRY_USERNAME/"
            "PASSWORD/TOKEN with $KUBETUNE_REGISTRY_HOST, or "
            "Docker/podman auth files."
        ),
    )
    commands = parser.add_subparsers(dest="registry_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda _args: _usage(parser))

    push = _add(commands, "push", "push a directory of trained files as one artifact", _push)
    push.add_argument("src", type=Path, help="directory holding the adapter (or model) files")
    push.add_argument("ref", help="destination, e.g. oci://registry.example.com/team/adapter:v1")
    push.add_argument("--config", type=Path, help="lineage config, JSON or YAML (see docs/registry.md)")
    push.add_argument("--kind", choices=["adapter", "merged", "quantized"], help="default: adapter")
    push.add_argument("--base-model", help="base model URI, e.g. hf://org/name (required without --config)")
    push.add_argument("--base-revision", help="base model revision (commit)")
    push.add_argument("--method", help="training method, e.g. lora (required without --config)")
    push.add_argument("--dataset-sha256", help="SHA-256 of the training data")
    push.add_argument("--seed", type=int, help="training seed")

    pull = _add(commands, "pull", "pull an artifact's files into a new or empty directory", _pull)
    pull.add_argument("ref", help="source reference")
    pull.add_argument("dest", type=Path, help="target directory (created; must be empty if it exists)")

    ls = _add(
        commands, "ls", "list repositories (no REF, oci://host, a directory) or a repository's tags", _ls
    )
    ls.add_argument(
        "ref", nargs="?", help="oci://host, oci://host/repo, a layout path or a local registry dir"
    )

    show = _add(commands, "show", "show an artifact's manifest and lineage", _show)
    show.add_argument("ref", help="artifact reference")
    show.add_argument("--json", action="store_true", help="print manifest and config as JSON")

    rm = _add(commands, "rm", "delete a tag", _rm)
    rm.add_argument("ref", help="reference with the tag to delete")

    cp = _add(commands, "cp", "copy an artifact between registries and layouts, digest unchanged", _cp)
    cp.add_argument("src", help="source reference")
    cp.add_argument("dst", help="destination reference (tag defaults to the source's)")


def _add(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str, func: Any
) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help_text, description=help_text)
    group = parser.add_argument_group("connection")
    group.add_argument("--insecure", action="store_true", default=None, help="plain HTTP (no TLS)")
    group.add_argument(
        "--ca-file", type=Path, help="PEM bundle of the CA that signed the registry's certificate"
    )
    group.add_argument("--username", help="registry user (password from --password-stdin)")
    group.add_argument("--password-stdin", action="store_true", help="read the password or token from stdin")
    group.add_argument(
        "--auth-file", type=Path, help="Docker config.json / auth.json to read credentials from"
    )
    group.add_argument("-q", "--quiet", action="store_true", help="no progress or log lines")
    parser.set_defaults(func=lambda args: _run(func, args))
    return parser


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _run(func: Any, args: argparse.Namespace) -> int:
    interactive = sys.stderr.isatty()
    logs.setup(logging.WARNING if args.quiet or interactive else logging.INFO)
    try:
        code: int = func(args, _options(args))
        return code
    except errors.RegistryError as exc:
        print(f"kubetune: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. permission denied or disk full on a local path
        print(f"kubetune: {exc}", file=sys.stderr)
        return 1


def _options(args: argparse.Namespace) -> registry.Options:
    credentials = None
    if args.password_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
        if not secret:
            raise errors.AuthenticationFailed("--password-stdin read an empty password", "pipe it on stdin")
        credentials = (
            auth.Credentials(username=args.username, password=secret, source="--username/--password-stdin")
            if args.username
            else auth.Credentials(token=secret, source="--password-stdin")
        )
    elif args.username:
        raise errors.AuthenticationFailed("--username needs --password-stdin", "pipe the password on stdin")
    return registry.Options(
        insecure=args.insecure, ca_file=args.ca_file, credentials=credentials, auth_file=args.auth_file
    )


def _reporter(args: argparse.Namespace, action: str) -> progress.Reporter:
    return progress.Silent() if args.quiet else progress.default(action)


def _push(args: argparse.Namespace, options: registry.Options) -> int:
    config: dict[str, Any] = {}
    if args.config:
        try:
            loaded = yaml.safe_load(args.config.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise errors.InvalidArtifact(
                f"cannot read config {args.config}: {exc}", "pass a JSON or YAML file"
            ) from None
        if not isinstance(loaded, dict):
            raise errors.InvalidArtifact(f"config {args.config} is not a mapping", "see docs/registry.md")
        config.update(loaded)
    if args.kind:
        config["kind"] = args.kind
    if args.base_model or args.base_revision:
        base = dict(config.get("baseModel") or config.get("base_model") or {})
        base.update({k: v for k, v in (("uri", args.base_model), ("revision", args.base_revision)) if v})
        config.pop("base_model", None)
        config["baseModel"] = base
    if args.method:
        config["method"] = args.method
    if args.dataset_sha256:
        config["dataset"] = {**(config.get("dataset") or {}), "sha256": args.dataset_sha256}
    if args.seed is not None:
        config["seed"] = args.seed
    pinned = transfer.push_directory(
        args.src, args.ref, config, options=options, reporter=_reporter(args, "push")
    )
    print(pinned)
    return 0


def _pull(args: argparse.Namespace, options: registry.Options) -> int:
    print(transfer.pull(args.ref, args.dest, options=options, reporter=_reporter(args, "pull")))
    return 0


def _cp(args: argparse.Namespace, options: registry.Options) -> int:
    print(transfer.copy(args.src, args.dst, options=options, reporter=_reporter(args, "copy")))
    return 0


def _rm(args: argparse.Namespace, options: registry.Options) -> int:
    digest = catalog.delete(args.ref, options=options)
    print(f"deleted {args.ref} (was {digest})")
    return 0


def _ls(args: argparse.Namespace, options: registry.Options) -> int:
    if args.ref is None:
        names = catalog.list_repositories(None, options=options)
    else:
        target = reference.parse(args.ref, allow_bare_host=True)
        is_registry = isinstance(target, reference.RemoteRef) and not target.repository
        is_layout = isinstance(target, reference.LayoutRef) and (target.path / "oci-layout").is_file()
        if is_registry or (isinstance(target, reference.LayoutRef) and not is_layout):
            names = catalog.list_repositories(target, options=options)
        else:
            names = catalog.list_tags(target, options=options)
    for name in names:
        print(name)
    return 0


def _show(args: argparse.Namespace, options: registry.Options) -> int:
    details = catalog.show(args.ref, options=options)
    if args.json:
        body: dict[str, Any] = {
            "reference": details.reference,
            "digest": details.digest,
            "manifest": details.manifest,
            "config": details.config,
        }
        print(json.dumps(body, indent=2))
        return 0
    manifest = details.manifest
    annotations = manifest.get("annotations") or {}
    print(f"Reference:     {details.reference}")
    print(f"Digest:        {details.digest}")
    print(f"Artifact type: {manifest.get('artifactType') or manifest.get('config', {}).get('mediaType')}")
    print(f"Created:       {annotations.get('org.opencontainers.image.created', '-')}")
    print(f"Size:          {_size(details.size)}")
    if details.config is not None:
        print("Lineage:")
        for line in _lineage_lines(details.config):
            print(f"  {line}")
    print("Files:")
    for layer in manifest.get("layers", []):
        layer_annotations = layer.get("annotations") or {}
        name = layer_annotations.get("org.cncf.model.filepath") or layer_annotations.get(
            "org.opencontainers.image.title", layer.get("digest")
        )
        print(f"  {name:<40} {_size(int(layer.get('size', 0))):>10}  {layer.get('mediaType')}")
    return 0


def _lineage_lines(config: dict[str, Any]) -> list[str]:
    base = config.get("baseModel") or {}
    lines = [f"kind:        {config.get('kind', '-')}"]
    lines.append(
        f"base model:  {base.get('uri', '-')}" + (f" @ {base['revision']}" if base.get("revision") else "")
    )
    lines.append(f"method:      {config.get('method', '-')}")
    dataset = config.get("dataset") or {}
    if dataset:
        where = f"{dataset['uri']} " if dataset.get("uri") else ""
        lines.append(f"dataset:     {where}sha256:{dataset.get('sha256')}")
    for key, label in (("seed", "seed"), ("trainerImage", "trainer"), ("kubetuneVersion", "kubetune")):
        if config.get(key) is not None:
            lines.append(f"{label + ':':<12} {config[key]}")
    job = config.get("sourceJob") or {}
    if job:
        lines.append(f"source job:  {'/'.join(p for p in (job.get('namespace'), job.get('name')) if p)}")
    if config.get("hyperparameters"):
        lines.append(
            "hyperparams: " + ", ".join(f"{k}={v}" for k, v in sorted(config["hyperparameters"].items()))
        )
    for metric in config.get("metrics") or []:
        base_value = f" (base {metric['base']})" if metric.get("base") is not None else ""
        lines.append(f"metric:      {metric.get('name')} = {metric.get('tuned')}{base_value}")
    return lines


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
