"""The local registry: push, pull, copy, tag and delete against OCI image layouts on disk."""

from __future__ import annotations

import contextlib
import filecmp
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubetune import registry
from kubetune.registry import errors, layout, progress, reference, store

LINEAGE = {"baseModel": {"uri": "hf://org/tiny"}, "method": "lora", "seed": 7}
QUIET = progress.Silent()


@pytest.fixture
def src(tmp_path: Path) -> Path:
    out = tmp_path / "src"
    (out / "tokenizer").mkdir(parents=True)
    (out / "adapter_model.safetensors").write_bytes(bytes(range(256)) * 4096)
    (out / "adapter_config.json").write_text('{"r": 8}')
    (out / "tokenizer" / "tokenizer.json").write_text('{"v": 1}')
    return out


def _same_tree(a: Path, b: Path) -> bool:
    compared = filecmp.dircmp(a, b)
    if compared.left_only or compared.right_only or compared.diff_files or compared.funny_files:
        return False
    _, mismatch, errors_ = filecmp.cmpfiles(a, b, compared.common_files, shallow=False)
    return not mismatch and not errors_ and all(_same_tree(a / d, b / d) for d in compared.common_dirs)


def test_push_writes_a_standard_layout_and_returns_a_digest_pinned_reference(
    src: Path, tmp_path: Path
) -> None:
    pinned = registry.push_directory(src, f"{tmp_path}/layout:v1", LINEAGE, reporter=QUIET)
    digest = pinned.rpartition("@")[2]
    assert pinned == f"{tmp_path}/layout@{digest}"
    assert json.loads((tmp_path / "layout" / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((tmp_path / "layout" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == digest
    assert index["manifests"][0]["annotations"] == {"org.opencontainers.image.ref.name": "v1"}
    assert (tmp_path / "layout" / "blobs" / "sha256" / digest.removeprefix("sha256:")).is_file()
    assert not list((tmp_path / "layout").glob(".kubetune-partial-*"))


def test_pull_round_trip_is_byte_identical(src: Path, tmp_path: Path) -> None:
    registry.push_directory(src, f"{tmp_path}/layout:v1", LINEAGE, reporter=QUIET)
    registry.pull(f"{tmp_path}/layout:v1", tmp_path / "out", reporter=QUIET)
    assert _same_tree(src, tmp_path / "out")


def test_pushing_the_same_tag_again_moves_it_and_resolve_follows(src: Path, tmp_path: Path) -> None:
    first = registry.push_directory(src, f"{tmp_path}/layout:v1", LINEAGE, reporter=QUIET)
    (src / "adapter_config.json").write_text('{"r": 16}')
    second = registry.push_directory(src, f"{tmp_path}/layout:v1", LINEAGE, reporter=QUIET)
    assert first != second
    assert registry.resolve(f"{tmp_path}/layout:v1") == second.rpartition("@")[2]
    assert registry.list_tags(f"{tmp_path}/layout") == ["v1"]


def test_show_returns_manifest_and_lineage(src: Path, tmp_path: Path) -> None:
    registry.push_directory(src, f"{tmp_path}/layout:v1", LINEAGE, reporter=QUIET)
    details = registry.show(f"{tmp_path}/layout:v1")
    assert details.config is not None
    assert details.config["baseModel"] == {"uri": "hf://org/tiny"}
    assert details.config["seed"] == 7
    assert details.manifest["artifactType"] == "application/vnd.kubetune.adapter.v1"
    assert details.size == sum(p.stat().st_size for p in src.rglob("*") if p.is_file())


def test_deleting_one_tag_keeps_blobs_another_tag_still_uses(src: Path, tmp_path: Path) -> None:
    ref = f"{tmp_path}/layout"
    registry.push_directory(src, f"{ref}:v1", LINEAGE, reporter=QUIET)
    registry.push_directory(src, f"{ref}:v2", {**LINEAGE, "seed": 8}, reporter=QUIET)
    registry.delete(f"{ref}:v1")
    assert registry.list_tags(ref) == ["v2"]
    registry.pull(f"{ref}:v2", tmp_path / "out", reporter=QUIET)
    assert _same_tree(src, tmp_path / "out")
    registry.delete(f"{ref}:v2")
    assert list((tmp_path / "layout" / "blobs" / "sha256").iterdir()) == []


def test_unknown_tag_is_a_not_found_error_naming_the_layout(src: Path, tmp_path: Path) -> None:
    registry.push_directory(src, f"{tmp_path}/layout:v1", LINEAGE, reporter=QUIET)
    with pytest.raises(errors.NotFound, match=r"tag 'v9' not found in layout .*layout"):
        registry.pull(f"{tmp_path}/layout:v9", tmp_path / "out", reporter=QUIET)
    assert not (tmp_path / "out").exists()


def test_a_directory_that_is_not_a_layout_is_reported(tmp_path: Path) -> None:
    with pytest.raises(errors.NotFound, match="not an OCI image layout"):
        registry.resolve(f"{tmp_path}:v1")


def test_corrupted_blob_fails_the_pull_and_leaves_the_target_as_it_was(src: Path, tmp_path: Path) -> None:
    registry.push_directory(src, f"{tmp_path}/layout:v1", LINEAGE, reporter=QUIET)
    details = registry.show(f"{tmp_path}/layout:v1")
    weights = next(x for x in details.manifest["layers"] if x["size"] > 1000)
    blob = layout.Layout(tmp_path / "layout").blob_path(weights["digest"])
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))

    with pytest.raises(errors.IntegrityError, match=r"adapter_model\.safetensors .* is corrupted"):
        registry.pull(f"{tmp_path}/layout:v1", tmp_path / "new", reporter=QUIET)
    assert not (tmp_path / "new").exists()

    (tmp_path / "empty").mkdir()
    with pytest.raises(errors.IntegrityError):
        registry.pull(f"{tmp_path}/layout:v1", tmp_path / "empty", reporter=QUIET)
    assert list((tmp_path / "empty").iterdir()) == []


def test_pull_refuses_a_non_empty_target(src: Path, tmp_path: Path) -> None:
    registry.push_directory(src, f"{tmp_path}/layout:v1", LINEAGE, reporter=QUIET)
    with pytest.raises(errors.InvalidArtifact, match="not an empty directory"):
        registry.pull(f"{tmp_path}/layout:v1", src, reporter=QUIET)


def test_copy_between_layouts_keeps_the_digest_and_the_tag(src: Path, tmp_path: Path) -> None:
    pinned = registry.push_directory(src, f"{tmp_path}/a:v1", LINEAGE, reporter=QUIET)
    copied = registry.copy(f"{tmp_path}/a:v1", f"{tmp_path}/b", reporter=QUIET)
    assert copied.rpartition("@")[2] == pinned.rpartition("@")[2]
    assert registry.list_tags(f"{tmp_path}/b") == ["v1"]


def test_push_to_a_digest_is_refused(src: Path, tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidReference, match="pinned to a digest"):
        registry.push_directory(src, f"{tmp_path}/a@sha256:{'0' * 64}", LINEAGE, reporter=QUIET)


def test_local_registry_lists_one_repository_per_layout(
    src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBETUNE_REGISTRY_DIR", str(tmp_path / "reg"))
    for repo in ("team/a", "team/b", "solo"):
        registry.push_directory(src, str(registry.reference.local(repo, "v1")), LINEAGE, reporter=QUIET)
    assert registry.list_repositories() == ["solo", "team/a", "team/b"]


def test_invalid_lineage_is_refused_before_anything_is_written(src: Path, tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidArtifact, match="method"):
        registry.push_directory(src, f"{tmp_path}/layout:v1", {"baseModel": {"uri": "x"}}, reporter=QUIET)
    assert not (tmp_path / "layout").exists()


class _FailHalfway:
    """A reporter that aborts a push once half of a large blob has been written."""

    @contextlib.contextmanager
    def blob(self, name: str, total: int) -> Iterator[progress.Advance]:
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            if done >= total // 2:
                raise KeyboardInterrupt

        yield advance


def test_push_interrupted_mid_blob_leaves_no_tag_and_no_partial_blob(src: Path, tmp_path: Path) -> None:
    (src / "adapter_model.safetensors").write_bytes(b"\x01" * (12 << 20))
    old = registry.push_directory(src, f"{tmp_path}/layout:v1", LINEAGE, reporter=QUIET)
    (src / "adapter_model.safetensors").write_bytes(b"\x02" * (12 << 20))
    with pytest.raises(KeyboardInterrupt):
        registry.push_directory(src, f"{tmp_path}/layout:v1", LINEAGE, reporter=_FailHalfway())
    with pytest.raises(KeyboardInterrupt):
        registry.push_directory(src, f"{tmp_path}/layout:v2", LINEAGE, reporter=_FailHalfway())
    assert registry.list_tags(f"{tmp_path}/layout") == ["v1"]
    assert registry.resolve(f"{tmp_path}/layout:v1") == old.rpartition("@")[2]
    assert not list((tmp_path / "layout").glob(".kubetune-partial-*"))
    blob_sizes = [p.stat().st_size for p in (tmp_path / "layout" / "blobs" / "sha256").iterdir()]
    assert blob_sizes.count(12 << 20) == 1  # only the old weights; no half-written new ones


def test_a_manifest_whose_blobs_are_missing_cannot_be_tagged(src: Path, tmp_path: Path) -> None:
    registry.push_directory(src, f"{tmp_path}/a:v1", LINEAGE, reporter=QUIET)
    data = layout.Layout(tmp_path / "a").read_blob(registry.resolve(f"{tmp_path}/a:v1"))
    target = store.LayoutStore(reference.LayoutRef(tmp_path / "b", "v1"))
    with pytest.raises(errors.IntegrityError, match="is missing from the layout"):
        target.put_manifest(data, "application/vnd.oci.image.manifest.v1+json", "v1", None)
