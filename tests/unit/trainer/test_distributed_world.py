"""Who a training process is under torchrun, how a step's micro-batches are shared, and which
exit code a torchrun failure turns into (the operator reads the trainer's codes)."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from kubetune.api.contract import exits
from kubetune.api.v1alpha1.finetunejob import FineTuneJobSpec
from kubetune.trainer import distributed, errors
from kubetune.trainer.distributed import World


def test_no_torchrun_environment_is_a_single_main_process() -> None:
    world = distributed.from_environment({})
    assert world == distributed.SINGLE and world.main and not world.distributed


def test_torchrun_environment_names_rank_size_and_local_rank() -> None:
    world = distributed.from_environment({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (world.rank, world.size, world.local_rank, world.main) == (3, 4, 1, False)


def test_world_size_without_rank_says_to_use_torchrun() -> None:
    with pytest.raises(errors.UserError, match="torchrun"):
        distributed.from_environment({"WORLD_SIZE": "2"})


def test_rank_outside_the_world_is_refused() -> None:
    with pytest.raises(errors.UserError, match="RANK 2 is outside WORLD_SIZE 2"):
        distributed.from_environment({"RANK": "2", "WORLD_SIZE": "2"})


def test_each_rank_takes_its_own_contiguous_share_and_together_they_take_all() -> None:
    step = list(range(6))  # accumulation 2 x 3 ranks
    shares = [distributed.share(step, World(rank=r, size=3)) for r in range(3)]
    assert shares == [[0, 1], [2, 3], [4, 5]]
    assert distributed.share(step, distributed.SINGLE) == step


@pytest.mark.parametrize(
    ("resources", "size"),
    [({}, 1), ({"numNodes": 2}, 2), ({"numNodes": 3, "gpusPerNode": 8}, 24), ({"gpusPerNode": 4}, 4)],
)
def test_planned_size_is_one_process_per_gpu_and_at_least_one_per_node(
    resources: dict[str, Any], size: int
) -> None:
    spec = FineTuneJobSpec.model_validate(
        {"baseModel": {"uri": "hf://org/m"}, "dataset": {"uri": "d.jsonl"}, "resources": resources}
    )
    assert distributed.planned_size(spec) == size


def _failed(*codes: int) -> Any:
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

    failures = {
        rank: ProcessFailure(local_rank=rank, pid=1000 + rank, exitcode=code, error_file="/nonexistent")
        for rank, code in enumerate(codes)
    }
    return ChildFailedError("kubetune.trainer", failures)


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ((2,), exits.GATE_NOT_MET),
        ((143, 143), exits.TERMINATED),
        ((3, 1), exits.USER_ERROR),  # the peer's crash is a consequence; the data is the cause
        ((3,), exits.INTERNAL_ERROR),
        ((-9,), 137),  # killed by SIGKILL, as a shell reports it
    ],
)
def test_a_failed_rank_keeps_the_trainers_exit_code(codes: tuple[int, ...], expected: int) -> None:
    pytest.importorskip("torch")
    assert distributed.exit_code_of(_failed(*codes)) == expected


def test_a_signal_to_the_launcher_is_128_plus_the_signal() -> None:
    pytest.importorskip("torch")
    from torch.distributed.elastic.multiprocessing.api import SignalException

    assert distributed.exit_code_of(SignalException("stop", signal.SIGTERM)) == 143
