"""Where the base model and the dataset are on this machine, from the URIs in the spec.

Local paths (already absolute, see :mod:`kubetune.trainer.spec`) are used as they are;
``pvc://claim/path`` is looked up under the volume mount root (``$KUBETUNE_PVC_ROOT``, default
``/mnt/pvc``), where the operator mounts claims; ``hf://org/name[@rev]`` is read from the local
Hugging Face cache (and downloaded only when the hub is allowed, i.e. ``HF_HUB_OFFLINE`` unset).
Sources fetched by the operator before the pod starts (s3://, oci://, https://) are not
fetched here: the error says so. Every failure is a :class:`UserError` naming the URI.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

from kubetune.api.v1alpha1.common import ModelSource
from kubetune.trainer.errors import UserError

PVC_ROOT_ENV = "KUBETUNE_PVC_ROOT"


@dataclasses.dataclass(frozen=True)
class ResolvedModel:
    """A base model directory and the lineage to record for it."""

    path: Path
    uri: str
    revision: str | None


def _pvc(uri: str) -> Path:
    rest = uri[len("pvc://") :]
    return Path(os.environ.get(PVC_ROOT_ENV, "/mnt/pvc")) / rest


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def resolve_model(source: ModelSource) -> ResolvedModel:
    """The local directory of the base model; raises :class:`UserError` when it is not here."""
    uri = source.uri
    if uri.startswith("hf://"):
        return _hf_model(source)
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
            + ("; create the demo model with `make quickstart-model`" if "tiny" in path.name else "")
        )
    if not (path / "config.json").is_file():
        raise UserError(f"spec.baseModel.uri {uri}: {path} has no config.json; is it a Hugging Face model?")
    return ResolvedModel(path=path, uri=uri, revision=source.revision or directory_digest(path))


def _hf_model(source: ModelSource) -> ResolvedModel:
    body = source.uri[len("hf://") :]
    repo, _, rev = body.partition("@")
    revision = source.revision or rev or None
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        raise UserError("hf:// models need the trainer extra: pip install 'kubetune[trainer]'") from None
    try:
        path = snapshot_download(repo, revision=revision, local_files_only=_offline())
    except LocalEntryNotFoundError:
        raise UserError(
            f"spec.baseModel.uri {source.uri}: not in the local Hugging Face cache and the hub is "
            "unavailable (HF_HUB_OFFLINE=1); download it first (huggingface-cli download "
            f"{repo}) or point baseModel.uri at a local directory"
        ) from None
    except Exception as exc:  # the hub client raises many types: network, auth, not found
        raise UserError(
            f"spec.baseModel.uri {source.uri}: cannot fetch from the Hugging Face Hub "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); check the "
            "name, the revision and the token, or use a local directory"
        ) from None
    resolved = Path(path)
    return ResolvedModel(path=resolved, uri=source.uri, revision=revision or resolved.name)


def resolve_dataset(uri: str, field: str = "spec.dataset.uri") -> Path:
    """The local file of a dataset URI; raises :class:`UserError` when it is not here."""
    if uri.startswith("pvc://"):
        path = _pvc(uri)
    elif "://" in uri:
        scheme = uri.split("://", 1)[0]
        raise UserError(
            f"{field} {uri}: {scheme}:// datasets are fetched by the operator before the training "
            "pod starts, not by the trainer; in local mode use a local file"
        )
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
