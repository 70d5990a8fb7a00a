"""Read kubetune manifests from YAML files, keeping line numbers for every field.

Multi-document files, directories and ``-`` (stdin) are accepted. Each document comes with
its composed YAML node so a problem at ``spec.method.lora.r`` can be reported at the line
where ``r`` is written. Only reads files; no network.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubetune.api.errors import Loc


@dataclass
class Document:
    """One YAML document of a file."""

    path: str
    index: int  # 1-based
    obj: Any
    node: yaml.Node | None

    @property
    def line(self) -> int:
        return self.node.start_mark.line + 1 if self.node is not None else 1

    def line_of(self, loc: Loc) -> int:
        """Line of the deepest node along ``loc`` that exists in the file (1-based)."""
        node = self.node
        line = self.line
        for part in loc:
            if isinstance(node, yaml.MappingNode) and isinstance(part, str):
                match = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
                if match is None:
                    break
                line = match[0].start_mark.line + 1
                node = match[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                break
        return line


class ManifestError(Exception):
    """A file that cannot be read or parsed; the message names the file and line."""


def expand(paths: list[str]) -> list[str]:
    """Files named, with directories replaced by their *.yaml / *.yml files (sorted)."""
    out: list[str] = []
    for p in paths:
        path = Path(p)
        if p != "-" and path.is_dir():
            out.extend(
                str(f) for f in sorted(path.rglob("*")) if f.suffix in (".yaml", ".yml") and f.is_file()
            )
        else:
            out.append(p)
    return out


def read(path: str) -> Iterator[Document]:
    """Documents of one file; raises :class:`ManifestError` for unreadable or invalid YAML."""
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ManifestError(f"{path}:{line}: not UTF-8 (byte {exc.start}); save the file as UTF-8") from None
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        objs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ManifestError(f"{path}{line}: invalid YAML: {problem}") from None
    index = 0
    for node, obj in zip(nodes, objs, strict=True):
        if obj is None:
            continue
        index += 1
        yield Document(path=path, index=index, obj=obj, node=node)
