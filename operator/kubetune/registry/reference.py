"""Artifact references: ``oci://host[:port]/repo[:tag][@sha256:...]`` or a local OCI layout path.

A reference names where an artifact lives (a repository in a remote registry, or an OCI image
layout directory on disk) and which one (a tag, a digest, or both: the digest wins and the tag is
kept for people). This module only parses and formats; it must not touch the network or the disk
beyond expanding ``~`` and reading the environment for the local default directory.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

from kubetune.registry import errors

DEFAULT_TAG = "latest"
SCHEME = "oci://"

# Grammar from the OCI distribution spec (repository components, tags) and image spec (digests).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_HOST_RE = re.compile(r"^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::[0-9]{1,5})?$")

_EXAMPLE = "oci://registry.example.com/team/adapter:v1 or ./layout-dir:v1"


@dataclasses.dataclass(frozen=True)
class RemoteRef:
    """An artifact (or, with an empty repository, a whole registry) on an OCI registry."""

    host: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        text = f"{SCHEME}{self.host}"
        if self.repository:
            text += f"/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def target(self) -> str:
        """What to ask the registry for: the digest when pinned, else the tag (``latest`` by default)."""
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def api_host(self) -> str:
        """Host the HTTP API lives on (Docker Hub's API is not served from ``docker.io``)."""
        return "registry-1.docker.io" if self.host in ("docker.io", "index.docker.io") else self.host

    def with_digest(self, digest: str) -> RemoteRef:
        return dataclasses.replace(self, digest=digest)

    def with_tag(self, tag: str | None) -> RemoteRef:
        return dataclasses.replace(self, tag=tag)


@dataclasses.dataclass(frozen=True)
class LayoutRef:
    """An artifact in an OCI image layout directory; tags are ``org.opencontainers.image.ref.name``."""

    path: Path
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        text = str(self.path)
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def target(self) -> str:
        return self.digest or self.tag or DEFAULT_TAG

    def with_digest(self, digest: str) -> LayoutRef:
        return dataclasses.replace(self, digest=digest)

    def with_tag(self, tag: str | None) -> LayoutRef:
        return dataclasses.replace(self, tag=tag)


Reference = RemoteRef | LayoutRef


def default_root() -> Path:
    """The local registry directory: ``$KUBETUNE_REGISTRY_DIR``, else ``./.kubetune/registry``
    (relative to the working directory, as local mode's FineTuneJob output default says). Each
    repository below it is its own OCI image layout."""
    explicit = os.environ.get("KUBETUNE_REGISTRY_DIR")
    return Path(explicit).expanduser() if explicit else Path(".kubetune") / "registry"


def local(repository: str, tag: str | None = None, root: Path | None = None) -> LayoutRef:
    """The layout reference for ``repository`` in the local registry directory."""
    if not REPOSITORY_RE.match(repository):
        raise errors.InvalidReference(
            f"invalid repository name {repository!r}",
            "use lowercase letters, digits and . _ - separated by /, e.g. team/my-adapter",
        )
    if tag is not None:
        _check_tag(tag, repository)
    return LayoutRef(path=(root or default_root()) / repository, tag=tag)


def parse(text: str, *, allow_bare_host: bool = False) -> Reference:
    """Parse ``oci://host[:port]/repo[:tag][@sha256:hex]`` or ``PATH[:tag][@sha256:hex]``.

    ``allow_bare_host`` accepts ``oci://host[:port]`` with no repository (for listing a registry).
    """
    if not text or text.strip() != text:
        raise errors.InvalidReference(f"invalid reference {text!r}", f"write it as {_EXAMPLE}")
    body, digest = _split_digest(text)
    if body.startswith(SCHEME):
        return _parse_remote(text, body[len(SCHEME) :], digest, allow_bare_host)
    if "://" in body:
        raise errors.InvalidReference(
            f"unsupported reference scheme in {text!r}", f"only oci:// and layout paths work: {_EXAMPLE}"
        )
    head, sep, last = body.rpartition("/")
    tag: str | None = None
    if ":" in last:
        name, _, candidate = last.rpartition(":")
        if name and TAG_RE.match(candidate):
            last, tag = name, candidate
    path = f"{head}{sep}{last}"
    if not path:
        raise errors.InvalidReference(f"reference {text!r} has no layout path", f"write it as {_EXAMPLE}")
    return LayoutRef(path=Path(path).expanduser(), tag=tag, digest=digest)


def _split_digest(text: str) -> tuple[str, str | None]:
    if "@" not in text:
        return text, None
    body, _, digest = text.rpartition("@")
    if not DIGEST_RE.match(digest):
        raise errors.InvalidReference(
            f"invalid digest {digest!r} in reference {text!r}",
            "a digest is sha256: followed by 64 lowercase hex characters",
        )
    return body, digest


def _parse_remote(text: str, rest: str, digest: str | None, allow_bare_host: bool) -> RemoteRef:
    host, _, path = rest.partition("/")
    if not host or not _HOST_RE.match(host):
        raise errors.InvalidReference(f"invalid registry host in {text!r}", f"write it as {_EXAMPLE}")
    if not path:
        if allow_bare_host and digest is None:
            return RemoteRef(host=host, repository="")
        raise errors.InvalidReference(
            f"reference {text!r} names a registry but no repository", f"write it as {_EXAMPLE}"
        )
    repository, tag = path, None
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        repository, _, tag = path.rpartition(":")
        _check_tag(tag, text)
    if not REPOSITORY_RE.match(repository):
        raise errors.InvalidReference(
            f"invalid repository {repository!r} in {text!r}",
            "repositories are lowercase letters, digits and . _ - separated by /",
        )
    if host in ("docker.io", "index.docker.io") and "/" not in repository:
        repository = f"library/{repository}"
    return RemoteRef(host=host, repository=repository, tag=tag, digest=digest)


def _check_tag(tag: str, where: str) -> None:
    if not TAG_RE.match(tag):
        raise errors.InvalidReference(
            f"invalid tag {tag!r} in {where!r}",
            "tags are up to 128 letters, digits, _ . - and cannot start with . or -",
        )
