"""The training loop: micro-batches, gradient accumulation, schedule, checkpoints, signals.

One optimizer step consumes ``gradientAccumulationSteps`` micro-batches; the loss is the sum
of their token losses divided by the step's count of trainable tokens, so accumulation does
not change the objective. Progress goes to a :class:`~kubetune.trainer.progress.Sink` as
structured events. A checkpoint is written every ``checkpointEverySteps`` steps and when a
stop is requested (SIGTERM/SIGINT, through :class:`StopFlag`), after which the loop raises
:class:`~kubetune.trainer.errors.Terminated`; a new run resumes from the last complete
checkpoint at the same step and data position. Does not load models or data, nor evaluate.

Across several processes (:mod:`~kubetune.trainer.distributed`), every rank walks the same
micro-batch stream; one optimizer step draws ``accumulation x world size`` micro-batches and
each rank computes its share under DistributedDataParallel. The loss is still divided by the
whole step's trainable tokens, so N ranks with accumulation A train exactly like one process
with accumulation N*A. Ranks agree on a stop request at every step boundary; rank 0 alone
writes checkpoints, and on resume sends the one it read to the others.

An :class:`Objective` (``LoopConfig.objective``) replaces the model's own loss for a micro-batch
(preference tuning: :class:`~kubetune.trainer.preference.logps.Objective`); its unit of loss is
whatever the data items count as ``trainable`` (a pair), and everything else stays as above.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from kubetune import logs
from kubetune.api.contract import events, pod
from kubetune.api.contract.events import ProgressEvent
from kubetune.api.v1alpha1.finetunejob import FineTuneJobSpec, Hyperparameters
from kubetune.trainer import batching, checkpoint, distributed
from kubetune.trainer.batching import Batching, Position
from kubetune.trainer.distributed import World
from kubetune.trainer.encoding import Encoded
from kubetune.trainer.errors import Terminated
from kubetune.trainer.progress import Sink

log = logging.getLogger(__name__)


class StopFlag:
    """Set by SIGTERM/SIGINT; the loop checkpoints and stops at the next step boundary."""

    def __init__(self) -> None:
        self.requested = False
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C stops without waiting for the checkpoint
        self.requested = True
        self.signal = signum
        log.warning("stop requested; checkpointing at the next step", extra=logs.fields(signal=signum))

    def install(self) -> StopFlag:
        for sig in (signal.SIGTERM, signal.SIGINT):
            # outside the main thread signal() raises: the caller keeps its own handlers
            with contextlib.suppress(ValueError):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


class Objective(Protocol):
    """A loss computed from the model's outputs instead of the model's own ``loss``."""

    def loss_sum(self, model: Any, plan: list[list[int]], data: Sequence[Encoded], device: str) -> Any:
        """The summed loss (a scalar tensor) of micro-batch ``plan``, over its trainable units."""
        ...


# The spec's own defaults: a LoopConfig built without a value trains as an empty spec would.
_HP = Hyperparameters()
_CHECKPOINT_EVERY: int = FineTuneJobSpec.model_fields["checkpoint_every_steps"].default


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """Everything the loop needs besides the model and the data (defaults: the API's)."""

    total_steps: int
    batches_per_epoch: int
    batching: Batching
    pad_id: int
    accumulation: int = _HP.gradient_accumulation_steps
    learning_rate: float = _HP.learning_rate
    scheduler: str = _HP.scheduler
    warmup_ratio: float = _HP.warmup_ratio
    weight_decay: float = _HP.weight_decay
    max_grad_norm: float = _HP.max_grad_norm
    device: str = "cpu"
    autocast_dtype: str | None = None  # "bfloat16" / "float16" on CUDA; None = fp32
    checkpoint_dir: Path | None = None
    checkpoint_every: int = _CHECKPOINT_EVERY
    keep_checkpoints: int = pod.KEEP_CHECKPOINTS
    log_every: int = 1
    causal: bool = True  # a causal LM (pass use_cache=False); else a classifier
    world: World = distributed.SINGLE
    objective: Objective | None = None  # default: the model's loss (token mean, labels in batch)


@dataclasses.dataclass
class LoopResult:
    """What one attempt of the loop did."""

    steps: int
    total_steps: int
    final_loss: float | None
    losses: list[tuple[int, float]]
    tokens: int  # effective (non-padding) tokens processed by this attempt, all ranks together
    seconds: float  # training time of this attempt
    elapsed_total: float  # training time over every attempt
    resumed_from: int | None
    learning_rate: float | None = None  # after the last step

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def _optimizer(model: Any, cfg: LoopConfig) -> Any:
    import torch

    decay: list[Any] = []
    no_decay: list[Any] = []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.learning_rate)


def _scheduler(optimizer: Any, cfg: LoopConfig) -> Any:
    from transformers import get_scheduler

    warmup = math.ceil(cfg.warmup_ratio * cfg.total_steps)
    return get_scheduler(
        cfg.scheduler, optimizer, num_warmup_steps=warmup, num_training_steps=cfg.total_steps
    )


def _agree(flag: bool, world: World, device: str) -> bool:
    """True on every rank when any rank has ``flag`` set."""
    return distributed.all_sum([float(flag)], device)[0] > 0


def _to(batch: dict[str, Any], device: str) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _micro_loss(
    forward: Any,
    plan: list[list[int]],
    data: Sequence[Encoded],
    cfg: LoopConfig,
    n_trainable: int,
    autocast: Any,
) -> Any:
    """The summed float32 loss of one micro-batch (forward pass under ``autocast`` if set)."""
    with autocast if autocast is not None else contextlib.nullcontext():
        if cfg.objective is not None:
            return cfg.objective.loss_sum(forward, plan, data, cfg.device).float()
        batch = _to(batching.collate(plan, data, cfg.pad_id, packed=cfg.batching.packing), cfg.device)
        if cfg.causal:
            batch["use_cache"] = False  # a cache would also disable the packed-sequence mask
        out = forward(**batch)
    return out.loss.float() * n_trainable


def train(
    model: Any, data: Sequence[Encoded], cfg: LoopConfig, sink: Sink, stop: StopFlag | None = None
) -> LoopResult:
    """Train ``model`` on ``data`` to ``cfg.total_steps``, resuming from a checkpoint if any."""
    import torch

    stop = stop or StopFlag()
    optimizer = _optimizer(model, cfg)
    scheduler = _scheduler(optimizer, cfg)
    scaler = torch.amp.GradScaler("cuda") if cfg.autocast_dtype == "float16" else None
    step, position, elapsed_before, resumed_from = 0, Position(), 0.0, None
    resumed_loss: float | None = None
    world = cfg.world
    found: dict[str, Any] | None = None
    if cfg.checkpoint_dir is not None and world.main:
        checkpoint.clean(cfg.checkpoint_dir, keep=0)
        latest = checkpoint.latest(cfg.checkpoint_dir)
        found = checkpoint.read(latest) if latest is not None else None
    if world.distributed:
        found = distributed.broadcast(found, world)
    if found is not None:
        state = checkpoint.apply(found, model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler)
        step, resumed_from = int(state["step"]), int(state["step"])
        position = Position(**state["position"])
        elapsed_before = float(state.get("elapsed", 0.0))
        resumed_loss = state.get("loss")
        sink.emit(events.resumed(step, str(found["path"])))
        found = None  # the copy of the weights and optimizer state is no longer needed
    lengths = [e.length for e in data]
    micro = batching.stream(lengths, cfg.batching, position)
    losses: list[tuple[int, float]] = []
    tokens = 0
    started = time.monotonic()
    last_saved = step
    model.train()
    forward = distributed.wrap(model, world, cfg.device) if world.distributed else model
    autocast = (
        torch.autocast("cuda", dtype=getattr(torch, cfg.autocast_dtype))
        if cfg.autocast_dtype and cfg.device.startswith("cuda")
        else None
    )
    done_this_attempt = 0

    def save(at: int) -> Path | None:
        if cfg.checkpoint_dir is None or not world.main:
            return None
        spent = elapsed_before + time.monotonic() - started
        path = checkpoint.save(
            cfg.checkpoint_dir,
            at,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            scaler=scaler,
            state={
                "position": dataclasses.asdict(position),
                "elapsed": spent,
                "loss": losses[-1][1] if losses else None,
            },
        )
        checkpoint.clean(cfg.checkpoint_dir, cfg.keep_checkpoints)
        sink.emit(events.checkpoint(at, str(path)))
        return path

    # every rank must stop at the same step boundary, or the others wait in a collective
    stopping = _agree(stop.requested, world, cfg.device) if world.distributed else False
    while step < cfg.total_steps:
        if stopping or (stop.requested and not world.distributed):
            path = (
                save(step)
                if step != last_saved or cfg.checkpoint_dir is None
                else checkpoint.latest(cfg.checkpoint_dir)
            )
            raise Terminated(step, str(path) if path else None)
        chunk = []
        for _ in range(cfg.accumulation * world.size):
            pos, plan = next(micro)
            chunk.append(plan)
            position = Position(pos.epoch, pos.index + 1)
        counts = [batching.tokens_of(b, data) for b in chunk]
        step_trainable = max(1, sum(c[1] for c in counts))
        tokens += sum(c[0] for c in counts)
        mine = distributed.share(list(zip(chunk, counts, strict=True)), world)
        step_loss = 0.0
        for i, (plan, (_, n_trainable)) in enumerate(mine):
            # gradients are exchanged once per step, after the last micro-batch
            sync = contextlib.nullcontext() if i == len(mine) - 1 or forward is model else forward.no_sync()
            with sync:
                loss_sum = _micro_loss(forward, plan, data, cfg, n_trainable, autocast)
                # DDP averages gradients over ranks; scale back up to the step's token sum
                scaled = loss_sum * world.size / step_trainable
                (scaler.scale(scaled) if scaler is not None else scaled).backward()
            step_loss += float(loss_sum.detach())
        if scaler is not None:
            scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(
            [p for g in optimizer.param_groups for p in g["params"]], cfg.max_grad_norm
        )
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        done_this_attempt += 1
        if world.distributed:
            step_loss, requested = distributed.all_sum([step_loss, float(stop.requested)], cfg.device)
            stopping = requested > 0
        loss_value = step_loss / step_trainable
        losses.append((step, loss_value))
        if step % cfg.log_every == 0 or step == cfg.total_steps or step == 1:
            spent = time.monotonic() - started
            sink.emit(
                ProgressEvent(
                    step=step,
                    total_steps=cfg.total_steps,
                    epoch=position.epoch + position.index / max(1, cfg.batches_per_epoch),
                    loss=round(loss_value, 6),
                    learning_rate=float(scheduler.get_last_lr()[0]),
                    tokens_per_second=tokens / spent if spent > 0 else 0.0,
                    eta_seconds=spent / done_this_attempt * (cfg.total_steps - step),
                )
            )
        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.total_steps:
            save(step)
            last_saved = step
    seconds = time.monotonic() - started
    if cfg.checkpoint_dir is not None and step != last_saved and done_this_attempt:
        save(step)  # the final state, so an interrupted evaluation or export need not retrain
    return LoopResult(
        steps=step,
        total_steps=cfg.total_steps,
        final_loss=losses[-1][1] if losses else resumed_loss,
        losses=losses,
        tokens=tokens,
        seconds=seconds,
        elapsed_total=elapsed_before + seconds,
        resumed_from=resumed_from,
        learning_rate=float(scheduler.get_last_lr()[0]),
    )
