"""Checkpoints that a restarted run can trust: written atomically, marked complete.

A checkpoint is a directory ``step-NNNNNNNN`` under the checkpoint root holding the trainable
weights (safetensors), the optimizer, scheduler and grad-scaler states, the RNG states, and
``state.json`` (step, data position, tokens seen, elapsed time). It is written into a
temporary sibling, every file fsynced, then the ``COMPLETE`` marker, then renamed into place
and the parent fsynced; a directory without the marker (or a leftover temporary one) is never
resumed from. Knows nothing of batches or losses beyond the state dict it is handed.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
from pathlib import Path
from typing import Any

from kubetune.api.v1alpha1.base import rfc3339
from kubetune.api.v1alpha1.finetunejob import CheckpointRef
from kubetune.trainer.errors import UserError

MARKER = "COMPLETE"
PREFIX = "step-"
TMP_PREFIX = ".tmp-"


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories
    finally:
        os.close(fd)


def trainable_state(model: Any) -> dict[str, Any]:
    """The parameters that training changes, as contiguous CPU tensors."""
    return {
        n: p.detach().to("cpu").contiguous().clone() for n, p in model.named_parameters() if p.requires_grad
    }


def save(
    root: Path,
    step: int,
    *,
    model: Any,
    optimizer: Any,
    scheduler: Any,
    scaler: Any,
    state: dict[str, Any],
) -> Path:
    """Write checkpoint ``step`` atomically; returns its directory."""
    import torch
    from safetensors.torch import save_file

    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{step:08d}"
    tmp = root / f"{TMP_PREFIX}{PREFIX}{step:08d}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_file(trainable_state(model), str(tmp / "trainable.safetensors"))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    if scaler is not None:
        torch.save(scaler.state_dict(), tmp / "scaler.pt")
    rng: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save(rng, tmp / "rng.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step, **state}, indent=2), encoding="utf-8")
    for f in tmp.iterdir():
        _fsync_file(f)
    (tmp / MARKER).write_text(json.dumps({"step": step, "time": rfc3339_now()}), encoding="utf-8")
    _fsync_file(tmp / MARKER)
    _fsync_dir(tmp)
    if final.exists():  # a checkpoint of the same step from an earlier attempt
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync_dir(root)
    return final


def rfc3339_now() -> str:
    from datetime import UTC, datetime

    return rfc3339(datetime.now(UTC))


def is_complete(path: Path) -> bool:
    return path.is_dir() and path.name.startswith(PREFIX) and (path / MARKER).is_file()


def complete(root: Path) -> list[Path]:
    """Complete checkpoints, oldest (lowest step) first."""
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if is_complete(p)), key=lambda p: p.name)


def latest(root: Path) -> Path | None:
    found = complete(root)
    return found[-1] if found else None


def refs(root: Path) -> list[CheckpointRef]:
    """The API's view of the complete checkpoints."""
    out: list[CheckpointRef] = []
    for p in complete(root):
        marker = json.loads((p / MARKER).read_text(encoding="utf-8"))
        out.append(CheckpointRef(step=int(marker["step"]), path=str(p), time=marker.get("time")))
    return out


def clean(root: Path, keep: int) -> None:
    """Remove leftover temporary directories and all but the ``keep`` newest checkpoints."""
    if not root.is_dir():
        return
    for p in root.iterdir():
        if p.name.startswith(TMP_PREFIX) and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
    if keep > 0:
        for p in complete(root)[:-keep]:
            shutil.rmtree(p, ignore_errors=True)


def read(path: Path) -> dict[str, Any]:
    """A checkpoint's contents in memory (CPU tensors), to apply here or send to other ranks."""
    import torch
    from safetensors.torch import load_file

    def pt(name: str) -> Any:
        # weights_only: tensors and plain data only. A checkpoint directory may sit on a shared
        # claim; a pickle that imports code must never run inside the training pod.
        try:
            return torch.load(path / name, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise UserError(
                f"checkpoint {path}: {name} holds more than tensors and plain data, so kubetune did "
                f"not write it and will not load it ({str(exc).splitlines()[0][:160]}); delete "
                f"{path} to resume from an earlier checkpoint"
            ) from None

    return {
        "path": str(path),
        "weights": load_file(str(path / "trainable.safetensors")),
        "optimizer": pt("optimizer.pt"),
        "scheduler": pt("scheduler.pt"),
        "scaler": pt("scaler.pt") if (path / "scaler.pt").is_file() else None,
        "rng": pt("rng.pt"),
        "state": json.loads((path / "state.json").read_text(encoding="utf-8")),
    }


def apply(data: dict[str, Any], *, model: Any, optimizer: Any, scheduler: Any, scaler: Any) -> dict[str, Any]:
    """Restore what :func:`read` returned into the given objects; returns its ``state.json``."""
    import torch

    weights = data["weights"]
    params = dict(model.named_parameters())
    missing = [n for n in weights if n not in params]
    if missing:
        raise ValueError(f"checkpoint {data['path']} has weights the model lacks: {missing[:3]}")
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value.to(params[name].device, params[name].dtype))
    optimizer.load_state_dict(data["optimizer"])
    scheduler.load_state_dict(data["scheduler"])
    if scaler is not None and data["scaler"] is not None:
        scaler.load_state_dict(data["scaler"])
    rng = data["rng"]
    random.setstate(rng["python"])
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    state: dict[str, Any] = data["state"]
    return state


def load(path: Path, *, model: Any, optimizer: Any, scheduler: Any, scaler: Any) -> dict[str, Any]:
    """Restore a checkpoint into the given objects; returns its ``state.json``."""
    return apply(read(path), model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler)
