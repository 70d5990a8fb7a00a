"""One run of a FineTuneJob: preflight -> train -> evaluate -> export, and its result.json.

Shared by the training pod (``python -m kubetune.trainer``) and local mode (``kubetune run``).
Base-model scores are taken before training starts, on the very model training starts from
(and cached beside the checkpoints, so a resumed run does not redo them); so are, for
preference data, the reference log-probabilities (:mod:`~kubetune.trainer.preference.reference`),
and training then uses the preference objective. User problems end
as a :class:`~kubetune.api.contract.result.RunResult` with exit code 1, an unmet gate with 2, a
stop signal with 143 after a checkpoint; anything else is a bug and propagates. Pushes to a
registry only when :attr:`Options.push_to` is set (the training pod: ``KUBETUNE_REGISTRY``);
local mode pushes from the CLI. Under torchrun (``WORLD_SIZE`` > 1) every rank runs the
preflight and trains its share; rank 0 alone scores, exports, pushes and owns the checkpoints,
and the other ranks end after training (their result.json goes to ``OUTPUT/.rank-N``, set by
the entry point). Does not parse command lines.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubetune import logs
from kubetune.api.contract import events, exits, pod, pricing
from kubetune.api.contract.events import PhaseEvent, ProgressEvent
from kubetune.api.contract.result import GateResult, RunResult, Training
from kubetune.api.v1alpha1.base import rfc3339
from kubetune.trainer import card as model_card
from kubetune.trainer import (
    checkpoint,
    distributed,
    evaluate,
    export,
    loop,
    models,
    preflight,
    publish,
)
from kubetune.trainer import report as report_io
from kubetune.trainer.batching import Batching, plan_epoch
from kubetune.trainer.errors import Terminated, UserError
from kubetune.trainer.preference import logps as preference_logps
from kubetune.trainer.preference import reference as preference_reference
from kubetune.trainer.preflight import Hardware
from kubetune.trainer.progress import Sink
from kubetune.trainer.spec import JobSpec

log = logging.getLogger(__name__)
BASE_SCORES = "base-scores.json"


@dataclasses.dataclass
class Options:
    """Where a run writes and how it behaves."""

    output_dir: Path
    checkpoint_dir: Path | None = None  # default: <output_dir>/checkpoints
    hardware: Hardware = "here"
    dry_run: bool = False
    keep_checkpoints: int = pod.KEEP_CHECKPOINTS
    stop: loop.StopFlag | None = None
    cuda: bool | None = None  # override detection (tests)
    on_preflight: Callable[[report_io.Report], None] | None = None  # e.g. print the table
    # Push a Succeeded run's artifact here. Default: $KUBETUNE_REGISTRY, which the operator sets
    # in the training pod (cluster mode); local mode passes None and pushes from the CLI.
    push_to: str | None = dataclasses.field(default_factory=publish.cluster_target)
    world: distributed.World = dataclasses.field(default_factory=distributed.from_environment)

    @property
    def checkpoints(self) -> Path:
        return self.checkpoint_dir or self.output_dir / "checkpoints"


def _now() -> str:
    return rfc3339(datetime.now(UTC))


def run_preflight(job: JobSpec, opts: Options, sink: Sink) -> tuple[RunResult, preflight.Outcome]:
    """The preflight alone; writes preflight.json (result.json is :func:`finish`'s job)."""
    started = _now()
    sink.emit(PhaseEvent(events.PREFLIGHT, f"checking {job.name}: dataset, template, method, budget"))
    outcome = preflight.run(job, hardware=opts.hardware, cuda=opts.cuda, world=opts.world)
    report = outcome.report
    if opts.push_to and report.passed and not (opts.dry_run or job.spec.dry_run) and opts.world.main:
        # a registry that cannot take the result fails the job now, not after the GPU-hours
        problem = publish.check(job, opts.push_to)
        if problem is not None:
            report.errors.append(problem)
    report_io.save(report, opts.output_dir / "preflight.json")
    if opts.on_preflight is not None:
        opts.on_preflight(report)
    summary = report.summary()
    sink.emit(events.preflight(report.passed, summary))
    if not report.passed:
        result = RunResult(
            job=job.name,
            outcome="PreflightFailed",
            exit_code=exits.USER_ERROR,
            message=report.errors[0]
            + (f" (and {len(report.errors) - 1} more)" if len(report.errors) > 1 else ""),
            preflight=summary,
            start_time=started,
            completion_time=_now(),
        )
        return result, outcome
    result = RunResult(
        job=job.name,
        outcome="PreflightPassed",
        exit_code=exits.OK,
        message=f"preflight passed: {report.train_rows} rows, {report.estimated_steps} steps estimated",
        preflight=summary,
        start_time=started,
        completion_time=_now(),
    )
    return result, outcome


def finish(result: RunResult, out: Path, sink: Sink) -> RunResult:
    """Write ``result.json`` and emit it as the run's last event (the operator reads it from the
    pod's log: ``{"event": "phase", "phase": "result", "result": {...}}``)."""
    result.write(out)
    sink.emit(events.result(result))
    return result


def run(job: JobSpec, opts: Options, sink: Sink) -> RunResult:
    """The whole run; always writes ``result.json`` to ``opts.output_dir``."""
    models.quiet_transformers()
    result, outcome = run_preflight(job, opts, sink)
    if result.outcome == "PreflightFailed" or opts.dry_run or job.spec.dry_run:
        if result.outcome == "PreflightPassed":
            result.outcome = "DryRunComplete"
        return finish(result, opts.output_dir, sink)
    try:
        result = _train_and_export(job, opts, sink, result, outcome)
        if opts.push_to and result.outcome == "Succeeded" and opts.world.main:
            _push(job, result, opts.push_to, sink)
        return finish(result, opts.output_dir, sink)
    except Terminated as stop:
        result.outcome, result.exit_code, result.message = "Terminated", exits.TERMINATED, str(stop)
        result.checkpoints = checkpoint.refs(opts.checkpoints)
        result.completion_time = _now()
        return finish(result, opts.output_dir, sink)
    except UserError as exc:
        result.outcome, result.exit_code, result.message = "Failed", exits.USER_ERROR, str(exc)
        result.completion_time = _now()
        return finish(result, opts.output_dir, sink)
    finally:
        distributed.shutdown()


def _push(job: JobSpec, result: RunResult, repository: str, sink: Sink) -> None:
    """Push the exported artifact; a registry error fails the run (exit 1, one line)."""
    from kubetune.registry import RegistryError

    sink.emit(PhaseEvent(events.EXPORTING, f"pushing to {repository}:{publish.tag_for(job)}"))
    try:
        result.pushed = publish.push(job, result, repository)
    except RegistryError as exc:
        result.outcome, result.exit_code = "Failed", exits.USER_ERROR
        result.message = f"trained, but the push to {repository} failed: {exc}"
        result.completion_time = _now()
        return
    result.message += f"; pushed {result.pushed.ref}"
    result.completion_time = _now()
    log.info("pushed", extra=logs.fields(ref=result.pushed.ref, tag=result.pushed.tag))


def _autocast(precision: str, cuda: bool) -> str | None:
    import torch

    if not cuda or precision == "fp32":
        return None
    if precision == "fp16":
        return "float16"
    if precision == "bf16" or torch.cuda.is_bf16_supported():
        return "bfloat16"
    return None


def _seed(seed: int) -> None:
    import torch

    random.seed(seed)
    torch.manual_seed(seed)


def _train_and_export(
    job: JobSpec, opts: Options, sink: Sink, result: RunResult, outcome: preflight.Outcome
) -> RunResult:
    spec, hp = job.spec, job.spec.hyperparameters
    prepared, tokenizer, source = outcome.prepared, outcome.tokenizer, outcome.model
    method, env = outcome.method, outcome.env
    assert prepared is not None and source is not None and method is not None and env is not None
    world = opts.world
    device = ("cuda" if not world.distributed else f"cuda:{world.local_rank}") if env.cuda else "cpu"
    labels = prepared.loaded.label_names
    if world.main:
        _claim_checkpoints(opts.checkpoints, job, prepared.loaded.sha256)
    distributed.init(world, env.cuda)
    _seed(hp.seed)
    extra = method.load_kwargs(spec, env)
    placed = "device_map" in extra  # loaded onto the GPU by from_pretrained (4-bit)
    sink.emit(PhaseEvent(events.LOADING, f"loading {spec.base_model.uri} for {spec.method.type} on {device}"))
    model = models.load_model(
        source.path,
        env.task,
        label_names=labels or None,
        pad_token_id=tokenizer.pad_token_id,
        seed=hp.seed,
        extra=extra,
        trust_remote_code=spec.base_model.trust_remote_code,
    )
    if not placed:
        model.to(device)
    base_scores = None
    if spec.evaluation.compare_to_base and prepared.validation and world.main:
        base_scores = _base_scores(model, prepared, tokenizer, spec, device, opts, sink)
    objective = None
    if prepared.format == "preference":
        _reference(model, prepared, job, int(tokenizer.pad_token_id), device, opts, sink)
        objective = preference_logps.Objective(spec.preference_settings(), int(tokenizer.pad_token_id))
    _seed(hp.seed)
    model = method.apply(model, spec, env)
    if hp.gradient_checkpointing:
        # non-reentrant: the variant that works with DistributedDataParallel and no_sync
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()
    if not placed:
        model.to(device)
    how = Batching(batch_size=hp.batch_size, seed=hp.seed, max_len=hp.max_seq_length, packing=hp.packing)
    per_epoch_batches = len(plan_epoch([e.length for e in prepared.train], how, 0))
    steps_per_epoch, total = preflight.steps_for(
        per_epoch_batches, hp.epochs, hp.max_steps, hp.gradient_accumulation_steps * world.size
    )
    cfg = loop.LoopConfig(
        total_steps=total,
        batches_per_epoch=per_epoch_batches,
        batching=how,
        pad_id=int(tokenizer.pad_token_id),
        accumulation=hp.gradient_accumulation_steps,
        learning_rate=hp.learning_rate,
        scheduler=hp.scheduler,
        warmup_ratio=hp.warmup_ratio,
        weight_decay=hp.weight_decay,
        max_grad_norm=hp.max_grad_norm,
        device=device,
        autocast_dtype=_autocast(hp.precision, env.cuda),
        checkpoint_dir=opts.checkpoints,
        checkpoint_every=spec.checkpoint_every_steps,
        keep_checkpoints=opts.keep_checkpoints,
        log_every=1 if total <= 500 else max(1, total // 200),
        causal=env.task == "causal",
        world=world,
        objective=objective,
    )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    sink.emit(
        PhaseEvent(
            events.TRAINING,
            f"{total} steps ({steps_per_epoch}/epoch), {trainable:,} trainable parameters"
            + (f", {world.size} processes" if world.distributed else ""),
            {"totalSteps": total, "trainableParameters": trainable, "worldSize": world.size},
        )
    )
    trained = loop.train(model, prepared.train, cfg, sink, opts.stop)
    distributed.shutdown()
    if not world.main:
        result.outcome, result.exit_code = "Succeeded", exits.OK
        result.message = f"rank {world.rank}: trained {trained.steps} steps; rank 0 evaluates and exports"
        result.completion_time = _now()
        return result
    gpus = (
        (spec.resources.gpus_per_node * spec.resources.num_nodes if not world.distributed else world.size)
        if env.cuda
        else 0
    )
    hours = trained.elapsed_total / 3600 * gpus
    result.training = Training(
        steps=trained.steps,
        total_steps=trained.total_steps,
        final_loss=None if trained.final_loss is None else round(trained.final_loss, 6),
        tokens_per_second=round(trained.tokens_per_second, 1) if trained.tokens else None,
        train_seconds=round(trained.elapsed_total, 2),
        resumed_from_step=trained.resumed_from,
        device=device,
        gpu_hours=round(hours, 5),
        cost=round(pricing.cost(hours, spec.resources.gpu_product, spec.budget), 4),
        currency=pricing.currency(spec.budget),
    )
    tuned_scores = None
    if prepared.validation:
        sink.emit(
            PhaseEvent(
                events.EVALUATING, f"scoring the tuned model on {len(prepared.validation)} held-out rows"
            )
        )
        tuned_scores = evaluate.evaluate(
            model, prepared, tokenizer, spec.evaluation, device, spec.preference_settings()
        )
        result.metrics = evaluate.compare(base_scores, tuned_scores, spec.evaluation.metrics)
        result.samples = tuned_scores.samples
    if trained.final_loss is not None:
        result.progress = ProgressEvent(
            step=trained.steps,
            total_steps=trained.total_steps,
            epoch=trained.steps / steps_per_epoch,
            loss=trained.final_loss,
            learning_rate=trained.learning_rate or 0.0,
            tokens_per_second=trained.tokens_per_second,
            eta_seconds=0.0,
            eval_loss=tuned_scores.values.get("loss") if tuned_scores else None,
        ).to_status(_now())
    verdict = evaluate.gate(spec.evaluation.gate, result.metrics)
    if spec.evaluation.gate is not None or not prepared.validation:
        result.gate = GateResult(
            passed=verdict.passed,
            message=verdict.message,
            metric=spec.evaluation.gate.metric if spec.evaluation.gate else None,
        )
    else:
        result.gate = GateResult(passed=True, message=verdict.message)
    sink.emit(PhaseEvent(events.EXPORTING, f"writing artifacts to {opts.output_dir}"))
    arts, _ = export.weights(model, tokenizer, method, spec, opts.output_dir, labels)
    lineage = model_card.lineage(
        job=job.name,
        namespace=job.namespace,
        spec=spec,
        base_revision=source.revision,
        dataset_sha256=prepared.loaded.sha256,
        dataset_format=prepared.format,
        train_rows=len(prepared.train),
        validation_rows=len(prepared.validation),
    )
    data = model_card.build(
        lineage=lineage,
        metrics=result.metrics,
        gate=result.gate.model_dump(mode="json"),
        training=result.training.model_dump(mode="json", exclude_none=True),
        artifacts=arts.model_dump(mode="json", exclude_none=True),
        demo_model=(source.path / "DEMO_MODEL.md").is_file(),
        labels=labels or None,
    )
    result.artifacts = export.write_card(
        data, arts, opts.output_dir, losses=trained.losses, metrics=result.metrics
    )
    if tuned_scores is not None and tuned_scores.generations:
        export.write_samples(base_scores, tuned_scores, result.artifacts, opts.output_dir)
    result.lineage = lineage
    result.checkpoints = checkpoint.refs(opts.checkpoints)
    passed = result.gate.passed
    result.outcome = "Succeeded" if passed else "GateNotMet"
    result.exit_code = exits.OK if passed else exits.GATE_NOT_MET
    result.message = (
        f"trained {trained.steps} steps; {verdict.message}"
        if passed
        else f"gate not met: {verdict.message}; artifacts kept in {opts.output_dir}, not registered"
    )
    result.completion_time = _now()
    log.info("run finished", extra=logs.fields(outcome=result.outcome, steps=trained.steps))
    return result


def fingerprint(job: JobSpec, dataset_sha256: str) -> str:
    """What checkpoints depend on: the spec's training-relevant parts and the data."""
    import hashlib

    spec = job.spec
    relevant = {
        "baseModel": spec.base_model.to_wire(),
        "dataset": spec.dataset.to_wire(),
        "method": spec.method.to_wire(),
        "hyperparameters": spec.hyperparameters.to_wire(),
        "datasetSha256": dataset_sha256,
    }
    if spec.preference is not None:
        relevant["preference"] = spec.preference.to_wire()
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


def _claim_checkpoints(root: Path, job: JobSpec, dataset_sha256: str) -> None:
    """Refuse to resume from checkpoints of a different spec or dataset."""
    mark = root / "fingerprint"
    current = fingerprint(job, dataset_sha256)
    if mark.is_file() and mark.read_text(encoding="utf-8").strip() != current:
        raise UserError(
            f"the checkpoints in {root} were written for a different spec or dataset; delete them, "
            "use another output directory, or run with --fresh"
        )
    root.mkdir(parents=True, exist_ok=True)
    mark.write_text(current + "\n", encoding="utf-8")


def _base_scores(
    model: Any, prepared: Any, tokenizer: Any, spec: Any, device: str, opts: Options, sink: Sink
) -> evaluate.Scores:
    cache = opts.checkpoints / BASE_SCORES
    if cache.is_file():
        data = json.loads(cache.read_text(encoding="utf-8"))
        return evaluate.Scores(
            values=data["values"], samples=data.get("samples", []), generations=data.get("generations", [])
        )
    sink.emit(
        PhaseEvent(events.EVALUATING, f"scoring the base model on {len(prepared.validation)} held-out rows")
    )
    scores = evaluate.evaluate(
        model, prepared, tokenizer, spec.evaluation, device, spec.preference_settings()
    )
    opts.checkpoints.mkdir(parents=True, exist_ok=True)
    clean = {k: v for k, v in scores.values.items() if not (math.isnan(v) or math.isinf(v))}
    cache.write_text(
        json.dumps({"values": clean, "samples": scores.samples, "generations": scores.generations}),
        encoding="utf-8",
    )
    return scores


def _reference(
    model: Any, prepared: Any, job: JobSpec, pad_id: int, device: str, opts: Options, sink: Sink
) -> None:
    """Attach the base model's log-probabilities to every pair (read back on a resumed run)."""
    settings = job.spec.preference_settings()
    if opts.world.main:
        what = "train and held-out" if settings.needs_reference else "held-out"
        sink.emit(
            PhaseEvent(
                events.EVALUATING,
                f"reference log-probabilities of the {what} pairs ({settings.loss}, beta {settings.beta})",
            )
        )
    prepared.train, prepared.validation, cached = preference_reference.prepare(
        model,
        prepared.train,
        prepared.validation,
        pad_id,
        device,
        opts.checkpoints,
        opts.world,
        with_train=settings.needs_reference,
        autocast=_autocast(job.spec.hyperparameters.precision, device.startswith("cuda")),
    )
    log.info("reference log-probabilities ready", extra=logs.fields(cached=cached))
