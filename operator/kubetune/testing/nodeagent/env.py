"""Container environment and downward API, resolved the way the kubelet does.

Order (later wins): the agent's base env (image ENV), the ``kubernetes`` Service variables,
``envFrom`` sources, then ``env`` entries. ``$(VAR)`` in values, command and args expands to an
earlier variable; ``$$`` escapes. A missing ConfigMap, Secret or key that is not optional
raises :class:`ConfigError` (the container waits with ``CreateContainerConfigError``). Pure
apart from the ``lookup`` callables the caller passes in.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from kubernetes.utils import quantity

_parse_quantity: Callable[[object], Decimal] = quantity.parse_quantity  # untyped upstream

Obj = dict[str, Any]
Lookup = Callable[[str, str], Obj | None]  # (namespace, name) -> object or None


class ConfigError(Exception):
    """The container's configuration cannot be resolved (yet)."""


@dataclasses.dataclass(frozen=True)
class PodContext:
    """What the downward API can expose about a pod besides its manifest."""

    pod: Obj
    pod_ip: str
    host_ip: str
    node_allocatable: Mapping[str, str]


_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: unknown references stay as written; ``$$`` -> ``$``."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env[name] if name in env else match.group(0)

    return _REF.sub(sub, text)


_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def field_value(ctx: PodContext, field_path: str) -> str:
    """The downward-API value of ``field_path`` (fieldRef) for the pod in ``ctx``."""
    meta = ctx.pod.get("metadata") or {}
    spec = ctx.pod.get("spec") or {}
    simple: dict[str, str] = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "status.podIP": ctx.pod_ip,
        "status.podIPs": ctx.pod_ip,
        "status.hostIP": ctx.host_ip,
        "status.hostIPs": ctx.host_ip,
    }
    if field_path in simple:
        return simple[field_path]
    match = _SUBSCRIPT.match(field_path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    if field_path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(field_path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    raise ConfigError(f"unsupported fieldRef fieldPath {field_path!r}")


def resource_value(ctx: PodContext, container_name: str, ref: Obj) -> str:
    """The downward-API value of a resourceFieldRef, rounded up to whole ``divisor`` units."""
    spec = ctx.pod.get("spec") or {}
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    name = ref.get("containerName") or container_name
    container = next((c for c in containers if c.get("name") == name), None)
    if container is None:
        raise ConfigError(f"resourceFieldRef names unknown container {name!r}")
    kind, _, resource = str(ref.get("resource", "")).partition(".")
    resources = container.get("resources") or {}
    amount = (resources.get(kind) or {}).get(resource)
    if amount is None and kind == "requests":
        amount = (resources.get("limits") or {}).get(resource)
    if amount is None:
        amount = ctx.node_allocatable.get(resource, "0")
    value = _parse_quantity(amount) / _parse_quantity(ref.get("divisor") or "1")
    return str(math.ceil(value))


def _secret_value(secret: Obj, key: str) -> str | None:
    if key in (secret.get("stringData") or {}):
        return str(secret["stringData"][key])
    raw = (secret.get("data") or {}).get(key)
    return None if raw is None else base64.b64decode(raw).decode(errors="replace")


def secret_items(secret: Obj) -> dict[str, bytes]:
    """All keys of a Secret, decoded."""
    items = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    items.update({k: str(v).encode() for k, v in (secret.get("stringData") or {}).items()})
    return items


def configmap_items(cm: Obj) -> dict[str, bytes]:
    """All keys of a ConfigMap (``data`` and ``binaryData``) as bytes."""
    items = {k: str(v).encode() for k, v in (cm.get("data") or {}).items()}
    items.update({k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
    return items


def resolve(
    ctx: PodContext,
    container: Obj,
    base: Mapping[str, str],
    configmap: Lookup,
    secret: Lookup,
) -> dict[str, str]:
    """The full environment of ``container``; raises :class:`ConfigError` if something is missing."""
    namespace = (ctx.pod.get("metadata") or {}).get("namespace", "default")
    env: dict[str, str] = dict(base)
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            ref = source["configMapRef"]
            cm = configmap(namespace, ref["name"])
            if cm is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f'configmap "{ref["name"]}" not found')
            values = {k: v.decode(errors="replace") for k, v in configmap_items(cm).items()}
        elif "secretRef" in source:
            ref = source["secretRef"]
            sec = secret(namespace, ref["name"])
            if sec is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f'secret "{ref["name"]}" not found')
            values = {k: v.decode(errors="replace") for k, v in secret_items(sec).items()}
        else:
            continue
        env.update({prefix + k: v for k, v in values.items()})
    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand(str(var.get("value", "")), env)
            continue
        value = _value_from(ctx, container.get("name", ""), var["valueFrom"], namespace, configmap, secret)
        if value is not None:
            env[name] = value
    return env


def _value_from(
    ctx: PodContext, container_name: str, source: Obj, namespace: str, configmap: Lookup, secret: Lookup
) -> str | None:
    if "fieldRef" in source:
        return field_value(ctx, source["fieldRef"]["fieldPath"])
    if "resourceFieldRef" in source:
        return resource_value(ctx, container_name, source["resourceFieldRef"])
    if "configMapKeyRef" in source:
        ref = source["configMapKeyRef"]
        cm = configmap(namespace, ref["name"])
        data = configmap_items(cm) if cm is not None else None
        if data is None or ref["key"] not in data:
            if ref.get("optional"):
                return None
            what = (
                f'configmap "{ref["name"]}"'
                if data is None
                else f'key "{ref["key"]}" in configmap "{ref["name"]}"'
            )
            raise ConfigError(f"couldn't find {what}")
        return data[ref["key"]].decode(errors="replace")
    if "secretKeyRef" in source:
        ref = source["secretKeyRef"]
        sec = secret(namespace, ref["name"])
        value = _secret_value(sec, ref["key"]) if sec is not None else None
        if value is None:
            if ref.get("optional"):
                return None
            what = (
                f'secret "{ref["name"]}"' if sec is None else f'key "{ref["key"]}" in secret "{ref["name"]}"'
            )
            raise ConfigError(f"couldn't find {what}")
        return value
    raise ConfigError(f"unsupported env valueFrom {sorted(source)}")
