"""The model-side state of a running batch: KV cache, 2-D attention mask and each row's position.

Rows are left-padded. :meth:`KvBatch.select` drops finished rows (and padding columns no row
needs any more); :meth:`KvBatch.extend` appends a freshly prefilled group of rows, left-padding
the narrower side's keys, values and mask, which is how new requests join a batch that is already
decoding (TGI's batch concatenation). Concatenation needs plain ``DynamicLayer`` caches (full
attention); for anything else :meth:`KvBatch.can_extend` is false and batches run to completion.
Pure tensor bookkeeping: no model calls, no tokenizer, no sampling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def _left_pad(tensor: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    if width == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = width
    return torch.cat([torch.zeros(shape, dtype=tensor.dtype, device=tensor.device), tensor], dim=dim)


class KvBatch:
    def __init__(self, past: Any, mask: torch.Tensor, positions: torch.Tensor) -> None:
        self.past = past  # a transformers Cache, [rows, heads, width, dim] per layer
        self.mask = mask  # [rows, width], 1 where a real token is cached
        self.positions = positions  # [rows, 1], position of each row's last fed token

    @staticmethod
    def prefill_inputs(sequences: Sequence[Sequence[int]], pad_id: int) -> dict[str, torch.Tensor]:
        """Left-padded ``input_ids``, ``attention_mask`` and ``position_ids`` for one prefill."""
        width = max(len(s) for s in sequences)
        ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for n, sequence in enumerate(sequences):
            ids[n, width - len(sequence) :] = torch.tensor(list(sequence), dtype=torch.long)
            mask[n, width - len(sequence) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        return {"input_ids": ids, "attention_mask": mask, "position_ids": positions}

    @classmethod
    def after_prefill(cls, past: Any, inputs: dict[str, torch.Tensor]) -> KvBatch:
        return cls(past, inputs["attention_mask"], inputs["position_ids"][:, -1:])

    def __len__(self) -> int:
        return int(self.mask.shape[0])

    def step_inputs(self, next_ids: Sequence[int]) -> dict[str, Any]:
        """Inputs of the next decode forward (one new token per row); updates mask and positions."""
        self.mask = torch.cat([self.mask, torch.ones((len(self), 1), dtype=self.mask.dtype)], dim=-1)
        self.positions = self.positions + 1
        return {
            "input_ids": torch.tensor([[t] for t in next_ids], dtype=torch.long),
            "attention_mask": self.mask,
            "position_ids": self.positions,
            "past_key_values": self.past,
            "use_cache": True,
        }

    def select(self, keep: Sequence[int]) -> None:
        """Keeps rows ``keep`` (in that order) and trims columns that are padding for all of them."""
        index = torch.tensor(list(keep), dtype=torch.long)
        self.past.batch_select_indices(index)
        self.mask = self.mask[index]
        self.positions = self.positions[index]
        used = self.mask.any(dim=0).nonzero()
        start = int(used[0].item()) if len(used) else 0
        if start > 0 and self.can_extend():
            for layer in self.past.layers:
                layer.keys = layer.keys[:, :, start:, :]
                layer.values = layer.values[:, :, start:, :]
            self.mask = self.mask[:, start:]

    def can_extend(self) -> bool:
        from transformers.cache_utils import DynamicLayer

        layers: Any = getattr(self.past, "layers", None) or []
        return bool(layers) and all(type(layer) is DynamicLayer and layer.is_initialized for layer in layers)

    def extend(self, other: KvBatch) -> None:
        """Appends ``other``'s rows; both must be in the same state (last token chosen, not fed)."""
        width, other_width = self.mask.shape[1], other.mask.shape[1]
        target = max(width, other_width)
        for mine, theirs in zip(self.past.layers, other.past.layers, strict=True):
            mine.keys = torch.cat(
                [_left_pad(mine.keys, target - width, 2), _left_pad(theirs.keys, target - other_width, 2)]
            )
            mine.values = torch.cat(
                [_left_pad(mine.values, target - width, 2), _left_pad(theirs.values, target - other_width, 2)]
            )
        self.mask = torch.cat(
            [_left_pad(self.mask, target - width, 1), _left_pad(other.mask, target - other_width, 1)]
        )
        self.positions = torch.cat([self.positions, other.positions])
