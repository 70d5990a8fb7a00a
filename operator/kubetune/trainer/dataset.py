"""The training data of one job: read, checked, split and tokenised.

Two steps, so that the preflight can report broken rows before any tokenizer is loaded:
:func:`load` reads the dataset file(s), detects the format and parses every row (collecting
every problem), splits off the validation rows deterministically from the seed, and counts
duplicates and train/validation overlap; :func:`encode` renders and tokenises the splits.
No model, no torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from pathlib import Path
from typing import Any

from kubetune.api.v1alpha1.finetunejob import FineTuneJobSpec
from kubetune.trainer import encoding, formats, records, sources
from kubetune.trainer.encoding import Encoded
from kubetune.trainer.formats import Example, Format
from kubetune.trainer.records import RowProblem
from kubetune.trainer.templates import Rendered, Renderer


@dataclasses.dataclass
class Loaded:
    """Parsed rows of the job's dataset, split into train and validation."""

    format: Format
    train: list[Example]
    validation: list[Example]
    problems: list[RowProblem]
    rows: int
    files: list[Path]
    sha256: str
    duplicates: int
    overlap: int
    label_names: list[str]


@dataclasses.dataclass
class Prepared:
    """Tokenised splits, ready for batching."""

    loaded: Loaded
    train: list[Encoded]
    validation: list[Encoded]
    validation_rendered: list[Rendered]

    @property
    def format(self) -> Format:
        return self.loaded.format


def _digest(files: list[Path]) -> str:
    hashes = [sources.file_sha256(f) for f in files]
    if len(hashes) == 1:
        return hashes[0]
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


def _display(path: Path, base: Path | None) -> str:
    if base is not None:
        try:
            return str(path.resolve().relative_to(base))
        except ValueError:
            pass
    return str(path)


def load(spec: FineTuneJobSpec, *, base_dir: Path | None = None) -> Loaded:
    """Read and parse the dataset; problems are collected, not raised (except missing files)."""
    ds = spec.dataset
    train_file = sources.resolve_dataset(ds.uri)
    files = [train_file]
    rows, problems = records.read(train_file, display=_display(train_file, base_dir))
    val_rows: list[records.Row] = []
    if ds.validation_uri:
        val_file = sources.resolve_dataset(ds.validation_uri, "spec.dataset.validationUri")
        files.append(val_file)
        val_rows, val_problems = records.read(val_file, display=_display(val_file, base_dir))
        problems += val_problems
    columns = formats.Columns.from_spec(ds.fields)
    fmt: Format
    if ds.format == "auto":
        fmt = formats.detect(rows or val_rows, columns) if (rows or val_rows) else "text"
    else:
        fmt = ds.format
    train, bad = formats.parse(rows, fmt, columns)
    validation, bad_val = formats.parse(val_rows, fmt, columns)
    problems += bad + bad_val
    total = len(rows) + len(val_rows) + len(problems)
    if not ds.validation_uri:
        train, validation = split(train, ds.validation_split, spec.hyperparameters.seed)
    seen: set[str] = set()
    duplicates = 0
    for ex in train:
        if ex.key in seen:
            duplicates += 1
        seen.add(ex.key)
    overlap = sum(1 for ex in validation if ex.key in seen)
    names = formats.label_names(train + validation) if fmt == "classification" else []
    return Loaded(
        format=fmt,
        train=train,
        validation=validation,
        problems=problems,
        rows=total,
        files=files,
        sha256=_digest(files),
        duplicates=duplicates,
        overlap=overlap,
        label_names=names,
    )


def split(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Hold out ``fraction`` of the rows, chosen by ``seed``; both parts keep file order."""
    if fraction <= 0 or len(examples) < 2:
        return list(examples), []
    count = min(len(examples) - 1, max(1, round(len(examples) * fraction)))
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    held = set(order[:count])
    train = [e for i, e in enumerate(examples) if i not in held]
    validation = [e for i, e in enumerate(examples) if i in held]
    return train, validation


def encode(loaded: Loaded, spec: FineTuneJobSpec, tokenizer: Any) -> Prepared:
    """Render and tokenise both splits with ``tokenizer``."""
    max_len = spec.hyperparameters.max_seq_length
    if loaded.format == "preference":
        from kubetune.trainer.preference import data as preference_data

        pairs, val_pairs = preference_data.encode(loaded.train, loaded.validation, spec, tokenizer)
        return Prepared(loaded, [*pairs], [*val_pairs], [])
    if loaded.format == "classification":
        label_ids = {n: i for i, n in enumerate(loaded.label_names)}
        train = encoding.encode_classification(tokenizer, loaded.train, label_ids, max_len)
        val = encoding.encode_classification(tokenizer, loaded.validation, label_ids, max_len)
        return Prepared(loaded, train, val, [])
    renderer = Renderer(tokenizer, spec.dataset.prompt_template, spec.method.train_on_inputs)
    train_r = [renderer.render(e) for e in loaded.train]
    val_r = [renderer.render(e) for e in loaded.validation]
    train = encoding.encode_causal(tokenizer, loaded.train, train_r, max_len)
    val = encoding.encode_causal(tokenizer, loaded.validation, val_r, max_len)
    return Prepared(loaded, train, val, val_r)
