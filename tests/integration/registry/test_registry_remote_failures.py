"""What is left behind when things go wrong: a push killed mid-blob, a blob corrupted at rest."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubetune import registry
from kubetune.registry import devserver, errors, progress

LINEAGE = {"baseModel": {"uri": "hf://org/tiny"}, "method": "lora"}
PLAIN = registry.Options(insecure=True)
QUIET = progress.Silent()

# Pushes with 4 MiB chunks and SIGKILLs its own process once half of a large blob has been read
# for sending: an abrupt death in the middle of a chunked blob upload.
KILL_HALFWAY = """
import contextlib, os, signal, sys
from kubetune import registry

class KillHalfway:
    @contextlib.contextmanager
    def blob(self, name, total):
        sent = 0
        def advance(n):
            nonlocal sent
            sent += n
            if total > (8 << 20) and sent >= total // 2:
                os.kill(os.getpid(), signal.SIGKILL)
        yield advance

registry.push_directory(
    sys.argv[1], sys.argv[2], {"baseModel": {"uri": "hf://org/tiny"}, "method": "lora"},
    options=registry.Options(insecure=True, chunk_size=4 << 20), reporter=KillHalfway(),
)
"""


def _killed_push(src: Path, ref: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", KILL_HALFWAY, str(src), ref], capture_output=True, timeout=300
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]


def _uploads_in_progress(server: devserver.DevRegistry, repo: str) -> list[Path]:
    uploads = server.storage / "docker/registry/v2/repositories" / repo / "_uploads"
    return [p for p in uploads.glob("*/data") if p.stat().st_size > 0] if uploads.is_dir() else []


def test_push_killed_mid_blob_leaves_no_tag_and_a_retry_completes(
    dev_registry: devserver.DevRegistry, tmp_path: Path
) -> None:
    src = tmp_path / "big"
    src.mkdir()
    (src / "adapter_model.safetensors").write_bytes(os.urandom(24 << 20))
    (src / "adapter_config.json").write_text('{"r": 8}')
    ref = f"oci://{dev_registry.host}/team/bot:v1"

    _killed_push(src, ref)

    partial = _uploads_in_progress(dev_registry, "team/bot")
    assert partial, "the kill should have happened while a blob upload was in progress"
    assert all(p.stat().st_size < 24 << 20 for p in partial)
    with pytest.raises(errors.NotFound):
        registry.resolve(ref, options=PLAIN)

    pinned = registry.push_directory(src, ref, LINEAGE, options=PLAIN, reporter=QUIET)
    assert registry.resolve(ref, options=PLAIN) == pinned.rpartition("@")[2]
    registry.pull(ref, tmp_path / "out", options=PLAIN, reporter=QUIET)
    assert (tmp_path / "out" / "adapter_model.safetensors").read_bytes() == (
        src / "adapter_model.safetensors"
    ).read_bytes()


def test_push_killed_mid_blob_leaves_an_existing_tag_on_the_old_artifact(
    dev_registry: devserver.DevRegistry, tmp_path: Path
) -> None:
    src = tmp_path / "big"
    src.mkdir()
    (src / "adapter_model.safetensors").write_bytes(os.urandom(20 << 20))
    ref = f"oci://{dev_registry.host}/team/bot:stable"
    old = registry.push_directory(src, ref, LINEAGE, options=PLAIN, reporter=QUIET)

    (src / "adapter_model.safetensors").write_bytes(os.urandom(20 << 20))
    _killed_push(src, ref)

    assert registry.resolve(ref, options=PLAIN) == old.rpartition("@")[2]
    assert registry.list_tags(f"oci://{dev_registry.host}/team/bot", options=PLAIN) == ["stable"]


def _corrupt_blob(server: devserver.DevRegistry, digest: str) -> None:
    hexpart = digest.removeprefix("sha256:")
    data_file = server.storage / "docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"
    data = bytearray(data_file.read_bytes())
    data[len(data) // 3] ^= 0x5A
    data_file.write_bytes(bytes(data))


def test_blob_corrupted_in_registry_storage_is_detected_and_nothing_is_left(
    dev_registry: devserver.DevRegistry, adapter_dir: Path, tmp_path: Path
) -> None:
    ref = f"oci://{dev_registry.host}/team/bot:v1"
    registry.push_directory(adapter_dir, ref, LINEAGE, options=PLAIN, reporter=QUIET)
    layers = registry.show(ref, options=PLAIN).manifest["layers"]
    names = [layer["annotations"]["org.cncf.model.filepath"] for layer in layers]
    # Files before the weights are written first, so a failure there has something to clean up.
    assert names.index("adapter_model.safetensors") >= 2
    weights = layers[names.index("adapter_model.safetensors")]
    _corrupt_blob(dev_registry, weights["digest"])

    with pytest.raises(errors.IntegrityError) as info:
        registry.pull(ref, tmp_path / "new", options=PLAIN, reporter=QUIET)
    assert "adapter_model.safetensors" in str(info.value)
    assert str(ref) in str(info.value)
    assert not (tmp_path / "new").exists()

    empty = tmp_path / "mounted-empty-dir"
    empty.mkdir()
    with pytest.raises(errors.IntegrityError):
        registry.pull(ref, empty, options=PLAIN, reporter=QUIET)
    assert list(empty.iterdir()) == []


def test_copy_refuses_to_propagate_a_corrupted_blob(
    dev_registry: devserver.DevRegistry, adapter_dir: Path, tmp_path: Path
) -> None:
    ref = f"oci://{dev_registry.host}/team/bot:v1"
    registry.push_directory(adapter_dir, ref, LINEAGE, options=PLAIN, reporter=QUIET)
    weights = next(x for x in registry.show(ref, options=PLAIN).manifest["layers"] if x["size"] > 1 << 20)
    _corrupt_blob(dev_registry, weights["digest"])
    with pytest.raises(errors.IntegrityError):
        registry.copy(ref, f"{tmp_path}/layout:v1", options=PLAIN, reporter=QUIET)
    with pytest.raises(errors.NotFound):
        registry.resolve(f"{tmp_path}/layout:v1")


def test_chunked_upload_survives_a_dropped_connection(
    dev_registry: devserver.DevRegistry, cutting_proxy: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = tmp_path / "big"
    src.mkdir()
    (src / "adapter_model.safetensors").write_bytes(os.urandom(12 << 20))
    chunked = registry.Options(insecure=True, chunk_size=2 << 20)
    ref = f"oci://127.0.0.1:{cutting_proxy.port}/team/bot:v1"
    caplog.set_level(logging.INFO, logger="kubetune.registry.oci")
    pinned = registry.push_directory(src, ref, LINEAGE, options=chunked, reporter=QUIET)
    assert cutting_proxy.cuts == 1
    assert any(r.getMessage() in ("resuming upload", "restarting upload") for r in caplog.records)
    direct = f"oci://{dev_registry.host}/team/bot@{pinned.rpartition('@')[2]}"
    registry.pull(direct, tmp_path / "out", options=PLAIN, reporter=QUIET)
    assert (tmp_path / "out" / "adapter_model.safetensors").read_bytes() == (
        src / "adapter_model.safetensors"
    ).read_bytes()


class _GrowsWhileSent:
    """Appends to the file being uploaded once its first bytes have gone out."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def blob(self, name: str, total: int) -> Iterator[progress.Advance]:
        grown = False

        def advance(_n: int) -> None:
            nonlocal grown
            if not grown and name == self.path.name:
                grown = True
                with self.path.open("ab") as handle:
                    handle.write(b"late bytes")

        yield advance


def test_a_large_file_still_being_written_during_a_push_fails_it_without_a_tag(
    dev_registry: devserver.DevRegistry, tmp_path: Path
) -> None:
    src = tmp_path / "big"
    src.mkdir()
    weights = src / "adapter_model.safetensors"
    weights.write_bytes(os.urandom(12 << 20))
    ref = f"oci://{dev_registry.host}/team/bot:v1"
    with pytest.raises(errors.InvalidArtifact, match="changed size while it was pushed"):
        registry.push_directory(src, ref, LINEAGE, options=PLAIN, reporter=_GrowsWhileSent(weights))
    with pytest.raises(errors.NotFound):
        registry.resolve(ref, options=PLAIN)
