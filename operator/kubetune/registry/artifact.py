"""The kubetune artifact format: an OCI image manifest, a lineage config blob, one layer per file.

Adapters, merged models and quantized models share one shape (see docs/registry.md): the config
blob (:class:`ArtifactConfig`, media type :data:`CONFIG_MEDIA_TYPE`) carries lineage; each file of
the trained output is one uncompressed layer typed with a CNCF ModelPack media type and named by
the ``org.cncf.model.filepath`` and ``org.opencontainers.image.title`` annotations that ModelPack
tools and ORAS use to name files. This module builds and parses manifests and describes
directories; it must not do I/O beyond reading the files it describes, and never the network.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import posixpath
import queue
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

import kubetune
from kubetune.registry import errors

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_MEDIA_TYPE = "application/vnd.kubetune.artifact.config.v1+json"
ARTIFACT_TYPES = {
    "adapter": "application/vnd.kubetune.adapter.v1",
    "merged": "application/vnd.kubetune.model.merged.v1",
    "quantized": "application/vnd.kubetune.model.quantized.v1",
}
# Layer media types borrowed from the CNCF ModelPack spec (raw = one unarchived file per layer).
WEIGHT_MEDIA_TYPE = "application/vnd.cncf.model.weight.v1.raw"
WEIGHT_CONFIG_MEDIA_TYPE = "application/vnd.cncf.model.weight.config.v1.raw"
DOC_MEDIA_TYPE = "application/vnd.cncf.model.doc.v1.raw"
OTHER_MEDIA_TYPE = "application/octet-stream"

TITLE = "org.opencontainers.image.title"
FILEPATH = "org.cncf.model.filepath"
ROLE = "kubetune.io/role"

_TOKENIZER_FILES = {
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "tokenizer.model",
    "spiece.model",
    "merges.txt",
    "chat_template.jinja",
    "chat_template.json",
}
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".onnx")
Kind = Literal["adapter", "merged", "quantized"]


class _Wire(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
    )


class BaseModelInfo(_Wire):
    uri: str = Field(min_length=1, description="Base model location, e.g. hf://org/name.")
    revision: str | None = Field(default=None, description="Resolved revision (commit) of the base model.")


class DatasetInfo(_Wire):
    uri: str | None = Field(default=None, description="Where the training data came from.")
    sha256: str = Field(pattern=r"^[a-f0-9]{64}$", description="SHA-256 of the training data file(s).")


class SourceJob(_Wire):
    name: str = Field(min_length=1, description="FineTuneJob name.")
    namespace: str | None = Field(default=None, description="FineTuneJob namespace (absent in local mode).")
    uid: str | None = Field(default=None, description="FineTuneJob UID.")
    generation: int | None = Field(default=None, description="metadata.generation trained.")


class Metric(_Wire):
    name: str = Field(min_length=1, description="Metric name, e.g. loss, rougeL, accuracy.")
    tuned: float = Field(description="Value for the tuned model.")
    base: float | None = Field(default=None, description="Value for the base model.")
    delta: float | None = Field(default=None, description="Improvement of tuned over base.")


class ArtifactConfig(_Wire):
    """Lineage of one artifact: what it was trained from, how, on what, and how well it did."""

    kind: Kind = Field(default="adapter", description="adapter, merged (base + adapter) or quantized.")
    base_model: BaseModelInfo
    method: str = Field(min_length=1, description="Training method: lora, qlora, dora, full, ...")
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    dataset: DatasetInfo | None = None
    seed: int | None = None
    metrics: list[Metric] = Field(default_factory=list)
    source_job: SourceJob | None = None
    trainer_image: str | None = None
    quantization: str | None = Field(default=None, description="Quantization scheme (quantized only).")
    created: str | None = Field(default=None, description="RFC 3339 time; filled in at push when absent.")
    kubetune_version: str = Field(default=kubetune.__version__)

    def to_json(self) -> bytes:
        return json.dumps(self.model_dump(mode="json", exclude_none=True), sort_keys=True).encode()


def make_config(config: ArtifactConfig | Mapping[str, Any]) -> ArtifactConfig:
    """Validate a lineage config given as a model or a (camelCase or snake_case) mapping."""
    if isinstance(config, ArtifactConfig):
        return config
    try:
        return ArtifactConfig.model_validate(dict(config))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        raise errors.InvalidArtifact(
            f"invalid artifact config: {where}: {first['msg']}",
            "see docs/registry.md for the config fields (baseModel.uri and method are required)",
        ) from None


@dataclasses.dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor."""

    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    @classmethod
    def from_json(cls, data: Any, where: str) -> Descriptor:
        try:
            return cls(
                media_type=str(data["mediaType"]),
                digest=str(data["digest"]),
                size=int(data["size"]),
                annotations={str(k): str(v) for k, v in (data.get("annotations") or {}).items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise errors.InvalidArtifact(
                f"malformed descriptor in the manifest of {where}",
                "the artifact was not written by an OCI tool",
            ) from None

    @property
    def filepath(self) -> str | None:
        return self.annotations.get(FILEPATH) or self.annotations.get(TITLE)


@dataclasses.dataclass(frozen=True)
class Manifest:
    """A parsed OCI image manifest (or Docker schema 2 manifest, for copying plain images)."""

    media_type: str
    config: Descriptor
    layers: list[Descriptor]
    annotations: dict[str, str]
    artifact_type: str | None


@dataclasses.dataclass(frozen=True)
class FileLayer:
    """One file of a source directory, hashed, with the layer descriptor it becomes."""

    path: Path
    descriptor: Descriptor


def sha256_file(path: Path, block: int = 4 << 20) -> tuple[str, int]:
    """``(digest, size)`` of a file, read in large blocks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
            size += len(chunk)
    return f"sha256:{digest.hexdigest()}", size


class StreamHasher:
    """SHA-256 of a stream of chunks. For large streams the hashing runs on a helper thread
    (hashlib releases the GIL), so it overlaps the network and disk work of the caller."""

    def __init__(self, expected_size: int, threshold: int = 8 << 20) -> None:
        self._hash = hashlib.sha256()
        self.size = 0
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None
        if expected_size >= threshold:
            self._queue = queue.Queue(maxsize=16)
            self._thread = threading.Thread(target=self._work, name="kubetune-sha256", daemon=True)
            self._thread.start()

    def _work(self) -> None:
        assert self._queue is not None
        while (chunk := self._queue.get()) is not None:
            self._hash.update(chunk)

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self._queue is None:
            self._hash.update(chunk)
        else:
            self._queue.put(chunk)

    def close(self) -> None:
        if self._thread is not None and self._queue is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def digest(self) -> str:
        self.close()
        return f"sha256:{self._hash.hexdigest()}"


def sha256_bytes(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def classify(relpath: str) -> tuple[str, str]:
    """``(media type, kubetune.io/role)`` for a file of a trained output directory."""
    name = posixpath.basename(relpath)
    lower = name.lower()
    if lower.startswith("adapter_model") and lower.endswith(_WEIGHT_SUFFIXES):
        return WEIGHT_MEDIA_TYPE, "adapter-weights"
    if lower.endswith(_WEIGHT_SUFFIXES):
        return WEIGHT_MEDIA_TYPE, "weights"
    if lower == "adapter_config.json":
        return WEIGHT_CONFIG_MEDIA_TYPE, "adapter-config"
    if lower in _TOKENIZER_FILES or lower.startswith("vocab."):
        return WEIGHT_CONFIG_MEDIA_TYPE, "tokenizer"
    if lower.endswith(".json"):
        return WEIGHT_CONFIG_MEDIA_TYPE, "model-config"
    if lower == "readme.md":
        return DOC_MEDIA_TYPE, "model-card"
    if lower.startswith(("license", "licence", "notice")):
        return DOC_MEDIA_TYPE, "license"
    if lower.endswith((".md", ".txt", ".png")):  # .png: the model card's pictures
        return DOC_MEDIA_TYPE, "doc"
    return OTHER_MEDIA_TYPE, "other"


@dataclasses.dataclass(frozen=True)
class SourceFile:
    """One file of a source directory, not yet hashed: where it is, its layer name and type."""

    path: Path
    relpath: str
    size: int
    media_type: str
    role: str

    def descriptor(self, digest: str, size: int | None = None) -> Descriptor:
        annotations = {TITLE: self.relpath, FILEPATH: self.relpath, ROLE: self.role}
        return Descriptor(self.media_type, digest, self.size if size is None else size, annotations)

    def hashed(self) -> FileLayer:
        digest, size = sha256_file(self.path)
        return FileLayer(self.path, self.descriptor(digest, size))


def list_directory(src_dir: Path) -> list[SourceFile]:
    """Every regular file under ``src_dir`` (hidden ones skipped), sorted by layer path so the
    manifest is reproducible. Nothing is read: push decides which files to hash up front."""
    if not src_dir.is_dir():
        raise errors.InvalidArtifact(
            f"source {src_dir} is not a directory", "pass the directory holding the trained files"
        )
    found: list[SourceFile] = []
    for root, dirs, files in os.walk(src_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(root) / name
            if not path.is_file():
                continue
            relpath = path.relative_to(src_dir).as_posix()
            media_type, role = classify(relpath)
            found.append(SourceFile(path, relpath, path.stat().st_size, media_type, role))
    if not found:
        raise errors.InvalidArtifact(
            f"source directory {src_dir} holds no files", "point at the directory the trainer wrote"
        )
    found.sort(key=lambda file: file.relpath)
    return found


def describe_directory(src_dir: Path) -> list[FileLayer]:
    """Hash every regular file under ``src_dir`` (in :func:`list_directory`'s order)."""
    return [file.hashed() for file in list_directory(src_dir)]


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def manifest_annotations(config: ArtifactConfig, title: str | None = None) -> dict[str, str]:
    """Standard ``org.opencontainers.image.*`` plus ``kubetune.io/*`` lineage annotations."""
    out = {
        "org.opencontainers.image.created": config.created or now_rfc3339(),
        "org.opencontainers.image.vendor": "kubetune",
        "kubetune.io/kind": config.kind,
        "kubetune.io/base-model": config.base_model.uri,
        "kubetune.io/method": config.method,
        "kubetune.io/version": config.kubetune_version,
    }
    if title:
        out["org.opencontainers.image.title"] = title
    if config.base_model.revision:
        out["kubetune.io/base-model-revision"] = config.base_model.revision
    if config.base_model.uri.startswith("oci://"):
        out["org.opencontainers.image.base.name"] = config.base_model.uri
    if config.dataset:
        out["kubetune.io/dataset-sha256"] = config.dataset.sha256
    if config.seed is not None:
        out["kubetune.io/seed"] = str(config.seed)
    if config.source_job:
        job = config.source_job
        out["kubetune.io/source-job"] = f"{job.namespace}/{job.name}" if job.namespace else job.name
    if config.quantization:
        out["kubetune.io/quantization"] = config.quantization
    return out


def build_manifest(
    config: Descriptor, layers: list[Descriptor], annotations: Mapping[str, str], artifact_type: str | None
) -> bytes:
    """Serialize an OCI image manifest; the bytes are what gets hashed and pushed."""
    body: dict[str, Any] = {"schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE}
    if artifact_type:
        body["artifactType"] = artifact_type
    body["config"] = config.to_json()
    body["layers"] = [layer.to_json() for layer in layers]
    if annotations:
        body["annotations"] = dict(annotations)
    return json.dumps(body, indent=2).encode()


def parse_manifest(data: bytes, where: str) -> Manifest:
    """Parse manifest bytes; ``where`` (a reference) names the artifact in errors."""
    try:
        body = json.loads(data)
    except ValueError:
        raise errors.InvalidArtifact(f"the manifest of {where} is not JSON", "re-push the artifact") from None
    if not isinstance(body, dict):
        raise errors.InvalidArtifact(f"the manifest of {where} is not a JSON object", "re-push the artifact")
    media_type = str(body.get("mediaType") or MANIFEST_MEDIA_TYPE)
    if media_type == INDEX_MEDIA_TYPE or "manifests" in body:
        raise errors.Unsupported(
            f"{where} is an image index (multi-platform image), not a single artifact",
            "point at one platform's manifest by digest",
        )
    if body.get("schemaVersion") != 2 or media_type not in (MANIFEST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE):
        raise errors.Unsupported(
            f"{where} has manifest type {media_type!r}", "only OCI image manifests (schema 2) are supported"
        )
    raw_layers = body.get("layers")
    if not isinstance(raw_layers, list):
        raise errors.InvalidArtifact(f"the manifest of {where} has no layers list", "re-push the artifact")
    annotations = body.get("annotations") or {}
    return Manifest(
        media_type=media_type,
        config=Descriptor.from_json(body.get("config"), where),
        layers=[Descriptor.from_json(layer, where) for layer in raw_layers],
        annotations={str(k): str(v) for k, v in annotations.items()},
        artifact_type=body.get("artifactType"),
    )


def safe_relpath(path: str | None, where: str) -> str:
    """Check a layer's file path before writing it: relative, no ``..``, no empty parts."""
    if not path:
        raise errors.InvalidArtifact(
            f"a layer of {where} has no {FILEPATH} or {TITLE} annotation",
            "only artifacts with named file layers can be pulled into a directory",
        )
    parts = path.split("/")
    if path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
        raise errors.InvalidArtifact(
            f"a layer of {where} has the unsafe file path {path!r}", "refusing to write outside the target"
        )
    return path
