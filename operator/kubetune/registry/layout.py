"""OCI image layout directories: the local registry, in the standard format skopeo reads.

A layout is ``oci-layout`` + ``index.json`` + ``blobs/sha256/<hex>``; a tag is an ``index.json``
entry annotated ``org.opencontainers.image.ref.name``. The local registry directory
(:func:`kubetune.registry.reference.default_root`) holds one layout per repository, so
``skopeo inspect --raw oci:<root>/<repo>:<tag>`` works. Blobs are written to a temporary file,
verified by digest, then renamed in place; ``index.json`` is replaced atomically under a lock, so a
reader never sees a tag pointing at a missing or partial blob. No network here.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from kubetune.registry import artifact, errors

LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
REF_NAME = "org.opencontainers.image.ref.name"
_PARTIAL = ".kubetune-partial-"
READ_BLOCK = 1 << 20


class Layout:
    """One OCI image layout directory."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def exists(self) -> bool:
        return (self.path / LAYOUT_FILE).is_file()

    def require(self) -> None:
        if not self.exists():
            raise errors.NotFound(
                f"{self.path} is not an OCI image layout (no {LAYOUT_FILE} file)",
                "check the path, or push to it first",
            )

    def init(self) -> None:
        """Create the layout if needed (idempotent)."""
        (self.path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        if not (self.path / LAYOUT_FILE).exists():
            _atomic_write(self.path / LAYOUT_FILE, json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        if not (self.path / INDEX_FILE).exists():
            self._write_index([])

    # --- blobs -------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        algorithm, _, hexpart = digest.partition(":")
        return self.path / "blobs" / algorithm / hexpart

    def has_blob(self, digest: str, size: int | None = None) -> bool:
        path = self.blob_path(digest)
        return path.is_file() and (size is None or path.stat().st_size == size)

    def write_blob(self, digest: str, size: int, chunks: Iterable[bytes], where: str = "") -> None:
        """Store ``chunks`` as blob ``digest``; raise IntegrityError (leaving nothing) on mismatch."""
        if self.has_blob(digest, size):
            return
        fd, tmp = tempfile.mkstemp(prefix=_PARTIAL, dir=self.path)
        try:
            hasher = artifact.StreamHasher(size)
            os.fchmod(fd, 0o644)
            try:
                with os.fdopen(fd, "wb") as out:
                    for chunk in chunks:
                        hasher.update(chunk)
                        out.write(chunk)
            finally:
                hasher.close()
            actual, written = hasher.digest(), hasher.size
            if actual != digest or written != size:
                raise errors.IntegrityError(
                    f"blob {digest} for {where or self.path} arrived as {actual} ({written} of {size} bytes)",
                    "the source is corrupted or changed during the copy; re-push it",
                )
            os.replace(tmp, self.blob_path(digest))
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    @contextlib.contextmanager
    def open_blob(self, digest: str) -> Iterator[Iterator[bytes]]:
        path = self.blob_path(digest)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise errors.NotFound(
                f"blob {digest} is missing from layout {self.path}", "re-push the artifact"
            ) from None
        with handle:
            yield iter(lambda: handle.read(READ_BLOCK), b"")

    def read_blob(self, digest: str) -> bytes:
        try:
            return self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise errors.NotFound(
                f"blob {digest} is missing from layout {self.path}", "re-push the artifact"
            ) from None

    # --- manifests and tags ------------------------------------------------------------------

    def entries(self) -> list[dict[str, Any]]:
        self.require()
        try:
            body = json.loads((self.path / INDEX_FILE).read_text())
        except (OSError, ValueError):
            raise errors.InvalidArtifact(
                f"{self.path}/{INDEX_FILE} is unreadable", "repair or recreate the layout"
            ) from None
        manifests = body.get("manifests") if isinstance(body, dict) else None
        return [m for m in manifests or [] if isinstance(m, dict)]

    def tags(self) -> list[str]:
        return sorted(
            {
                str(m["annotations"][REF_NAME])
                for m in self.entries()
                if REF_NAME in (m.get("annotations") or {})
            }
        )

    def resolve(self, tag: str) -> artifact.Descriptor:
        for entry in self.entries():
            if (entry.get("annotations") or {}).get(REF_NAME) == tag:
                return artifact.Descriptor.from_json(entry, f"{self.path}:{tag}")
        raise errors.NotFound(
            f"tag {tag!r} not found in layout {self.path}", "list tags with `kubetune registry ls`"
        )

    def put_manifest(
        self, data: bytes, media_type: str, tag: str | None, artifact_type: str | None = None
    ) -> str:
        """Store a manifest (its blobs must be present), then point ``tag`` at it."""
        digest = artifact.sha256_bytes(data)
        self.write_blob(digest, len(data), [data])
        entry: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": len(data)}
        if artifact_type:
            entry["artifactType"] = artifact_type
        with self.locked():
            entries = self.entries()
            if tag:
                entries = [e for e in entries if (e.get("annotations") or {}).get(REF_NAME) != tag]
                entries.append({**entry, "annotations": {REF_NAME: tag}})
            elif not any(e.get("digest") == digest for e in entries):
                entries.append(entry)
            self._write_index(entries)
        return digest

    def delete_tag(self, tag: str) -> str:
        """Remove ``tag``; blobs no other manifest references are deleted. Returns the old digest."""
        with self.locked():
            descriptor = self.resolve(tag)
            entries = [e for e in self.entries() if (e.get("annotations") or {}).get(REF_NAME) != tag]
            self._write_index(entries)
            self._collect_garbage(entries)
        return descriptor.digest

    def _collect_garbage(self, entries: list[dict[str, Any]]) -> None:
        keep: set[str] = set()
        for entry in entries:
            digest = str(entry.get("digest"))
            keep.add(digest)
            with contextlib.suppress(errors.RegistryError):
                manifest = artifact.parse_manifest(self.read_blob(digest), str(self.path))
                keep.add(manifest.config.digest)
                keep.update(layer.digest for layer in manifest.layers)
        for path in (self.path / "blobs" / "sha256").iterdir():
            if f"sha256:{path.name}" not in keep:
                path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """An exclusive lock on the layout, held by flock on the directory itself."""
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write_index(self, entries: list[dict[str, Any]]) -> None:
        body = {"schemaVersion": 2, "mediaType": artifact.INDEX_MEDIA_TYPE, "manifests": entries}
        _atomic_write(self.path / INDEX_FILE, json.dumps(body, indent=2).encode())


def repositories(root: Path) -> list[str]:
    """Repositories (layout directories, relative to ``root``) in the local registry directory."""
    if not root.is_dir():
        return []
    found = [p.parent.relative_to(root).as_posix() for p in root.rglob(LAYOUT_FILE) if p.is_file()]
    return sorted(name for name in found if name != ".")


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=_PARTIAL, dir=path.parent)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
