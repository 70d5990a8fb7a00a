"""``kubetune lora-config``: the init container that tells vLLM the largest LoRA rank it serves.

vLLM allocates its LoRA slots for ``--max-lora-rank`` up front and refuses an adapter of a
higher rank; only the adapters themselves know their rank, and they are pulled when the pod
starts. This command reads each pulled adapter's ``adapter_config.json`` (``r`` and any
``rank_pattern`` value), rounds the largest up to a rank vLLM accepts and writes a vLLM
``--config`` YAML file (``max-lora-rank: N``) that the server container reads. A directory
without a readable config, or a rank above vLLM's largest, fails the pod with a message naming
the adapter.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# vllm.config.lora.MaxLoRARanks (vLLM 0.32)
VLLM_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


class LoraConfigError(Exception):
    """An adapter directory the server could not load; the message names it."""


def adapter_rank(directory: Path) -> int:
    """The largest LoRA rank in ``directory/adapter_config.json``."""
    path = directory / "adapter_config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LoraConfigError(f"{path}: cannot read the adapter's config ({exc})") from None
    ranks = [config.get("r"), *(config.get("rank_pattern") or {}).values()]
    found = [int(r) for r in ranks if isinstance(r, int) and r > 0]
    if not found:
        raise LoraConfigError(f"{path}: no LoRA rank (r) in the adapter's config")
    return max(found)


def max_lora_rank(ranks: list[int]) -> int:
    """The smallest rank vLLM accepts that covers every adapter's rank."""
    top = max(ranks)
    for allowed in VLLM_RANKS:
        if allowed >= top:
            return allowed
    raise LoraConfigError(f"LoRA rank {top} is above vLLM's largest --max-lora-rank {VLLM_RANKS[-1]}")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "lora-config",
        help="init container: write vLLM's --max-lora-rank from the adapters",
        description=__doc__,
    )
    parser.add_argument("--adapters", required=True, help="comma-separated adapter directories")
    parser.add_argument("--out", required=True, help="the vLLM --config YAML file to write")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    dirs = [Path(d) for d in args.adapters.split(",") if d]
    try:
        ranks = {str(d): adapter_rank(d) for d in dirs}
        rank = max_lora_rank(list(ranks.values()))
    except LoraConfigError as exc:
        print(f"kubetune lora-config: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"max-lora-rank: {rank}\n", encoding="utf-8")
    print(f"kubetune lora-config: max-lora-rank {rank} for ranks {ranks}")
    return 0
