"""Names the API accepts: the limits that the children of each kind impose on its name.

A kubetune object's name becomes part of its children's names and label values (a FineTuneJob
``ft`` owns the Job ``ft-preflight`` whose pods carry the label ``job-name: ft-preflight``), so
the Kubernetes limits of those children are limits on the object's name. They are stated here
once: the CRDs get them as CEL rules on ``self.metadata.name`` at the root of the schema (see
:func:`cel_rules`), and ``kubetune validate`` checks the same rules with the same message
(:func:`problem`). Pure; nothing here talks to Kubernetes.

The limits, from the Kubernetes validation of each child:
- label values and DNS labels (Service names, container names, pod hostnames) are at most 63
  characters; Service names are DNS-1035 labels: a lowercase letter first, no ``.``;
- a Job's name is copied into its pods' ``job-name`` label, so it is a 63-character limit too;
- an Indexed Job's pod ``N`` gets the hostname ``<job>-N``;
- a FineTuneJob's Jobs and workers Service end in :func:`instance_hash` of its uid (five hex
  digits), so that a re-created job of the same name never reuses a Job name.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from pydantic.config import JsonDict

DNS_LABEL_MAX = 63
# The largest spec.resources.numNodes: the Indexed training Job's last pod index has as many
# digits as this minus one, and that hostname is the FineTuneJob's longest child name.
MAX_TRAINING_NODES = 1024
# A DNS-1035 label, the strictest name a child carries (a Service name).
DNS_1035 = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
# A DNS-1123 label: a container name.
DNS_1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# Hex digits of :func:`instance_hash` in a child's name (as many as Kueue's Workload names carry).
INSTANCE_HASH_LENGTH = 5


def instance_hash(name: str, uid: str | None) -> str:
    """Five hex digits of an object's name and uid: the same object always gets the same ones,
    a re-created object of the same name (a new uid) almost surely others."""
    return hashlib.sha256(f"{name}/{uid or ''}".encode()).hexdigest()[:INSTANCE_HASH_LENGTH]


@dataclass(frozen=True)
class NameRule:
    """What a kind's metadata.name may be, and why."""

    kind: str
    longest_suffix: str  # the longest child name is the object's name plus this
    longest_child: str  # that child, in words
    pattern: str = DNS_1035

    @property
    def max_length(self) -> int:
        return DNS_LABEL_MAX - len(self.longest_suffix)

    @property
    def length_message(self) -> str:
        return (
            f"metadata.name must be at most {self.max_length} characters: {self.longest_child}, "
            f"<name>{self.longest_suffix}, may have at most {DNS_LABEL_MAX}; choose a shorter name"
        )

    @property
    def pattern_message(self) -> str:
        return (
            "metadata.name must start with a lowercase letter and hold only lowercase letters, digits "
            "and '-' (no '.'), ending with a letter or digit: it names the "
            f"{self.kind}'s Services and pods; e.g. support-bot-v2"
        )


FINETUNEJOB = NameRule(
    kind="FineTuneJob",
    # pod hostnames of an Indexed training Job (numNodes > 1): longer than <name>-preflight-<hash>
    longest_suffix=f"-train-{'x' * INSTANCE_HASH_LENGTH}-{MAX_TRAINING_NODES - 1}",
    longest_child="the hostname of a multi-node training Job's last pod (xxxxx: a hash of the job's uid)",
)
MODELDEPLOYMENT = NameRule(
    kind="ModelDeployment", longest_suffix="-canary", longest_child="the canary Service's name"
)
RULES: dict[str, NameRule] = {rule.kind: rule for rule in (FINETUNEJOB, MODELDEPLOYMENT)}

# A served adapter's name becomes the init container pull-adapter-<name> of every serving pod.
SERVED_ADAPTER_PREFIX = "pull-adapter-"
SERVED_ADAPTER_MAX = DNS_LABEL_MAX - len(SERVED_ADAPTER_PREFIX)
SERVED_ADAPTER_MESSAGE = (
    f"adapter names are at most {SERVED_ADAPTER_MAX} lowercase letters, digits and '-' (no '.' or '_'), "
    f"starting and ending with a letter or digit: the name becomes the init container "
    f"{SERVED_ADAPTER_PREFIX}<name> of every serving pod; e.g. support-bot"
)


def cel_rules(rule: NameRule) -> tuple[JsonDict, ...]:
    """The root-level ``x-kubernetes-validations`` entries enforcing ``rule`` on metadata.name."""
    return (
        {
            "rule": f"self.metadata.name.size() <= {rule.max_length}",
            "message": rule.length_message,
            "fieldPath": ".metadata.name",
            "reason": "FieldValueInvalid",
        },
        {
            "rule": f"self.metadata.name.matches('{rule.pattern}')",
            "message": rule.pattern_message,
            "fieldPath": ".metadata.name",
            "reason": "FieldValueInvalid",
        },
    )


def problem(rule: NameRule, name: str) -> str | None:
    """Why ``name`` cannot be the metadata.name of ``rule.kind``; None when it can."""
    if len(name) > rule.max_length:
        return rule.length_message
    if not re.match(rule.pattern, name):
        return rule.pattern_message
    return None


def generate_name_problem(rule: NameRule, prefix: str) -> str | None:
    """Why ``metadata.generateName`` cannot make a valid name (5 random characters are added)."""
    if len(prefix) + 5 > rule.max_length:
        return (
            f"metadata.generateName must be at most {rule.max_length - 5} characters: the API server "
            f"adds 5 random ones and metadata.name is limited to {rule.max_length}"
        )
    if not re.match(rule.pattern, prefix + "a"):
        return "metadata.generateName" + rule.pattern_message.removeprefix("metadata.name")
    return None


def served_adapter_problem(name: str) -> str | None:
    """Why ``name`` cannot be a served adapter's name; None when it can."""
    if len(name) > SERVED_ADAPTER_MAX or not re.match(DNS_1123_LABEL, name):
        return SERVED_ADAPTER_MESSAGE
    return None
