"""Why the API server refuses the pods a Job or ReplicaSet tries to create, in words to act on.

The Job and ReplicaSet controllers record the refusal (a ``FailedCreate`` Event on the Job, a
``ReplicaFailure`` condition on the Deployment) and retry for ever, so without this a
FineTuneJob or ModelDeployment in a governed namespace would wait in silence. :func:`read`
turns the API server's text into a :class:`Refusal`: which admission said no (ResourceQuota,
LimitRange, Pod Security), whether waiting can help (a quota that other workloads fill up
frees again; one whose hard limit is below what the pods need never does), and a message that
names the quota, the resource and the fix. Pure: text in, words out; no I/O.
"""

from __future__ import annotations

import dataclasses
import re
from fractions import Fraction
from typing import Literal

from kubetune.controllers import quantities

Kind = Literal["QuotaExceeded", "PodsRefused", "PodsNotCreated"]

_EXCEEDED = re.compile(
    r"exceeded quota: (?P<quota>[^,]+), requested: (?P<requested>.*?), used: (?P<used>.*?), "
    r"limited: (?P<limited>[^\s;]*)"
)
_MUST_SPECIFY = re.compile(r"failed quota: (?P<quota>[^:]+): must specify (?P<what>[^\"]+)")
_LIMIT_RANGE = re.compile(r"(maximum|minimum) [^,;]*? per (Container|Pod)[^;\"]*")
_POD_SECURITY = re.compile(r'violates PodSecurity "[^"]+"[^;]*')
_PREFIX = re.compile(r"^(Error creating: )?pods? (\"[^\"]*\" )?is forbidden: ")


@dataclasses.dataclass(frozen=True)
class Refusal:
    """What the API server said, read."""

    kind: Kind
    # True when waiting cannot help: only a change of the spec or of the namespace's policy can
    permanent: bool
    message: str


def _amounts(text: str) -> dict[str, Fraction]:
    out: dict[str, Fraction] = {}
    for item in text.split(","):
        name, _, value = item.strip().partition("=")
        try:
            out[name] = quantities.parse(value)
        except ValueError:
            continue
    return out


def _raw_amounts(text: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (i.partition("=") for i in text.split(",")) if k.strip()}


def _what(resource: str, fields: dict[str, str]) -> str:
    """The setting that decides ``resource`` (``limits.cpu`` -> ``fields['cpu']``)."""
    base = resource.removeprefix("requests.").removeprefix("limits.")
    return fields.get(base, "the pods' resources")


def spec_fields(cpu: object, memory: object, component: str, gpus: str) -> dict[str, str]:
    """The spec field that sets each amount of a pod whose ``spec.resources`` has ``cpu`` and
    ``memory`` (None: the chart's ``resourceDefaults.<component>`` fills it in)."""
    return {
        r: f"spec.resources.{r}"
        + ("" if set_ is not None else f" (default: resourceDefaults.{component}.{r})")
        for r, set_ in (("cpu", cpu), ("memory", memory))
    } | {"nvidia.com/gpu": gpus}


def read(text: str, *, pods: str, count: int, namespace: str, fields: dict[str, str]) -> Refusal:
    """Read one refusal of ``count`` pods described as ``pods`` (e.g. "the training pods").

    ``fields`` maps ``cpu``, ``memory`` and ``nvidia.com/gpu`` to the spec field or chart value
    that sets them, for the advice.
    """
    said = _PREFIX.sub("", text.strip())
    quota = _EXCEEDED.search(said)
    if quota is not None:
        name = quota.group("quota").strip()
        requested, used = _amounts(quota.group("requested")), _amounts(quota.group("used"))
        limited, shown = _amounts(quota.group("limited")), _raw_amounts(quota.group("limited"))
        never = [r for r in limited if r in requested and requested[r] * count > limited[r]]
        if never:
            r = never[0]
            need = _raw_amounts(quota.group("requested"))[r]
            each = f"{need} each" if count > 1 else need
            return Refusal(
                "QuotaExceeded",
                True,
                f"ResourceQuota {name} in namespace {namespace} allows {r}={shown[r]} in all, and "
                f"{pods}{f' ({count})' if count > 1 else ''} need {r}={each}, so they can never start: lower "
                f"{_what(r, fields)} or ask the platform team to raise the quota",
            )
        short = ", ".join(
            f"{r} ({_raw_amounts(quota.group('requested')).get(r, '?')} requested, "
            f"{_raw_amounts(quota.group('used')).get(r, '?')} of {shown[r]} used)"
            for r in limited
            if r in requested and requested[r] + used.get(r, Fraction(0)) > limited[r]
        )
        return Refusal(
            "QuotaExceeded",
            False,
            f"waiting for ResourceQuota {name} in namespace {namespace}: not enough {short or 'quota'} "
            f"left for {pods}; they start when other workloads of the namespace free it",
        )
    must = _MUST_SPECIFY.search(said)
    if must is not None:
        return Refusal(
            "PodsRefused",
            True,
            f"ResourceQuota {must.group('quota').strip()} in namespace {namespace} requires every "
            f"pod to specify {must.group('what').strip()}, which {pods} do not set; ask the platform "
            "team for a LimitRange default in the namespace",
        )
    limit = _LIMIT_RANGE.search(said)
    if limit is not None:
        return Refusal(
            "PodsRefused",
            True,
            f"a LimitRange in namespace {namespace} refuses {pods}: {limit.group(0).strip()}; set "
            f"{fields.get('cpu', 'cpu')} and {fields.get('memory', 'memory')} within its range",
        )
    security = _POD_SECURITY.search(said)
    if security is not None:
        return Refusal(
            "PodsRefused",
            True,
            f"the Pod Security admission of namespace {namespace} refuses {pods}: "
            f"{security.group(0).strip()}",
        )
    return Refusal("PodsNotCreated", False, f"the API server does not create {pods} yet: {said}")
