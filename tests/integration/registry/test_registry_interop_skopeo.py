"""Standard OCI tools read what we write, and we read what they write (skopeo 1.x)."""

from __future__ import annotations

import filecmp
import json
import subprocess
from pathlib import Path

from kubetune import registry
from kubetune.registry import artifact, devserver, progress

LINEAGE = {"baseModel": {"uri": "hf://org/tiny", "revision": "abc"}, "method": "lora", "seed": 5}
PLAIN = registry.Options(insecure=True)
QUIET = progress.Silent()


def _skopeo(skopeo: str, *args: str) -> str:
    done = subprocess.run([skopeo, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_skopeo_inspects_an_artifact_we_pushed_to_a_registry(
    skopeo: str, dev_registry: devserver.DevRegistry, adapter_dir: Path
) -> None:
    pinned = registry.push_directory(
        adapter_dir, f"oci://{dev_registry.host}/team/bot:v1", LINEAGE, options=PLAIN, reporter=QUIET
    )
    raw = _skopeo(
        skopeo, "inspect", "--raw", "--tls-verify=false", f"docker://{dev_registry.host}/team/bot:v1"
    )
    assert artifact.sha256_bytes(raw.encode()) == pinned.rpartition("@")[2]
    manifest = json.loads(raw)
    assert manifest["artifactType"] == "application/vnd.kubetune.adapter.v1"
    assert manifest["config"]["mediaType"] == artifact.CONFIG_MEDIA_TYPE
    config = json.loads(
        _skopeo(
            skopeo,
            "inspect",
            "--raw",
            "--config",
            "--tls-verify=false",
            f"docker://{dev_registry.host}/team/bot:v1",
        )
    )
    assert config["baseModel"] == {"uri": "hf://org/tiny", "revision": "abc"}


def test_skopeo_inspects_an_artifact_in_our_local_layout(
    skopeo: str, adapter_dir: Path, tmp_path: Path
) -> None:
    pinned = registry.push_directory(adapter_dir, f"{tmp_path}/layout:v1", LINEAGE, reporter=QUIET)
    raw = _skopeo(skopeo, "inspect", "--raw", f"oci:{tmp_path}/layout:v1")
    assert artifact.sha256_bytes(raw.encode()) == pinned.rpartition("@")[2]
    assert {
        layer["annotations"]["org.opencontainers.image.title"] for layer in json.loads(raw)["layers"]
    } == {
        "adapter_model.safetensors",
        "adapter_config.json",
        "README.md",
        "tokenizer/tokenizer.json",
    }


def test_skopeo_copies_our_artifacts_and_we_pull_its_copies(
    skopeo: str, dev_registry: devserver.DevRegistry, adapter_dir: Path, tmp_path: Path
) -> None:
    pinned = registry.push_directory(adapter_dir, f"{tmp_path}/ours:v1", LINEAGE, reporter=QUIET)
    digest = pinned.rpartition("@")[2]
    target = f"{dev_registry.host}/team/from-skopeo:v1"
    _skopeo(skopeo, "copy", "--dest-tls-verify=false", f"oci:{tmp_path}/ours:v1", f"docker://{target}")
    assert registry.resolve(f"oci://{target}", options=PLAIN) == digest
    _skopeo(skopeo, "copy", "--src-tls-verify=false", f"docker://{target}", f"oci:{tmp_path}/theirs:v1")
    assert registry.pull(f"{tmp_path}/theirs:v1", tmp_path / "out", reporter=QUIET).endswith(digest)
    for name in ("adapter_model.safetensors", "README.md", "tokenizer/tokenizer.json"):
        assert filecmp.cmp(adapter_dir / name, tmp_path / "out" / name, shallow=False)
