"""Data-parallel training across processes and pods: who this process is, and the few
collectives the loop needs.

torchrun (``torch.distributed.run``) starts the processes and sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; in a cluster the operator runs it in every
pod of an Indexed Job, one node rank per pod, rendezvousing at pod 0 through a headless
Service. Every rank reads the same data and walks the same deterministic batch stream, taking
its own share of each optimizer step's micro-batches, so resuming needs only the position that
rank 0 checkpoints. Rank 0 alone writes files, reports progress, evaluates, exports and pushes.

:func:`launch` is ``torchrun`` with the trainer's exit codes kept: torchrun itself exits 1 on
any worker failure, which would turn "gate not met" (2) or "stopped after a checkpoint" (143)
into "user error" for the operator. Torch is imported lazily; nothing here reads data.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from kubetune import logs
from kubetune.api.contract import exits
from kubetune.api.v1alpha1.finetunejob import FineTuneJobSpec
from kubetune.trainer import errors

log = logging.getLogger(__name__)
TIMEOUT_ENV = "KUBETUNE_DIST_TIMEOUT_SECONDS"
DEFAULT_TIMEOUT_SECONDS = 3600  # rank 0 scores the base model while the others wait


@dataclasses.dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


SINGLE = World()


def from_environment(env: dict[str, str] | None = None) -> World:
    """The world torchrun describes in the environment; a single process without it."""
    env = dict(os.environ) if env is None else env
    try:
        size = int(env.get("WORLD_SIZE", "1") or 1)
        rank = int(env.get("RANK", "0") or 0)
        local = int(env.get("LOCAL_RANK", "0") or 0)
    except ValueError as exc:
        raise errors.UserError(f"RANK/WORLD_SIZE/LOCAL_RANK must be whole numbers: {exc}") from None
    if size > 1 and "RANK" not in env:
        raise errors.UserError(
            f"WORLD_SIZE is {size} but RANK is not set: start multi-process training with torchrun "
            "(the operator does this for spec.resources.numNodes > 1)"
        )
    if not 0 <= rank < max(size, 1):
        raise errors.UserError(f"RANK {rank} is outside WORLD_SIZE {size}")
    return World(rank=rank, size=max(size, 1), local_rank=local)


def planned_size(spec: FineTuneJobSpec) -> int:
    """Training processes the operator starts for ``spec``: one per GPU, at least one per node."""
    return max(1, spec.resources.num_nodes) * max(1, spec.resources.gpus_per_node)


def share(items: Sequence[Any], world: World) -> list[Any]:
    """This rank's contiguous slice of one optimizer step's micro-batches (``len`` divisible)."""
    per = len(items) // world.size
    return list(items[world.rank * per : (world.rank + 1) * per])


def init(world: World, cuda: bool) -> None:
    """Join the process group (NCCL on GPUs, gloo on CPUs); a no-op for a single process."""
    if not world.distributed:
        return
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    if cuda:
        torch.cuda.set_device(world.local_rank)
    seconds = int(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_SECONDS))
    dist.init_process_group(
        backend="nccl" if cuda else "gloo",
        rank=world.rank,
        world_size=world.size,
        timeout=datetime.timedelta(seconds=seconds),
    )
    log.info(
        "joined the process group",
        extra=logs.fields(rank=world.rank, world_size=world.size, backend=dist.get_backend()),
    )


def shutdown() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_sum(values: Sequence[float], device: str = "cpu") -> list[float]:
    """Element-wise sum of ``values`` over every rank (one small collective)."""
    import torch
    import torch.distributed as dist

    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return [float(v) for v in t.tolist()]


def broadcast(obj: Any, world: World) -> Any:
    """Rank 0's ``obj`` on every rank (pickled; for checkpoint state, not for large models)."""
    import torch.distributed as dist

    box = [obj if world.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    import torch.distributed as dist

    dist.barrier()


def wrap(model: Any, world: World, device: str) -> Any:
    """``model`` under DistributedDataParallel (gradients averaged across ranks)."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [int(device.split(":", 1)[1])] if device.startswith("cuda:") else None
    return DistributedDataParallel(model, device_ids=ids)


def exit_code_of(failure: BaseException) -> int:
    """The trainer exit code behind a torchrun failure (the earliest failed rank's)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    if isinstance(failure, SignalException):
        return 128 + int(failure.sigval)
    if isinstance(failure, ChildFailedError):
        # Prefer a deliberate trainer answer (gate, user error, terminated) over the crash of
        # a rank that merely lost its peer.
        codes = [f.exitcode for _, f in sorted(failure.failures.items())]
        for wanted in (exits.GATE_NOT_MET, exits.USER_ERROR, exits.TERMINATED):
            if wanted in codes:
                return wanted
        code = failure.get_first_failure()[1].exitcode
        return 128 - code if code < 0 else code or exits.INTERNAL_ERROR  # -N: killed by N
    return exits.INTERNAL_ERROR


def launch(argv: list[str]) -> int:
    """``torchrun ARGV`` returning the trainer's exit code instead of torchrun's blanket 1."""
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    try:
        torchrun.run(torchrun.parse_args(argv))  # type: ignore[no-untyped-call]
    except (ChildFailedError, SignalException) as failure:
        code = exit_code_of(failure)
        log.warning(
            "training processes ended with an error", extra=logs.fields(exit_code=code, error=str(failure))
        )
        return code
    return exits.OK


def main() -> int:
    """``python -m kubetune.trainer.distributed TORCHRUN-ARGS``; on SIGTERM torchrun forwards
    the signal to the workers and waits for them (rank 0 checkpoints first)."""
    logs.setup()
    return launch(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
