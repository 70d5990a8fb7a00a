"""Only complete checkpoints are resumed from: a half-written temporary directory or a
directory without the completion marker is ignored and cleaned away, and a checkpoint restores
weights, optimizer, scheduler, RNG and the saved state exactly."""

from __future__ import annotations

from pathlib import Path

from kubetune.trainer import checkpoint


def _objects() -> tuple[object, object, object]:
    import torch

    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (step + 1))
    return model, optimizer, scheduler


def test_incomplete_checkpoints_are_never_resumed(tmp_path: Path) -> None:
    import torch

    model, optimizer, scheduler = _objects()
    done = checkpoint.save(
        tmp_path,
        10,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=None,
        state={"position": {"epoch": 1, "index": 2}},
    )
    (tmp_path / ".tmp-step-00000020-999").mkdir()  # killed while writing
    unmarked = tmp_path / "step-00000030"  # renamed by hand, or copied without its marker
    unmarked.mkdir()
    (unmarked / "state.json").write_text("{}")
    assert checkpoint.latest(tmp_path) == done
    assert [r.step for r in checkpoint.refs(tmp_path)] == [10]
    checkpoint.clean(tmp_path, keep=0)
    assert not (tmp_path / ".tmp-step-00000020-999").exists()

    with torch.no_grad():
        model.weight.zero_()  # type: ignore[attr-defined]
    state = checkpoint.load(done, model=model, optimizer=optimizer, scheduler=scheduler, scaler=None)
    assert state["step"] == 10 and state["position"] == {"epoch": 1, "index": 2}
    assert model.weight.abs().sum() > 0  # type: ignore[attr-defined]
    again = checkpoint.load(done, model=model, optimizer=optimizer, scheduler=scheduler, scaler=None)
    first = torch.rand(3)
    checkpoint.load(done, model=model, optimizer=optimizer, scheduler=scheduler, scaler=None)
    assert torch.equal(torch.rand(3), first) and again["step"] == 10


def test_keep_prunes_the_oldest(tmp_path: Path) -> None:
    model, optimizer, scheduler = _objects()
    for step in (5, 10, 15, 20):
        checkpoint.save(
            tmp_path, step, model=model, optimizer=optimizer, scheduler=scheduler, scaler=None, state={}
        )
    checkpoint.clean(tmp_path, keep=2)
    assert [r.step for r in checkpoint.refs(tmp_path)] == [15, 20]
