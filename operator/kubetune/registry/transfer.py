"""Moving artifacts: push a directory, pull into a directory, copy between stores.

Order is what makes these safe. Push: every blob first (each verified by digest by the registry),
then the config, then the manifest by digest, and the tag last, so an interrupted push never
leaves a tag pointing at a partial artifact. Files up to :data:`HASH_FIRST_MAX` are hashed first
and skipped when the destination has them; larger files going to a registry are hashed while they
upload (one read of the file instead of two), so they cannot be skipped when already present.
Pull: every layer is hashed while it is written into a staging directory inside the target, and
files only move into place once all of them verified; on any failure the target is left as it
was. This module decides what to transfer; it talks to storage only through
:mod:`kubetune.registry.store`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubetune import logs
from kubetune.registry import artifact, errors, progress, reference, store
from kubetune.registry.reference import Reference

log = logging.getLogger(__name__)
# Above this a file pushed to a registry is hashed as it uploads instead of before: hashing first
# costs a full extra read and SHA-256 pass that cannot overlap the upload; below it that pass is
# a few milliseconds and buys skipping a blob the registry already has (tokenizer files, configs).
HASH_FIRST_MAX = progress.LARGE


def push_directory(
    src_dir: str | os.PathLike[str],
    ref: str | Reference,
    config: artifact.ArtifactConfig | Mapping[str, Any],
    *,
    options: store.Options | None = None,
    reporter: progress.Reporter | None = None,
) -> str:
    """Push every file under ``src_dir`` as one artifact with lineage ``config``; tag it with the
    reference's tag (``latest`` when none) and return the digest-pinned reference, e.g.
    ``oci://host/team/adapter@sha256:...`` or ``/path/layout@sha256:...``."""
    target = _parse(ref)
    if target.digest:
        raise errors.InvalidReference(
            f"cannot push to {target}: it is pinned to a digest", "push to a tag; the digest is computed"
        )
    lineage = artifact.make_config(config)
    if lineage.created is None:
        lineage = lineage.model_copy(update={"created": artifact.now_rfc3339()})
    files = artifact.list_directory(Path(src_dir))
    config_bytes = lineage.to_json()
    config_desc = artifact.Descriptor(
        artifact.CONFIG_MEDIA_TYPE, artifact.sha256_bytes(config_bytes), len(config_bytes)
    )
    title = target.repository if isinstance(target, reference.RemoteRef) else target.path.name
    annotations = artifact.manifest_annotations(lineage, title=title)
    if target.tag:
        annotations["org.opencontainers.image.version"] = target.tag
    artifact_type = artifact.ARTIFACT_TYPES[lineage.kind]
    reporter = reporter or progress.default("push")
    destination = store.open_store(target, options)
    try:
        layers = [_push_file(destination, file, reporter) for file in files]
        manifest = artifact.build_manifest(config_desc, layers, annotations, artifact_type)
        if not destination.has_blob(config_desc):
            destination.put_blob_chunks(config_desc, [config_bytes], lambda _n: None)
        digest = destination.put_manifest(
            manifest, artifact.MANIFEST_MEDIA_TYPE, target.tag or reference.DEFAULT_TAG, artifact_type
        )
    finally:
        destination.close()
    pinned = target.with_tag(None).with_digest(digest)
    log.info(
        "pushed artifact",
        extra=logs.fields(
            reference=str(target),
            digest=digest,
            files=len(layers),
            bytes=sum(layer.size for layer in layers),
        ),
    )
    return str(pinned)


def _push_file(
    destination: store.Store, file: artifact.SourceFile, reporter: progress.Reporter
) -> artifact.Descriptor:
    """Upload one file as a layer and return its descriptor."""
    if isinstance(destination, store.RemoteStore) and file.size > HASH_FIRST_MAX:
        with reporter.blob(file.relpath, file.size) as advance:
            digest = destination.upload_file(file.path, file.size, advance)
        if file.path.stat().st_size != file.size:
            # The upload sent the size listed at the start; a file still being written is not it.
            raise errors.InvalidArtifact(
                f"{file.relpath} changed size while it was pushed", "push again once the files are complete"
            )
        return file.descriptor(digest)
    descriptor = file.hashed().descriptor
    if destination.has_blob(descriptor):
        log.info("blob exists", extra=logs.fields(blob=descriptor.filepath, digest=descriptor.digest))
        return descriptor
    with reporter.blob(file.relpath, descriptor.size) as advance:
        destination.put_blob_file(descriptor, file.path, advance)
    return descriptor


MANIFEST_FILE = ".oci-manifest.json"  # kept by pull(keep_manifest=True) for verify_pulled


def pull(
    ref: str | Reference,
    dest_dir: str | os.PathLike[str],
    *,
    options: store.Options | None = None,
    reporter: progress.Reporter | None = None,
    keep_manifest: bool = False,
) -> str:
    """Write the artifact's files into ``dest_dir`` (absent or empty), verifying every digest.
    Returns the digest-pinned reference. On failure ``dest_dir`` is left as it was.
    ``keep_manifest`` also writes the manifest bytes as :data:`MANIFEST_FILE`, so that
    :func:`verify_pulled` can check the directory later without the registry."""
    source_ref = _parse(ref)
    dest = Path(dest_dir)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise errors.InvalidArtifact(
            f"cannot pull {source_ref} into {dest}: it exists and is not an empty directory",
            "pull into a new or empty directory",
        )
    reporter = reporter or progress.default("pull")
    source = store.open_store(source_ref, options)
    created = not dest.exists()
    staging: Path | None = None
    try:
        data, _media_type, digest = source.get_manifest()
        manifest = artifact.parse_manifest(data, str(source_ref))
        paths = [artifact.safe_relpath(layer.filepath, str(source_ref)) for layer in manifest.layers]
        if len(set(paths)) != len(paths):
            raise errors.InvalidArtifact(f"{source_ref} has two layers for the same file", "re-push it")
        dest.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".kubetune-pull-", dir=dest))
        for layer, relpath in zip(manifest.layers, paths, strict=True):
            target = staging / relpath
            target.parent.mkdir(parents=True, exist_ok=True)
            with reporter.blob(relpath, layer.size) as advance, source.open_blob(layer) as chunks:
                store.write_verified(chunks, target, layer, str(source_ref), advance)
        if keep_manifest:
            (staging / MANIFEST_FILE).write_bytes(data)
            paths.append(MANIFEST_FILE)
        for relpath in paths:
            top = relpath.split("/", 1)[0]
            if not (dest / top).exists():
                os.replace(staging / top, dest / top)
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if created:
            shutil.rmtree(dest, ignore_errors=True)
        raise
    finally:
        source.close()
    shutil.rmtree(staging, ignore_errors=True)
    log.info("pulled artifact", extra=logs.fields(reference=str(source_ref), digest=digest, files=len(paths)))
    return str(source_ref.with_tag(None).with_digest(digest))


def verify_pulled(directory: str | os.PathLike[str], digest: str) -> None:
    """Check a directory written by ``pull(keep_manifest=True)`` against ``digest``: the kept
    manifest hashes to it, and the files are exactly its layers with their digests. Raises
    :class:`errors.InvalidArtifact` saying what differs. For directories others can write (a
    download cache shared by pods): a name that says ``sha256:...`` proves nothing by itself."""
    root = Path(directory)
    where = f"{root} (expected {digest})"
    algorithm, _, expected = digest.partition(":")
    if algorithm != "sha256":
        raise errors.Unsupported(f"{where}: digest algorithm {algorithm!r}", "pin the artifact by sha256")
    try:
        data = (root / MANIFEST_FILE).read_bytes()
    except OSError:
        raise errors.InvalidArtifact(f"{where} has no {MANIFEST_FILE}", "pull it again") from None
    if hashlib.sha256(data).hexdigest() != expected:
        raise errors.InvalidArtifact(f"{where}: its manifest does not hash to the digest", "pull it again")
    manifest = artifact.parse_manifest(data, where)
    wanted = {artifact.safe_relpath(layer.filepath, where): layer for layer in manifest.layers}
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()} - {
        MANIFEST_FILE
    }
    if present != set(wanted):
        extra, missing = sorted(present - set(wanted)), sorted(set(wanted) - present)
        raise errors.InvalidArtifact(
            f"{where}: files differ from the manifest (extra {extra[:3]}, missing {missing[:3]})",
            "pull it again",
        )
    for relpath, layer in wanted.items():
        path = root / relpath
        if path.is_symlink() or _sha256(path) != layer.digest:
            raise errors.InvalidArtifact(
                f"{where}: {relpath} does not match its layer digest", "pull it again"
            )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def copy(
    src: str | Reference,
    dst: str | Reference,
    *,
    options: store.Options | None = None,
    reporter: progress.Reporter | None = None,
) -> str:
    """Copy an artifact (or any single-manifest image) between registries and layouts, byte for
    byte, so its digest is unchanged. The destination tag defaults to the source's tag."""
    source_ref, dest_ref = _parse(src), _parse(dst)
    if dest_ref.digest:
        raise errors.InvalidReference(f"cannot copy to {dest_ref}: it is pinned to a digest", "copy to a tag")
    reporter = reporter or progress.default("copy")
    with contextlib.ExitStack() as stack:
        source = store.open_store(source_ref, source_options(options, source_ref, dest_ref))
        stack.callback(source.close)
        destination = store.open_store(dest_ref, options)
        stack.callback(destination.close)
        data, media_type, digest = source.get_manifest()
        manifest = artifact.parse_manifest(data, str(source_ref))
        for descriptor in [manifest.config, *manifest.layers]:
            _copy_blob(source, destination, descriptor, reporter)
        tag = dest_ref.tag or source_ref.tag or reference.DEFAULT_TAG
        destination.put_manifest(data, manifest.media_type or media_type, tag, manifest.artifact_type)
    log.info(
        "copied artifact", extra=logs.fields(source=str(source_ref), destination=str(dest_ref), digest=digest)
    )
    return str(dest_ref.with_tag(None).with_digest(digest))


def source_options(options: store.Options | None, src: Reference, dst: Reference) -> store.Options | None:
    """The options to read ``src`` with: explicit credentials (``--username``/``--password-stdin``)
    are the destination's, so a source on another host gets none of them and resolves its own
    (environment scoped to its host, auth files)."""
    if options is None or options.credentials is None:
        return options
    if isinstance(src, reference.RemoteRef) and isinstance(dst, reference.RemoteRef) and src.host == dst.host:
        return options
    return dataclasses.replace(options, credentials=None)


def _copy_blob(
    source: store.Store,
    destination: store.Store,
    descriptor: artifact.Descriptor,
    reporter: progress.Reporter,
) -> None:
    if destination.has_blob(descriptor):
        return
    if (
        isinstance(destination, store.RemoteStore)
        and isinstance(source, store.RemoteStore)
        and destination.mount_blob(descriptor, source)
    ):
        return
    with reporter.blob(descriptor.filepath or descriptor.digest, descriptor.size) as advance:
        if isinstance(source, store.LayoutStore):
            # A layout blob is already a file: upload it directly; the registry verifies the digest.
            path = source.layout.blob_path(descriptor.digest)
            if not path.is_file():
                raise errors.NotFound(f"blob {descriptor.digest} is missing from {source.ref}", "re-push it")
            destination.put_blob_file(descriptor, path, advance)
        else:
            with source.open_blob(descriptor) as chunks:
                destination.put_blob_chunks(descriptor, chunks, advance)


def _parse(ref: str | Reference) -> Reference:
    return reference.parse(ref) if isinstance(ref, str) else ref
