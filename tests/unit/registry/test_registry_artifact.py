"""The artifact format: layers per file, lineage config, manifest building and parsing (pure)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from kubetune.registry import artifact, errors

LINEAGE = {
    "baseModel": {"uri": "hf://org/tiny-llama", "revision": "0123abc"},
    "method": "lora",
    "hyperparameters": {"learningRate": 0.0002, "epochs": 3},
    "dataset": {"uri": "file://data.jsonl", "sha256": "cd" * 32},
    "seed": 42,
    "metrics": [{"name": "loss", "tuned": 1.2, "base": 2.5, "delta": 1.3}],
    "sourceJob": {"namespace": "ml", "name": "support-bot", "uid": "u-1", "generation": 2},
}


def _adapter_dir(tmp_path: Path) -> Path:
    src = tmp_path / "adapter"
    (src / "tokenizer").mkdir(parents=True)
    (src / "adapter_model.safetensors").write_bytes(b"\x00weights" * 100)
    (src / "adapter_config.json").write_text('{"r": 8}')
    (src / "README.md").write_text("# card\n")
    (src / "tokenizer" / "tokenizer.json").write_text("{}")
    (src / ".cache").mkdir()
    (src / ".cache" / "junk").write_text("x")
    return src


def test_each_file_becomes_one_layer_sorted_with_its_path_digest_and_modelpack_type(tmp_path: Path) -> None:
    layers = artifact.describe_directory(_adapter_dir(tmp_path))
    paths = [layer.descriptor.annotations[artifact.FILEPATH] for layer in layers]
    assert paths == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
        "tokenizer/tokenizer.json",
    ]
    weights = layers[2].descriptor
    assert weights.media_type == "application/vnd.cncf.model.weight.v1.raw"
    assert weights.annotations[artifact.TITLE] == "adapter_model.safetensors"
    assert weights.annotations[artifact.ROLE] == "adapter-weights"
    assert weights.digest == "sha256:" + hashlib.sha256(b"\x00weights" * 100).hexdigest()
    assert weights.size == 800


@pytest.mark.parametrize(
    ("name", "media_type", "role"),
    [
        ("adapter_config.json", artifact.WEIGHT_CONFIG_MEDIA_TYPE, "adapter-config"),
        ("model-00001-of-00002.safetensors", artifact.WEIGHT_MEDIA_TYPE, "weights"),
        ("tokenizer_config.json", artifact.WEIGHT_CONFIG_MEDIA_TYPE, "tokenizer"),
        ("vocab.txt", artifact.WEIGHT_CONFIG_MEDIA_TYPE, "tokenizer"),
        ("config.json", artifact.WEIGHT_CONFIG_MEDIA_TYPE, "model-config"),
        ("README.md", artifact.DOC_MEDIA_TYPE, "model-card"),
        ("LICENSE", artifact.DOC_MEDIA_TYPE, "license"),
        ("training_log.csv", artifact.OTHER_MEDIA_TYPE, "other"),
    ],
)
def test_files_are_classified_by_name(name: str, media_type: str, role: str) -> None:
    assert artifact.classify(name) == (media_type, role)


def test_an_empty_source_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidArtifact, match="holds no files"):
        artifact.describe_directory(tmp_path)


def test_a_missing_source_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidArtifact, match="is not a directory"):
        artifact.describe_directory(tmp_path / "nope")


def test_lineage_config_round_trips_camel_case_and_rejects_typos() -> None:
    config = artifact.make_config(LINEAGE)
    assert config.base_model.revision == "0123abc"
    wire = json.loads(config.to_json())
    assert wire["sourceJob"]["name"] == "support-bot"
    assert wire["kubetuneVersion"]
    with pytest.raises(errors.InvalidArtifact, match="baseModell"):
        artifact.make_config({**LINEAGE, "baseModell": {}})


def test_lineage_config_needs_a_base_model_and_a_method() -> None:
    with pytest.raises(errors.InvalidArtifact, match="method"):
        artifact.make_config({"baseModel": {"uri": "hf://a/b"}})


def test_dataset_digest_must_be_a_sha256() -> None:
    with pytest.raises(errors.InvalidArtifact, match="dataset"):
        artifact.make_config({**LINEAGE, "dataset": {"sha256": "not-a-digest"}})


def test_manifest_carries_lineage_annotations_and_parses_back(tmp_path: Path) -> None:
    config = artifact.make_config({**LINEAGE, "created": "2026-01-02T03:04:05Z"})
    layers = [layer.descriptor for layer in artifact.describe_directory(_adapter_dir(tmp_path))]
    config_bytes = config.to_json()
    config_desc = artifact.Descriptor(
        artifact.CONFIG_MEDIA_TYPE, artifact.sha256_bytes(config_bytes), len(config_bytes)
    )
    annotations = artifact.manifest_annotations(config, title="team/bot")
    data = artifact.build_manifest(config_desc, layers, annotations, artifact.ARTIFACT_TYPES["adapter"])

    parsed = artifact.parse_manifest(data, "test")
    assert parsed.media_type == artifact.MANIFEST_MEDIA_TYPE
    assert parsed.artifact_type == "application/vnd.kubetune.adapter.v1"
    assert parsed.config == config_desc
    assert parsed.layers == layers
    assert parsed.annotations["org.opencontainers.image.created"] == "2026-01-02T03:04:05Z"
    assert parsed.annotations["kubetune.io/base-model"] == "hf://org/tiny-llama"
    assert parsed.annotations["kubetune.io/base-model-revision"] == "0123abc"
    assert parsed.annotations["kubetune.io/dataset-sha256"] == "cd" * 32
    assert parsed.annotations["kubetune.io/source-job"] == "ml/support-bot"
    assert json.loads(data)["schemaVersion"] == 2


def test_image_indexes_are_refused_with_a_hint() -> None:
    index = json.dumps({"schemaVersion": 2, "mediaType": artifact.INDEX_MEDIA_TYPE, "manifests": []}).encode()
    with pytest.raises(errors.Unsupported, match="image index"):
        artifact.parse_manifest(index, "oci://h/r:t")


def test_garbage_manifest_is_reported_with_the_reference() -> None:
    with pytest.raises(errors.InvalidArtifact, match="oci://h/r:t"):
        artifact.parse_manifest(b"<html>", "oci://h/r:t")


@pytest.mark.parametrize("path", ["../etc/passwd", "/abs", "a/../../b", "a//b", "", None, "a\\b"])
def test_unsafe_layer_paths_are_refused(path: str | None) -> None:
    with pytest.raises(errors.InvalidArtifact):
        artifact.safe_relpath(path, "ref")


def test_nested_relative_layer_paths_are_allowed() -> None:
    assert artifact.safe_relpath("tokenizer/tokenizer.json", "ref") == "tokenizer/tokenizer.json"


def test_listing_a_directory_reads_no_file_and_hashing_it_matches_describe_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _adapter_dir(tmp_path)
    described = artifact.describe_directory(src)

    def no_reading(path: Path, block: int = 0) -> tuple[str, int]:
        raise AssertionError(f"{path} was read")

    monkeypatch.setattr(artifact, "sha256_file", no_reading)
    listed = artifact.list_directory(src)
    assert [(f.relpath, f.size) for f in listed] == [
        (d.descriptor.annotations[artifact.FILEPATH], d.descriptor.size) for d in described
    ]
    monkeypatch.undo()
    assert [f.hashed().descriptor for f in listed] == [d.descriptor for d in described]
    assert listed[0].descriptor("sha256:" + "0" * 64) == artifact.Descriptor(
        listed[0].media_type, "sha256:" + "0" * 64, listed[0].size, described[0].descriptor.annotations
    )
