"""Looking at what a registry holds: resolve a tag, list repositories and tags, show a manifest
with its lineage, delete a tag.

Each function takes a reference (string or parsed) and returns plain data for the CLI or a
controller to render. Nothing here moves blobs (see :mod:`kubetune.registry.transfer`) or prints.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from kubetune.registry import artifact, errors, layout, reference, store
from kubetune.registry.reference import Reference


@dataclasses.dataclass(frozen=True)
class Details:
    """A manifest and, for kubetune artifacts, its lineage config."""

    reference: str
    digest: str
    media_type: str
    manifest: dict[str, Any]
    config: dict[str, Any] | None

    @property
    def size(self) -> int:
        return sum(int(layer.get("size", 0)) for layer in self.manifest.get("layers", []))


def resolve(ref: str | Reference, *, options: store.Options | None = None) -> str:
    """The digest a reference's tag (``latest`` when none) points at."""
    target = _parse(ref)
    source = store.open_store(target, options)
    try:
        return source.resolve()
    finally:
        source.close()


def show(ref: str | Reference, *, options: store.Options | None = None) -> Details:
    """The manifest (and the lineage config when it is a kubetune artifact) behind a reference."""
    target = _parse(ref)
    source = store.open_store(target, options)
    try:
        data, media_type, digest = source.get_manifest()
        manifest = artifact.parse_manifest(data, str(target))
        config: dict[str, Any] | None = None
        if manifest.config.media_type == artifact.CONFIG_MEDIA_TYPE:
            with source.open_blob(manifest.config) as chunks:
                raw = b"".join(chunks)
            if artifact.sha256_bytes(raw) != manifest.config.digest:
                raise errors.IntegrityError(
                    f"the config blob of {target} is corrupted", "re-push the artifact"
                )
            config = json.loads(raw)
    finally:
        source.close()
    return Details(str(target.with_digest(digest)), digest, media_type, json.loads(data), config)


def check(ref: str | Reference, *, options: store.Options | None = None) -> None:
    """Raise :class:`errors.RegistryError` unless the registry of ``ref`` answers and accepts
    the credentials (``GET /v2/``); a local layout always passes. Checks reachability before
    work whose result must be pushed; push rights on the repository are known only at the push."""
    target = _parse(ref)
    source = store.open_store(target, options)
    try:
        if isinstance(source, store.RemoteStore):
            source.client.ping()
    finally:
        source.close()


def list_tags(ref: str | Reference, *, options: store.Options | None = None) -> list[str]:
    target = _parse(ref)
    source = store.open_store(target, options)
    try:
        return source.tags()
    finally:
        source.close()


def list_repositories(
    ref: str | Reference | None = None, *, options: store.Options | None = None
) -> list[str]:
    """Repositories of a registry (``oci://host``) or of a local registry directory (default:
    :func:`kubetune.registry.reference.default_root`)."""
    if ref is None:
        return layout.repositories(reference.default_root())
    target = reference.parse(ref, allow_bare_host=True) if isinstance(ref, str) else ref
    if isinstance(target, reference.LayoutRef):
        return layout.repositories(Path(target.path))
    source = store.RemoteStore(target, options or store.Options())
    try:
        return sorted(source.client.catalog())
    finally:
        source.close()


def delete(ref: str | Reference, *, options: store.Options | None = None) -> str:
    """Delete the reference's tag; returns the digest it pointed at."""
    target = _parse(ref)
    if not target.tag:
        raise errors.InvalidReference(f"{target} names no tag to delete", "write it as <repository>:<tag>")
    source = store.open_store(target, options)
    try:
        return source.delete_tag(target.tag)
    finally:
        source.close()


def _parse(ref: str | Reference) -> Reference:
    return reference.parse(ref) if isinstance(ref, str) else ref
