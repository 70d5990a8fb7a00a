"""Where artifacts are kept: one interface over a remote repository and a local layout directory.

:func:`open_store` turns a reference into a :class:`RemoteStore` (HTTP through
:mod:`kubetune.registry.oci`) or a :class:`LayoutStore` (files through
:mod:`kubetune.registry.layout`). Both read blobs as verified byte streams, accept blobs from a
file or a stream, and store a manifest by digest before moving a tag, which is what keeps an
interrupted push from leaving a tag behind. Orchestration (push, pull, copy) lives in
:mod:`kubetune.registry.transfer`; this module never decides what to transfer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from kubetune.api.contract import pod
from kubetune.registry import artifact, auth, errors, layout, oci, progress
from kubetune.registry.reference import LayoutRef, Reference, RemoteRef

ENV_CA_FILE = "KUBETUNE_REGISTRY_CA_FILE"


@dataclasses.dataclass(frozen=True)
class Options:
    """How to reach remote registries. ``None`` fields fall back to the environment:
    ``KUBETUNE_REGISTRY_INSECURE`` (``true`` or a comma list of hosts talking plain HTTP) and
    ``KUBETUNE_REGISTRY_CA_FILE``; credentials resolve as :func:`kubetune.registry.auth.resolve`."""

    insecure: bool | None = None
    ca_file: Path | None = None
    credentials: auth.Credentials | None = None
    auth_file: Path | None = None
    chunk_size: int = 64 << 20

    def transport_for(self, host: str) -> oci.Transport:
        insecure = self.insecure
        if insecure is None:
            insecure = pod.plain_http_hosts(os.environ.get(pod.REGISTRY_INSECURE)).covers(host)
        ca_file = self.ca_file or (Path(os.environ[ENV_CA_FILE]) if os.environ.get(ENV_CA_FILE) else None)
        return oci.Transport(insecure=insecure, ca_file=ca_file)


class RemoteStore:
    """A repository on an OCI registry."""

    def __init__(self, ref: RemoteRef, options: Options) -> None:
        self.ref = ref
        self.options = options
        credentials = auth.resolve(ref.host, options.credentials, auth_file=options.auth_file)
        self.client = oci.Client(ref.api_host, credentials, options.transport_for(ref.host))

    def close(self) -> None:
        self.client.close()

    def has_blob(self, descriptor: artifact.Descriptor) -> bool:
        return self.client.blob_exists(self.ref.repository, descriptor.digest)

    @contextlib.contextmanager
    def open_blob(self, descriptor: artifact.Descriptor) -> Iterator[Iterator[bytes]]:
        with self.client.open_blob(self.ref.repository, descriptor.digest) as chunks:
            yield chunks

    def put_blob_file(self, descriptor: artifact.Descriptor, path: Path, advance: progress.Advance) -> None:
        self.client.upload_blob(
            self.ref.repository, descriptor.digest, descriptor.size, path, advance, self.options.chunk_size
        )

    def upload_file(self, path: Path, size: int, advance: progress.Advance) -> str:
        """Upload ``size`` bytes of ``path`` as a new blob, hashing them on the way out; returns
        the digest, which the registry has checked. Cannot skip a blob the registry already has."""
        return self.client.upload_blob(
            self.ref.repository, None, size, path, advance, self.options.chunk_size
        )

    def put_blob_chunks(
        self, descriptor: artifact.Descriptor, chunks: Iterable[bytes], advance: progress.Advance
    ) -> None:
        # Spool to disk first: the bytes are verified before upload and a failed chunk can be resent.
        with tempfile.TemporaryDirectory(prefix="kubetune-blob-") as tmp:
            path = Path(tmp) / "blob"
            write_verified(chunks, path, descriptor, str(self.ref))
            self.put_blob_file(descriptor, path, advance)

    def mount_blob(self, descriptor: artifact.Descriptor, source: RemoteStore) -> bool:
        if source.ref.api_host != self.ref.api_host or source.ref.repository == self.ref.repository:
            return False
        return self.client.mount_blob(self.ref.repository, descriptor.digest, source.ref.repository)

    def get_manifest(self) -> tuple[bytes, str, str]:
        """``(bytes, media type, digest)`` of the referenced manifest, verified against its digest."""
        data, media_type, header_digest = self.client.get_manifest(self.ref.repository, self.ref.target)
        digest = artifact.sha256_bytes(data)
        for expected in (self.ref.digest, header_digest):
            if expected and expected.startswith("sha256:") and expected != digest:
                raise errors.IntegrityError(
                    f"the manifest of {self.ref} hashes to {digest}, not {expected}",
                    "the registry returned corrupted content; contact its operator",
                )
        return data, media_type or artifact.MANIFEST_MEDIA_TYPE, digest

    def resolve(self) -> str:
        if self.ref.digest:
            return self.ref.digest
        return self.get_manifest()[2]

    def put_manifest(self, data: bytes, media_type: str, tag: str | None, artifact_type: str | None) -> str:
        digest = artifact.sha256_bytes(data)
        stored = self.client.put_manifest(self.ref.repository, digest, data, media_type)
        if stored and stored != digest:
            raise errors.IntegrityError(f"registry stored {stored} for manifest {digest} of {self.ref}", "")
        if tag:
            self.client.put_manifest(self.ref.repository, tag, data, media_type)
        return digest

    def tags(self) -> list[str]:
        return sorted(self.client.tags(self.ref.repository))

    def delete_tag(self, tag: str) -> str:
        """Delete ``tag``. Registries without tag deletion (distribution 2.x) delete the manifest by
        digest instead, which is refused when another tag still points at it."""
        digest = self.client.head_manifest(self.ref.repository, tag)
        if digest is None:
            raise errors.NotFound(f"tag {tag!r} not found in {self.ref.with_tag(None)}", "list tags with ls")
        try:
            self.client.delete_manifest(self.ref.repository, tag)
            return digest
        except (errors.Unsupported, errors.IntegrityError, errors.RegistryFailure):
            pass
        others = [
            t for t in self.tags() if t != tag and self.client.head_manifest(self.ref.repository, t) == digest
        ]
        if others:
            raise errors.Unsupported(
                f"registry {self.ref.host} cannot delete tag {tag!r} alone and tags {', '.join(others)} "
                f"share its manifest {digest}",
                "delete those tags too, or retag them first",
            )
        self.client.delete_manifest(self.ref.repository, digest)
        return digest


class LayoutStore:
    """An OCI image layout directory."""

    def __init__(self, ref: LayoutRef) -> None:
        self.ref = ref
        self.layout = layout.Layout(ref.path)

    def close(self) -> None:
        pass

    def has_blob(self, descriptor: artifact.Descriptor) -> bool:
        return self.layout.has_blob(descriptor.digest, descriptor.size)

    @contextlib.contextmanager
    def open_blob(self, descriptor: artifact.Descriptor) -> Iterator[Iterator[bytes]]:
        with self.layout.open_blob(descriptor.digest) as chunks:
            yield chunks

    def put_blob_file(self, descriptor: artifact.Descriptor, path: Path, advance: progress.Advance) -> None:
        with path.open("rb") as handle:
            chunks = iter(lambda: handle.read(layout.READ_BLOCK), b"")
            self.put_blob_chunks(descriptor, chunks, advance)

    def put_blob_chunks(
        self, descriptor: artifact.Descriptor, chunks: Iterable[bytes], advance: progress.Advance
    ) -> None:
        self.layout.init()
        self.layout.write_blob(descriptor.digest, descriptor.size, _counted(chunks, advance), str(self.ref))

    def get_manifest(self) -> tuple[bytes, str, str]:
        self.layout.require()
        if self.ref.digest:
            digest, media_type = self.ref.digest, artifact.MANIFEST_MEDIA_TYPE
        else:
            found = self.layout.resolve(self.ref.target)
            digest, media_type = found.digest, found.media_type
        data = self.layout.read_blob(digest)
        if artifact.sha256_bytes(data) != digest:
            raise errors.IntegrityError(
                f"the manifest of {self.ref} in layout {self.layout.path} is corrupted",
                "re-push the artifact",
            )
        return data, media_type, digest

    def resolve(self) -> str:
        return self.get_manifest()[2]

    def put_manifest(self, data: bytes, media_type: str, tag: str | None, artifact_type: str | None) -> str:
        # A registry refuses a manifest whose blobs it lacks; a directory cannot, so check here.
        manifest = artifact.parse_manifest(data, str(self.ref))
        for descriptor in [manifest.config, *manifest.layers]:
            if not self.layout.has_blob(descriptor.digest, descriptor.size):
                raise errors.IntegrityError(
                    f"cannot tag {self.ref}: blob {descriptor.digest} is missing from the layout",
                    "push it again",
                )
        self.layout.init()
        return self.layout.put_manifest(data, media_type, tag, artifact_type)

    def tags(self) -> list[str]:
        return self.layout.tags()

    def delete_tag(self, tag: str) -> str:
        return self.layout.delete_tag(tag)


Store = RemoteStore | LayoutStore


def open_store(ref: Reference, options: Options | None = None) -> Store:
    if isinstance(ref, RemoteRef):
        return RemoteStore(ref, options or Options())
    return LayoutStore(ref)


def write_verified(
    chunks: Iterable[bytes],
    path: Path,
    descriptor: artifact.Descriptor,
    where: str,
    advance: progress.Advance | None = None,
) -> None:
    """Write ``chunks`` to ``path`` and raise IntegrityError (removing the file) unless they hash
    to the descriptor's digest and size."""
    hasher = artifact.StreamHasher(descriptor.size)
    try:
        with path.open("wb") as out:
            for chunk in chunks:
                hasher.update(chunk)
                out.write(chunk)
                if advance is not None:
                    advance(len(chunk))
        digest = hasher.digest()
        if digest != descriptor.digest or hasher.size != descriptor.size:
            name = descriptor.filepath or descriptor.digest
            raise errors.IntegrityError(
                f"{name} from {where} is corrupted: expected {descriptor.digest} ({descriptor.size} bytes), "
                f"got {digest} ({hasher.size} bytes)",
                "the stored blob is damaged; re-push the artifact",
            )
    except BaseException:
        hasher.close()
        path.unlink(missing_ok=True)
        raise


def _counted(chunks: Iterable[bytes], advance: progress.Advance) -> Iterator[bytes]:
    for chunk in chunks:
        advance(len(chunk))
        yield chunk
