"""Where the base model and the dataset are on this machine, from the URIs in the spec.

Local paths (already absolute, see :mod:`kubetune.trainer.spec`) are used as they are;
``pvc://claim/path`` is looked up under the volume mount root (``$KUBETUNE_PVC_ROOT``, default
``/mnt/pvc``), where the operator mounts claims, and ``configmap://name/key`` under
``$KUBETUNE_CONFIGMAP_ROOT`` (the operator mounts the ConfigMap there). Fetched here, into
``$KUBETUNE_SOURCES_DIR`` (default ``~/.cache/kubetune/sources``), the same in a pod and in
local mode:

- ``hf://org/name[@rev]`` models and ``hf://datasets/org/name[@rev][/file]`` datasets, from the
  Hugging Face cache, downloading only when the hub is allowed (``HF_HUB_OFFLINE`` unset);
- ``oci://host/repo[:tag|@sha256:...]`` models and datasets: any OCI artifact with named file
  layers (a kubetune artifact, or files pushed with ``oras push``), digest-verified and cached
  by digest; credentials from ``$DOCKER_CONFIG``;
- ``https://`` datasets (a presigned object-store URL works), with ``$KUBETUNE_DATASET_TOKEN``
  as a bearer token when set.

``s3://`` is not read by this version: the error suggests a presigned URL or a PVC. Every
failure is a :class:`UserError` naming the field and the URI.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from kubetune.api.contract import pod
from kubetune.api.v1alpha1.common import ModelSource
from kubetune.trainer.errors import UserError

log = logging.getLogger(__name__)

DATA_SUFFIXES = (".jsonl", ".json")


@dataclasses.dataclass(frozen=True)
class ResolvedModel:
    """A base model directory and the lineage to record for it."""

    path: Path
    uri: str
    revision: str | None


def _pvc(uri: str) -> Path:
    rest = uri[len("pvc://") :]
    return Path(os.environ.get(pod.PVC_ROOT_ENV, pod.PVC_ROOT)) / rest


def _configmap(uri: str, field: str) -> Path:
    root = os.environ.get(pod.CONFIGMAP_ROOT_ENV)
    if not root:
        raise UserError(
            f"{field} {uri}: configmap:// datasets are mounted by the operator in a cluster; in "
            "local mode use a local file"
        )
    return Path(root) / uri[len("configmap://") :]


def sources_dir() -> Path:
    """Where fetched sources are cached."""
    configured = os.environ.get(pod.SOURCES_DIR)
    return Path(configured) if configured else Path.home() / ".cache" / "kubetune" / "sources"


def _s3(uri: str, field: str) -> UserError:
    return UserError(
        f"{field} {uri}: s3:// is not read by this version of the trainer; use a presigned "
        "https:// URL of the object, or copy it to a PersistentVolumeClaim (pvc://claim/path)"
    )


def _oci(uri: str, field: str) -> tuple[Path, str]:
    """Pull an OCI artifact (cached by digest); returns its directory and digest."""
    from kubetune import registry

    ref = uri
    try:
        parsed = registry.parse(ref)
        digest = parsed.digest or registry.resolve(ref)
        target = sources_dir() / "oci" / digest.replace(":", "-")
        if target.is_dir():
            # The cache may be shared with other jobs' pods (the operator's cache claim), and a
            # job with a custom image can write anything there: a hit counts only if the kept
            # manifest hashes to the digest and every file to its layer. Else it is set aside.
            try:
                registry.verify_pulled(target, digest)
            except registry.RegistryError as exc:
                log.warning("cached source failed verification; pulling again", extra={"error": str(exc)})
                aside = Path(tempfile.mkdtemp(prefix=f".rejected-{target.name}.", dir=target.parent))
                with contextlib.suppress(OSError):
                    target.rename(aside / "entry")
        if not target.is_dir():
            # a cache shared by pods: each pulls into its own staging directory; the first rename
            # wins and the others drop theirs (same digest, same files)
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
            try:
                pinned = registry.pull(
                    ref if parsed.digest else f"{ref.split('@')[0]}@{digest}", staging, keep_manifest=True
                )
                if not pinned.endswith(digest):
                    raise UserError(f"{field} {uri}: the registry served {pinned}, expected {digest}")
                try:
                    staging.rename(target)
                except OSError:
                    if not target.is_dir():
                        raise
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except registry.RegistryError as exc:
        raise UserError(f"{field} {uri}: {exc}") from None
    return target, digest


def _single_data_file(directory: Path, uri: str, field: str, name: str = "") -> Path:
    """``name`` in ``directory``, or its only .jsonl/.json file."""
    if name:
        path = directory / name
        if not path.is_file():
            raise UserError(f"{field} {uri}: the artifact has no file {name}")
        return path
    found = sorted(
        p
        for p in directory.rglob("*")
        if p.is_file() and p.suffix in DATA_SUFFIXES and not p.name.startswith(".")
    )
    if len(found) != 1:
        listed = ", ".join(str(p.relative_to(directory)) for p in found[:5]) or "none"
        raise UserError(
            f"{field} {uri}: expected exactly one .jsonl or .json file in it, found {listed}; "
            "name the file after the reference, e.g. oci://host/repo@sha256:...#train.jsonl"
        )
    return found[0]


def _https(uri: str, field: str) -> Path:
    from kubetune.clients import download

    target = sources_dir() / "https" / hashlib.sha256(uri.encode()).hexdigest()[:32]
    name = Path(uri.split("?", 1)[0].split("#", 1)[0]).name or "data.jsonl"
    try:
        download.download(uri, target / name, token=os.environ.get(pod.DATASET_TOKEN) or None)
    except download.DownloadError as exc:
        raise UserError(f"{field}: {exc}") from None
    return target / name


def _hf_dataset(uri: str, field: str) -> Path:
    body = uri[len("hf://datasets/") :]
    repo_part, _, rest = body.partition("@")
    if rest:  # hf://datasets/org/name@rev[/file]
        rev, _, file = rest.partition("/")
        parts = repo_part.split("/")
    else:
        parts = repo_part.split("/")
        rev, file = "", "/".join(parts[2:])
    if len(parts) < 2:
        raise UserError(f"{field} {uri}: expected hf://datasets/org/name[@revision][/file]")
    repo = "/".join(parts[:2])
    path = _hf_snapshot(
        repo,
        f"{field} {uri}",
        revision=rev or None,
        dataset=True,
        token=os.environ.get(pod.DATASET_TOKEN) or None,  # else HF_TOKEN, as the hub client does
    )
    return _single_data_file(path, uri, field, file)


def _hf_snapshot(
    repo: str,
    where: str,
    *,
    revision: str | None,
    dataset: bool = False,
    token: str | None = None,
    instead: str = "",
) -> Path:
    """A Hub repository's files from the local cache, downloaded when the hub is allowed.
    ``where`` (field and URI) starts the one-line errors; ``instead`` is the alternative they
    offer, e.g. a local directory."""
    kind = "dataset" if dataset else "model"
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        raise UserError(f"hf:// {kind}s need the trainer extra: pip install 'kubetune[trainer]'") from None
    try:
        return Path(
            snapshot_download(
                repo, repo_type=kind, revision=revision, local_files_only=_offline(), token=token
            )
        )
    except LocalEntryNotFoundError:
        flag = " --repo-type dataset" if dataset else ""
        raise UserError(
            f"{where}: not in the local Hugging Face cache and the hub is unavailable "
            f"(HF_HUB_OFFLINE=1); download it first (huggingface-cli download{flag} {repo})"
            + (f" or {instead}" if instead else "")
        ) from None
    except Exception as exc:  # the hub client raises many types: network, auth, not found
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise UserError(
            f"{where}: cannot fetch from the Hugging Face Hub ({type(exc).__name__}: {first}); check the "
            "name, the revision and the token" + (f", or {instead}" if instead else "")
        ) from None


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def resolve_model(source: ModelSource) -> ResolvedModel:
    """The local directory of the base model; raises :class:`UserError` when it is not here."""
    uri = source.uri
    if uri.startswith("hf://"):
        return _hf_model(source)
    if uri.startswith("oci://"):
        directory, digest = _oci(uri, "spec.baseModel.uri")
        if not (directory / "config.json").is_file():
            raise UserError(
                f"spec.baseModel.uri {uri}: the artifact has no config.json; is it a Hugging Face model?"
            )
        return ResolvedModel(path=directory, uri=uri, revision=digest)
    if uri.startswith("s3://"):
        raise _s3(uri, "spec.baseModel.uri")
    if uri.startswith("pvc://"):
        path = _pvc(uri)
    elif "://" in uri:
        scheme = uri.split("://", 1)[0]
        raise UserError(
            f"spec.baseModel.uri {uri}: {scheme}:// models are fetched by the operator before the "
            "training pod starts, not by the trainer; in local mode use a local directory"
        )
    else:
        path = Path(uri)
    if not path.is_dir():
        raise UserError(
            f"spec.baseModel.uri {uri}: no model directory at {path}"
            + (
                "; the quickstart's demo model is made by `make quickstart` (or "
                "`python -m kubetune.trainer.tiny DIR --data TRAIN.jsonl`)"
                if "tiny" in path.name
                else ""
            )
        )
    if not (path / "config.json").is_file():
        raise UserError(f"spec.baseModel.uri {uri}: {path} has no config.json; is it a Hugging Face model?")
    return ResolvedModel(path=path, uri=uri, revision=source.revision or directory_digest(path))


def _hf_model(source: ModelSource) -> ResolvedModel:
    body = source.uri[len("hf://") :]
    repo, _, rev = body.partition("@")
    revision = source.revision or rev or None
    resolved = _hf_snapshot(
        repo,
        f"spec.baseModel.uri {source.uri}",
        revision=revision,
        instead="point baseModel.uri at a local directory",
    )
    return ResolvedModel(path=resolved, uri=source.uri, revision=revision or resolved.name)


def resolve_dataset(uri: str, field: str = "spec.dataset.uri") -> Path:
    """The local file of a dataset URI; raises :class:`UserError` when it is not here."""
    if uri.startswith("pvc://"):
        path = _pvc(uri)
    elif uri.startswith("configmap://"):
        path = _configmap(uri, field)
    elif uri.startswith(("https://", "http://")):
        return _https(uri, field)
    elif uri.startswith("oci://"):
        ref, _, name = uri.partition("#")
        return _single_data_file(_oci(ref, field)[0], uri, field, name)
    elif uri.startswith("hf://datasets/"):
        return _hf_dataset(uri, field)
    elif uri.startswith("s3://"):
        raise _s3(uri, field)
    elif "://" in uri:
        scheme = uri.split("://", 1)[0]
        raise UserError(f"{field} {uri}: {scheme}:// is not a dataset location this trainer reads")
    else:
        path = Path(uri)
    if path.is_dir():
        raise UserError(f"{field} {uri}: is a directory; point it at a .jsonl or .json file")
    if not path.is_file():
        raise UserError(f"{field} {uri}: no such file ({path})")
    return path


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def directory_digest(path: Path) -> str:
    """``sha256:<hex>`` over the names and contents of the files of a model directory: the
    revision recorded for a local model, so lineage still pins exactly what was trained on."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and ".cache" not in p.parts):
        digest.update(str(file.relative_to(path)).encode())
        digest.update(file_sha256(file).encode())
    return "sha256:" + digest.hexdigest()
