"""Image references -> local argv, following Docker's ENTRYPOINT/CMD rules.

``command`` replaces the rule's entrypoint; ``args`` replace its cmd; with a ``command`` but no
``args`` the cmd is dropped (as Kubernetes does). Then the first word is rewritten by the rule
and looked up on PATH. Pure functions; the runner turns :class:`ImageError` into a waiting
container state.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
from collections.abc import Sequence

from kubetune.testing.nodeagent.config import ImageRule


class ImageError(Exception):
    """The container cannot start; ``reason`` is the Kubernetes waiting/terminated reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def normalize(ref: str) -> str:
    """``python:3.11`` -> ``docker.io/library/python:3.11``; other references unchanged."""
    first, slash, _ = ref.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return ref
    return f"docker.io/{ref}" if slash else f"docker.io/library/{ref}"


def _repository(ref: str) -> str:
    """The reference without tag or digest."""
    ref = ref.split("@", 1)[0]
    head, _, last = ref.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def find_rule(image: str, rules: Sequence[ImageRule]) -> ImageRule | None:
    """The first rule whose glob matches ``image`` (raw or normalised, with or without tag)."""
    norm = normalize(image)
    candidates = (image, norm, _repository(norm))
    for rule in rules:
        pattern = normalize(rule.image)
        if any(fnmatch.fnmatchcase(c, p) for c in candidates for p in (rule.image, pattern)):
            return rule
    return None


def argv_for(
    image: str,
    command: Sequence[str] | None,
    args: Sequence[str] | None,
    rules: Sequence[ImageRule],
    source: str,
) -> tuple[ImageRule, list[str]]:
    """Combine the container's command/args with the matching rule; rewrite the first word."""
    rule = find_rule(image, rules)
    if rule is None:
        where = source or "the node agent's built-in image map"
        raise ImageError(
            "ErrImagePull",
            f'image "{image}" is not mapped to a local command by the kubetune test node agent; '
            f"add an ImageRule for it (image glob -> entrypoint/cmd/rewrite) to AgentConfig.images "
            f"in {where}",
        )
    gone = [path for path in rule.requires if not os.path.exists(path)]
    if gone:
        raise ImageError("ErrImagePull", f'image "{image}": {rule.missing or f"{gone[0]} is missing"}')
    if command:
        argv = list(command) + list(args or [])
    else:
        argv = list(rule.entrypoint) + list(args if args else rule.cmd)
    if not argv:
        raise ImageError("CreateContainerError", f'image "{image}": no command specified')
    head = rule.rewrite.get(argv[0]) or rule.rewrite.get(os.path.basename(argv[0]))
    if head:
        argv = [*head, *argv[1:]]
    return rule, argv


def locate(argv: list[str], path: str) -> list[str]:
    """Resolve ``argv[0]`` against ``path`` the way a container runtime would."""
    exe = argv[0]
    found = exe if "/" in exe else shutil.which(exe, path=path)
    if found is None or not os.access(found, os.X_OK):
        raise ImageError(
            "StartError",
            f'failed to create containerd task: exec: "{exe}": executable file not found in $PATH',
        )
    return [found, *argv[1:]]
