"""The preflight: everything that can be checked on a CPU before a GPU is spent.

Reads and parses the whole dataset (every malformed row reported with file, line and reason),
renders and tokenises it, audits the label mask (trainable share; rows with no trainable
token fail), measures lengths against ``maxSeqLength``, counts duplicates and train/validation
overlap, checks the method, the hardware and the export against the base model (built on the
meta device, no weights read), estimates steps, GPU-hours and cost, and enforces the budget.
The result is a :class:`~kubetune.trainer.report.Report` (its ``summary()`` is the API's
``status.preflight``). Never trains; loads no weights.
"""

from __future__ import annotations

import dataclasses
import math
from types import ModuleType
from typing import Any, Literal

from kubetune.api.contract import pricing
from kubetune.api.v1alpha1.common import GENERATION_METRICS
from kubetune.trainer import dataset, distributed, encoding, methods, models, sources
from kubetune.trainer.dataset import Prepared
from kubetune.trainer.distributed import World
from kubetune.trainer.errors import UserError
from kubetune.trainer.preference import checks as preference_checks
from kubetune.trainer.report import Report
from kubetune.trainer.spec import JobSpec

Hardware = Literal["here", "spec"]  # judge CUDA by this machine, or trust spec.resources
GPU_ONLY_QUANTIZE = ("gptq", "awq", "nf4")


@dataclasses.dataclass
class Outcome:
    """The report plus what training reuses (set only when the preflight passed)."""

    report: Report
    prepared: Prepared | None = None
    tokenizer: Any = None
    model: sources.ResolvedModel | None = None
    method: ModuleType | None = None
    env: methods.Environment | None = None


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def steps_for(
    train_batches: int, spec_epochs: float, max_steps: int | None, accumulation: int
) -> tuple[int, int]:
    """(optimizer steps per epoch, total steps)."""
    per_epoch = max(1, math.ceil(train_batches / accumulation))
    total = max_steps if max_steps else max(1, math.ceil(spec_epochs * train_batches / accumulation))
    return per_epoch, total


def _spec_checks(job: JobSpec, method: ModuleType, cuda: bool) -> list[str]:
    spec = job.spec
    out: list[str] = []
    q = spec.output.quantize
    if q in GPU_ONLY_QUANTIZE:
        if not cuda:
            out.append(
                f"spec.output.quantize {q} needs a CUDA GPU and none is available for this run; use "
                "quantize: int8 (weight-only, runs on CPU) or none, or run on a GPU node"
            )
        else:
            out.append(f"spec.output.quantize {q} is not implemented by this trainer yet; use int8 or none")
    if not method.MERGEABLE and (spec.output.merge or q == "int8"):
        what = "merge: true" if spec.output.merge else "quantize: int8"
        out.append(
            f"spec.output {what} needs weights merged into the base model, but {spec.method.type} learns "
            "virtual tokens that cannot be merged; use lora, dora, ia3 or full, or drop the option"
        )
    if spec.hyperparameters.packing and spec.method.type in ("prompt-tuning", "prefix-tuning"):
        out.append(
            f"spec.hyperparameters.packing does not work with {spec.method.type} (the virtual tokens "
            "belong to one sequence); set packing: false"
        )
    if spec.hyperparameters.precision in ("bf16", "fp16") and not cuda:
        out.append(
            f"spec.hyperparameters.precision {spec.hyperparameters.precision} needs a CUDA GPU; use auto or fp32 on CPU"
        )
    return out


def _data_checks(job: JobSpec, loaded: dataset.Loaded) -> tuple[list[str], list[str]]:
    spec = job.spec
    errors: list[str] = []
    warnings: list[str] = []
    wanted = set(spec.evaluation.metrics)
    if loaded.format == "text" and wanted & GENERATION_METRICS:
        errors.append(
            f"spec.evaluation.metrics has {sorted(wanted & GENERATION_METRICS)} but the dataset is text "
            "(no reference responses to compare with); use loss and perplexity"
        )
    if loaded.format == "classification":
        if wanted & GENERATION_METRICS:
            errors.append(
                "spec.evaluation.metrics: rougeL, bleu and exactMatch do not apply to classification; use accuracy and f1"
            )
        if len(loaded.label_names) < 2:
            errors.append(
                f"{loaded.files[0]}: classification needs at least 2 distinct labels, found {len(loaded.label_names)}"
            )
        if spec.hyperparameters.packing:
            errors.append("spec.hyperparameters.packing does not apply to classification; set packing: false")
        train_labels = {e.label for e in loaded.train}
        unseen = sorted({e.label for e in loaded.validation} - train_labels)
        if unseen:
            warnings.append(f"validation labels never seen in training: {', '.join(unseen[:5])}")
    elif {"accuracy", "f1"} & wanted:
        errors.append(
            f"spec.evaluation.metrics accuracy and f1 need a classification dataset, not {loaded.format}"
        )
    errors += preference_checks.spec_errors(spec, loaded.format)
    if not loaded.validation:
        if spec.evaluation.gate is not None:
            errors.append(
                "spec.evaluation.gate needs held-out rows but there are none; set "
                "spec.dataset.validationSplit above 0 or spec.dataset.validationUri"
            )
        else:
            warnings.append("no validation rows: the run will not be evaluated")
    if not loaded.train:
        errors.append(f"{loaded.files[0]}: no training rows")
    if loaded.duplicates:
        warnings.append(f"{loaded.duplicates} exact duplicate row(s) in the training split")
    if loaded.overlap:
        warnings.append(
            f"{loaded.overlap} validation row(s) also appear in training: held-out metrics will look better than they are"
        )
    return errors, warnings


def _lengths(report: Report, prepared: Prepared, max_len: int) -> None:
    full = sorted(e.full_length for e in prepared.train)
    if not full:
        return
    report.length_mean = round(sum(full) / len(full), 1)
    report.length_p50 = full[len(full) // 2]
    report.length_p95 = full[min(len(full) - 1, int(0.95 * len(full)))]
    report.length_max = full[-1]
    edges: list[int] = []
    edge = 16
    while edge < max_len:
        edges.append(edge)
        edge *= 2
    edges.append(max_len)
    counts = [0] * (len(edges) + 1)
    for n in full:
        k = next((i for i, e in enumerate(edges) if n <= e), len(edges))
        counts[k] += 1
    lows = [1] + [e + 1 for e in edges[:-1]]
    report.histogram = [(f"{lo}-{hi}", c) for lo, hi, c in zip(lows, edges, counts, strict=False)]
    report.histogram.append((f">{max_len} (truncated)", counts[-1]))


def run(
    job: JobSpec, *, hardware: Hardware = "here", cuda: bool | None = None, world: World | None = None
) -> Outcome:
    """Run every check; never raises for a user problem (they end up in ``report.errors``).

    Steps are estimated for ``world`` processes (this torchrun world) with ``hardware="here"``,
    and for the processes the operator will start with ``hardware="spec"``.
    """
    spec = job.spec
    report = Report(job=job.name, method=spec.method.type, max_seq_length=spec.hyperparameters.max_seq_length)
    method = methods.get(spec.method.type)
    here = cuda_available() if cuda is None else cuda
    will_have_cuda = (
        here and spec.resources.gpus_per_node > 0 if hardware == "here" else spec.resources.gpus_per_node > 0
    )
    report.device = "cuda" if will_have_cuda else "cpu"
    if hardware == "here" and spec.resources.gpus_per_node > 0 and not here:
        report.warnings.append(
            f"spec.resources.gpusPerNode is {spec.resources.gpus_per_node} but no CUDA GPU is visible; training runs on the CPU"
        )
    report.errors += _spec_checks(job, method, will_have_cuda)
    outcome = Outcome(report)
    try:
        loaded = dataset.load(spec, base_dir=job.base_dir)
    except UserError as exc:
        report.errors.append(str(exc))
        return outcome
    report.format = loaded.format
    report.dataset = str(loaded.files[0])
    report.dataset_sha256 = loaded.sha256
    report.rows = loaded.rows
    report.train_rows, report.validation_rows = len(loaded.train), len(loaded.validation)
    report.duplicates, report.overlap = loaded.duplicates, loaded.overlap
    report.errors += [str(p) for p in loaded.problems]
    errors, warnings = _data_checks(job, loaded)
    report.errors += errors
    report.warnings += warnings
    try:
        model = sources.resolve_model(spec.base_model)
        task: models.Task = "classification" if loaded.format == "classification" else "causal"
        trust = spec.base_model.trust_remote_code
        config = models.load_config(model.path, trust_remote_code=trust)
        if task == "causal" and not models.is_causal(config):
            raise UserError(
                f"spec.baseModel.uri {spec.base_model.uri} is a {config.model_type} encoder "
                f"({', '.join(getattr(config, 'architectures', None) or ['?'])}); {loaded.format} data needs a causal language model"
            )
        info = models.describe(model.path, task, len(loaded.label_names), trust_remote_code=trust)
        tokenizer = models.load_tokenizer(model.path, trust_remote_code=trust)
    except UserError as exc:
        report.errors.append(str(exc))
        return outcome
    report.model_type, report.parameters = info.model_type, info.parameters
    if info.max_positions and spec.hyperparameters.max_seq_length > info.max_positions:
        report.errors.append(
            f"spec.hyperparameters.maxSeqLength {spec.hyperparameters.max_seq_length} is above the base "
            f"model's {info.max_positions} positions; lower it to {info.max_positions} or less"
        )
    env = methods.Environment(task=task, cuda=will_have_cuda, base_path=str(model.path), info=info)
    report.errors += method.check(spec, env)
    if loaded.problems or not loaded.train:
        return outcome  # tokenising broken data would only repeat the same rows
    try:
        prepared = dataset.encode(loaded, spec, tokenizer)
    except UserError as exc:
        report.errors.append(str(exc))
        return outcome
    size = distributed.planned_size(spec) if hardware == "spec" or world is None else world.size
    _audit(report, prepared, job, size)
    report.sample = marked_sample(tokenizer, prepared)
    if report.passed:
        outcome.prepared, outcome.tokenizer, outcome.model = prepared, tokenizer, model
        outcome.method, outcome.env = method, env
    return outcome


def marked_sample(tokenizer: Any, prepared: Prepared) -> str | None:
    """The first training row as the model sees it, with the loss-carrying text in [[ ]]."""
    if not prepared.train or prepared.format == "classification":
        return None
    e = prepared.train[0]
    out: list[str] = []
    group: list[int] = []
    trained = False
    for token, label in zip(e.input_ids, e.labels, strict=True):
        now = label != encoding.IGNORE
        if now != trained and group:
            text = str(tokenizer.decode(group))
            out.append(f"[[{text}]]" if trained else text)
            group = []
        group.append(token)
        trained = now
    if group:
        text = str(tokenizer.decode(group))
        out.append(f"[[{text}]]" if trained else text)
    return "".join(out)


def _audit(report: Report, prepared: Prepared, job: JobSpec, world_size: int) -> None:
    spec = job.spec
    hp = spec.hyperparameters
    max_len = hp.max_seq_length
    train = prepared.train
    report.tokens = sum(e.length for e in train)
    report.trainable_tokens = sum(e.trainable for e in train if e.label is None)
    if prepared.format == "classification":
        report.trainable_tokens = report.tokens  # every token feeds the label
    report.truncated_rows = sum(1 for e in train if e.truncated)
    _lengths(report, prepared, max_len)
    if prepared.format == "preference":
        report.trainable_tokens = preference_checks.scored_tokens(train)
        report.errors += preference_checks.pair_errors(train + prepared.validation, max_len)
    for e in train + prepared.validation:
        if e.label is None and e.trainable == 0:
            report.zero_trainable_rows += 1
            why = (
                f"response truncated away: the response starts at token {e.response_start} of "
                f"{e.full_length} but spec.hyperparameters.maxSeqLength is {max_len}; raise maxSeqLength "
                "or shorten the prompt"
                if e.truncated and e.response_start is not None
                else "no trainable tokens after templating"
            )
            report.errors.append(f"{e.example.where}: {why}")
    batch_rows = (
        math.ceil(len(train) / hp.batch_size)
        if not hp.packing
        else math.ceil(report.tokens / max_len / hp.batch_size)
    )
    # each optimizer step takes accumulation x processes micro-batches (see loop)
    per_epoch, total = steps_for(
        batch_rows, hp.epochs, hp.max_steps, hp.gradient_accumulation_steps * world_size
    )
    report.steps_per_epoch, report.estimated_steps = per_epoch, total
    tokens_trained = report.tokens * (total / per_epoch)
    budget = spec.budget
    gpus = spec.resources.gpus_per_node * spec.resources.num_nodes
    est = pricing.estimate(
        parameters=report.parameters,
        tokens=int(tokens_trained),
        full=spec.method.type == "full",
        gpus=gpus,
        product=spec.resources.gpu_product,
        budget=budget,
    )
    report.estimated_seconds, report.estimated_gpu_hours = est.seconds, est.gpu_hours
    report.estimated_cost, report.currency = est.cost, est.currency
    if budget is not None:
        if budget.max_gpu_hours is not None and est.gpu_hours > budget.max_gpu_hours:
            report.errors.append(
                f"budget exceeded: the estimate is {est.gpu_hours:.2f} GPU-hours and spec.budget.maxGpuHours "
                f"is {budget.max_gpu_hours}; lower epochs or maxSteps, or raise the budget"
            )
        if budget.max_cost is not None and est.cost > budget.max_cost:
            report.errors.append(
                f"budget exceeded: the estimate is {est.cost:.2f} {est.currency} ({est.gpu_hours:.2f} GPU-hours at "
                f"{est.hourly_price:.2f}/h) and spec.budget.maxCost is {budget.max_cost}; lower epochs or maxSteps, or raise the budget"
            )
