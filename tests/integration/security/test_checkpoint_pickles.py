"""A checkpoint directory can sit on a claim others write (checkpointStorage.claimName is shared by
every pod of a job, and a claim may be shared wider): a planted pickle in a checkpoint must never
run code in the training pod that resumes from it."""

from __future__ import annotations

from pathlib import Path

from kubetune.trainer import checkpoint


def _objects() -> tuple[object, object, object]:
    import torch

    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (step + 1))
    return model, optimizer, scheduler


class _Planted:
    """What a tenant with write access to a shared checkpoint claim could plant in rng.pt:
    unpickling it creates ``marker`` (a stand-in for running any code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.marker,))


def test_a_checkpoint_whose_rng_state_runs_code_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    import pytest
    import torch

    from kubetune.trainer.errors import UserError

    model, optimizer, scheduler = _objects()
    done = checkpoint.save(
        tmp_path, 10, model=model, optimizer=optimizer, scheduler=scheduler, scaler=None, state={}
    )
    marker = tmp_path / "planted"
    torch.save(
        {"python": random_state(), "torch": torch.get_rng_state(), "x": _Planted(marker)}, done / "rng.pt"
    )
    with pytest.raises(UserError) as err:
        checkpoint.read(done)
    assert not marker.exists()
    assert "rng.pt holds more than tensors and plain data" in str(err.value) and "\n" not in str(err.value)


def random_state() -> object:
    import random

    return random.getstate()
