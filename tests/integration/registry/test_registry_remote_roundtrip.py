"""Push, pull, resolve, list, delete and copy against a real CNCF distribution registry."""

from __future__ import annotations

import filecmp
import hashlib
import logging
import os
from pathlib import Path

import pytest

from kubetune import registry
from kubetune.registry import artifact, devserver, errors, progress

LINEAGE = {
    "baseModel": {"uri": "hf://org/tiny-llama", "revision": "0123abc"},
    "method": "lora",
    "hyperparameters": {"learningRate": 0.0002},
    "dataset": {"sha256": "ab" * 32},
    "seed": 42,
    "metrics": [{"name": "loss", "tuned": 1.1, "base": 2.0}],
    "sourceJob": {"namespace": "ml", "name": "support-bot"},
}
PLAIN = registry.Options(insecure=True)
QUIET = progress.Silent()


def _same_tree(a: Path, b: Path) -> bool:
    left = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    right = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return left == right and all(filecmp.cmp(a / p, b / p, shallow=False) for p in left)


def test_push_then_pull_is_byte_identical(
    dev_registry: devserver.DevRegistry, adapter_dir: Path, tmp_path: Path
) -> None:
    ref = f"oci://{dev_registry.host}/team/support-bot:v1"
    pinned = registry.push_directory(adapter_dir, ref, LINEAGE, options=PLAIN, reporter=QUIET)
    assert pinned.startswith(f"oci://{dev_registry.host}/team/support-bot@sha256:")

    assert registry.pull(pinned, tmp_path / "by-digest", options=PLAIN, reporter=QUIET) == pinned
    assert registry.pull(ref, tmp_path / "by-tag", options=PLAIN, reporter=QUIET) == pinned
    assert _same_tree(adapter_dir, tmp_path / "by-digest")
    assert _same_tree(adapter_dir, tmp_path / "by-tag")


def test_large_blobs_go_up_in_chunks_and_come_back_intact(
    dev_registry: devserver.DevRegistry, tmp_path: Path
) -> None:
    src = tmp_path / "big"
    src.mkdir()
    (src / "model.safetensors").write_bytes(os.urandom((5 << 20) + 12345))
    chunked = registry.Options(insecure=True, chunk_size=1 << 20)
    ref = f"oci://{dev_registry.host}/team/big:v1"
    registry.push_directory(src, ref, {**LINEAGE, "kind": "merged"}, options=chunked, reporter=QUIET)
    registry.pull(ref, tmp_path / "out", options=PLAIN, reporter=QUIET)
    assert _same_tree(src, tmp_path / "out")
    assert (
        registry.show(ref, options=PLAIN).manifest["artifactType"]
        == "application/vnd.kubetune.model.merged.v1"
    )


def test_tag_resolves_to_the_pushed_digest_and_moves_on_re_push(
    dev_registry: devserver.DevRegistry, adapter_dir: Path
) -> None:
    ref = f"oci://{dev_registry.host}/team/bot:stable"
    first = registry.push_directory(adapter_dir, ref, LINEAGE, options=PLAIN, reporter=QUIET)
    assert registry.resolve(ref, options=PLAIN) == first.rpartition("@")[2]
    second = registry.push_directory(adapter_dir, ref, {**LINEAGE, "seed": 43}, options=PLAIN, reporter=QUIET)
    assert second != first
    assert registry.resolve(ref, options=PLAIN) == second.rpartition("@")[2]
    # The old artifact is still there by digest: tags move, digests are forever.
    old = registry.show(first, options=PLAIN).config
    assert old is not None and old["seed"] == 42


def test_unknown_tag_and_repository_are_not_found_errors(
    dev_registry: devserver.DevRegistry, adapter_dir: Path
) -> None:
    registry.push_directory(
        adapter_dir, f"oci://{dev_registry.host}/team/bot:v1", LINEAGE, options=PLAIN, reporter=QUIET
    )
    with pytest.raises(errors.NotFound, match=rf"registry {dev_registry.host} answered 404 MANIFEST_UNKNOWN"):
        registry.resolve(f"oci://{dev_registry.host}/team/bot:v9", options=PLAIN)
    with pytest.raises(errors.NotFound, match="NAME_UNKNOWN"):
        registry.list_tags(f"oci://{dev_registry.host}/team/nobody", options=PLAIN)


def test_listing_shows_repositories_and_tags(dev_registry: devserver.DevRegistry, adapter_dir: Path) -> None:
    for ref in ("team/a:v1", "team/a:v2", "team/b:v1", "solo:latest"):
        registry.push_directory(
            adapter_dir, f"oci://{dev_registry.host}/{ref}", LINEAGE, options=PLAIN, reporter=QUIET
        )
    assert registry.list_repositories(f"oci://{dev_registry.host}", options=PLAIN) == [
        "solo",
        "team/a",
        "team/b",
    ]
    assert registry.list_tags(f"oci://{dev_registry.host}/team/a", options=PLAIN) == ["v1", "v2"]


def test_show_returns_lineage_and_manifest_annotations(
    dev_registry: devserver.DevRegistry, adapter_dir: Path
) -> None:
    ref = f"oci://{dev_registry.host}/team/bot:v1"
    registry.push_directory(adapter_dir, ref, LINEAGE, options=PLAIN, reporter=QUIET)
    details = registry.show(ref, options=PLAIN)
    assert details.config is not None
    assert details.config["baseModel"] == LINEAGE["baseModel"]
    assert details.config["sourceJob"] == LINEAGE["sourceJob"]
    annotations = details.manifest["annotations"]
    assert annotations["kubetune.io/base-model"] == "hf://org/tiny-llama"
    assert annotations["org.opencontainers.image.version"] == "v1"
    files = {layer["annotations"]["org.cncf.model.filepath"] for layer in details.manifest["layers"]}
    assert files == {
        "adapter_model.safetensors",
        "adapter_config.json",
        "README.md",
        "tokenizer/tokenizer.json",
    }


def test_deleting_a_tag_removes_it(
    dev_registry: devserver.DevRegistry, adapter_dir: Path, tmp_path: Path
) -> None:
    ref = f"oci://{dev_registry.host}/team/bot:v1"
    registry.push_directory(adapter_dir, ref, LINEAGE, options=PLAIN, reporter=QUIET)
    registry.push_directory(
        adapter_dir,
        f"oci://{dev_registry.host}/team/bot:v2",
        {**LINEAGE, "seed": 1},
        options=PLAIN,
        reporter=QUIET,
    )
    registry.delete(ref, options=PLAIN)
    assert registry.list_tags(f"oci://{dev_registry.host}/team/bot", options=PLAIN) == ["v2"]
    with pytest.raises(errors.NotFound):
        registry.pull(ref, tmp_path / "out", options=PLAIN, reporter=QUIET)
    assert not (tmp_path / "out").exists()


def test_deleting_a_tag_that_shares_its_manifest_is_refused_on_registries_without_tag_deletion(
    dev_registry: devserver.DevRegistry, adapter_dir: Path
) -> None:
    base = f"oci://{dev_registry.host}/team/bot"
    registry.push_directory(
        adapter_dir,
        f"{base}:v1",
        {**LINEAGE, "created": "2026-01-01T00:00:00Z"},
        options=PLAIN,
        reporter=QUIET,
    )
    registry.copy(f"{base}:v1", f"{base}:stable", options=PLAIN, reporter=QUIET)
    with pytest.raises(errors.Unsupported, match="stable"):
        registry.delete(f"{base}:v1", options=PLAIN)
    assert registry.list_tags(base, options=PLAIN) == ["stable", "v1"]


def test_copy_between_registries_and_layouts_keeps_the_digest(
    dev_registry: devserver.DevRegistry, registry_binary: str, adapter_dir: Path, tmp_path: Path
) -> None:
    src = f"oci://{dev_registry.host}/team/bot:v1"
    pinned = registry.push_directory(adapter_dir, src, LINEAGE, options=PLAIN, reporter=QUIET)
    digest = pinned.rpartition("@")[2]
    layout_ref = f"{tmp_path}/layout:v1"
    assert registry.copy(src, layout_ref, options=PLAIN, reporter=QUIET) == f"{tmp_path}/layout@{digest}"
    with devserver.DevRegistry(tmp_path / "second") as second:
        dst = f"oci://{second.host}/mirror/bot"
        assert registry.copy(layout_ref, dst, options=PLAIN, reporter=QUIET).endswith(f"@{digest}")
        assert registry.resolve(f"{dst}:v1", options=PLAIN) == digest
        other = f"oci://{second.host}/mirror/again:v1"
        assert registry.copy(f"{dst}:v1", other, options=PLAIN, reporter=QUIET).endswith(f"@{digest}")
        registry.pull(other, tmp_path / "out", options=PLAIN, reporter=QUIET)
    assert _same_tree(adapter_dir, tmp_path / "out")


def test_unreachable_registry_error_names_it_and_suggests_what_to_check(
    tmp_path: Path, adapter_dir: Path
) -> None:
    port = devserver.free_port()
    with pytest.raises(errors.Unreachable) as info:
        registry.push_directory(adapter_dir, f"oci://127.0.0.1:{port}/team/bot:v1", LINEAGE, options=PLAIN)
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "connection refused" in str(info.value)


def test_large_files_are_hashed_while_uploading_and_small_ones_present_are_skipped(
    dev_registry: devserver.DevRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    src = tmp_path / "big"
    src.mkdir()
    weights = os.urandom((9 << 20) + 7)
    (src / "adapter_model.safetensors").write_bytes(weights)
    (src / "adapter_config.json").write_text('{"r": 8}')
    hashed_first: list[str] = []
    real_sha256_file = artifact.sha256_file

    def spy(path: Path, block: int = 4 << 20) -> tuple[str, int]:
        hashed_first.append(path.name)
        return real_sha256_file(path, block)

    monkeypatch.setattr(artifact, "sha256_file", spy)
    chunked = registry.Options(insecure=True, chunk_size=2 << 20)
    ref = f"oci://{dev_registry.host}/team/big:v1"
    caplog.set_level(logging.INFO, logger="kubetune.registry.transfer")

    registry.push_directory(src, ref, LINEAGE, options=chunked, reporter=QUIET)
    registry.push_directory(src, ref, LINEAGE, options=chunked, reporter=QUIET)

    assert hashed_first == ["adapter_config.json", "adapter_config.json"]
    skipped = [r.__dict__["fields"]["blob"] for r in caplog.records if r.getMessage() == "blob exists"]
    assert skipped == ["adapter_config.json"]
    layers = registry.show(ref, options=PLAIN).manifest["layers"]
    big = next(layer for layer in layers if layer["size"] == len(weights))
    assert big["digest"] == "sha256:" + hashlib.sha256(weights).hexdigest()
    registry.pull(ref, tmp_path / "out", options=PLAIN, reporter=QUIET)
    assert _same_tree(src, tmp_path / "out")
