"""``kubetune lora-config`` writes the --max-lora-rank vLLM needs for the adapters it serves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubetune.cli import main


def adapter(root: Path, name: str, config: dict[str, object] | None) -> Path:
    d = root / name
    d.mkdir()
    if config is not None:
        (d / "adapter_config.json").write_text(json.dumps(config))
    return d


def run(*argv: str) -> int:
    return main.main(["lora-config", *argv])


def test_the_largest_rank_rounded_up_to_one_vllm_accepts_is_written(tmp_path: Path) -> None:
    a = adapter(tmp_path, "a", {"r": 4})
    b = adapter(tmp_path, "b", {"r": 8, "rank_pattern": {"q_proj": 24}})
    out = tmp_path / "cfg" / "vllm.yaml"
    assert run("--adapters", f"{a},{b}", "--out", str(out)) == 0
    assert out.read_text() == "max-lora-rank: 32\n"


@pytest.mark.parametrize(("rank", "expected"), [(1, 1), (2, 8), (8, 8), (9, 16), (320, 320), (500, 512)])
def test_ranks_round_up_to_vllms_list(tmp_path: Path, rank: int, expected: int) -> None:
    out = tmp_path / "vllm.yaml"
    assert run("--adapters", str(adapter(tmp_path, "a", {"r": rank})), "--out", str(out)) == 0
    assert out.read_text() == f"max-lora-rank: {expected}\n"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (None, "cannot read the adapter's config"),
        ({"lora_alpha": 8}, "no LoRA rank (r)"),
        ({"r": 1024}, "LoRA rank 1024 is above vLLM's largest --max-lora-rank 512"),
    ],
)
def test_an_adapter_vllm_cannot_serve_fails_naming_it(
    tmp_path: Path, config: dict[str, object] | None, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    a = adapter(tmp_path, "broken", config)
    out = tmp_path / "vllm.yaml"
    assert run("--adapters", str(a), "--out", str(out)) == 1
    err = capsys.readouterr().err
    assert message in err
    assert not out.exists()
    if config is not None and "r" not in config:
        assert str(a / "adapter_config.json") in err
