"""Reading a FineTuneJob for the trainer: from a YAML file, validated by the API models.

The file may hold a whole FineTuneJob (what ``kubetune run`` reads) or only its ``spec`` (what
the operator mounts into a training pod). Relative local paths in the spec are resolved from
the file's directory, so a spec works from any working directory. Problems are reported with
the same messages as ``kubetune validate``. In a pod, :func:`check_owner` refuses a spec written
for another FineTuneJob than the one the pod was started for. Reads one file; no network, no torch.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from kubetune.api import errors as api_errors
from kubetune.api.contract import pod
from kubetune.api.v1alpha1.finetunejob import FineTuneJob, FineTuneJobSpec
from kubetune.trainer.errors import UserError


@dataclasses.dataclass(frozen=True)
class JobSpec:
    """A validated spec with where it came from."""

    spec: FineTuneJobSpec
    name: str
    namespace: str | None
    base_dir: Path
    source: str
    uid: str | None = None
    generation: int | None = None


def load(path: str | Path, *, name: str | None = None) -> JobSpec:
    """Read and validate ``path``; raise :class:`UserError` naming the file and the field."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{file}: no such file") from None
    except UnicodeDecodeError:
        raise UserError(f"{file}: not UTF-8; save the file as UTF-8") from None
    except OSError as exc:
        raise UserError(f"{file}: cannot read: {exc.strerror}") from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise UserError(f"{file}{line}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    jobs = [d for d in docs if isinstance(d, dict) and d.get("kind") == "FineTuneJob"]
    if len(jobs) > 1:
        raise UserError(f"{file}: holds {len(jobs)} FineTuneJobs; put one per file")
    if jobs:
        return _from_manifest(jobs[0], file, name)
    if len(docs) == 1 and isinstance(docs[0], dict):
        return _from_spec(docs[0], file, name)
    raise UserError(f"{file}: no FineTuneJob found (expected kind: FineTuneJob, or a bare spec mapping)")


def _from_manifest(obj: dict[str, Any], file: Path, name: str | None) -> JobSpec:
    _, problems = api_errors.validate_manifest(obj)
    if problems:
        raise UserError(_problems_line(file, [str(p) for p in problems]))
    job = FineTuneJob.model_validate(obj)
    meta = job.metadata
    return JobSpec(
        spec=resolve_paths(job.spec, file.parent),
        name=name or meta.name or file.stem,
        namespace=meta.namespace,
        base_dir=file.parent.resolve(),
        source=str(file),
        uid=meta.uid,
        generation=meta.generation,
    )


def _from_spec(obj: dict[str, Any], file: Path, name: str | None) -> JobSpec:
    body = obj.get("spec", obj) if set(obj) <= {"spec", "metadata"} else obj
    try:
        spec = FineTuneJobSpec.model_validate(body)
    except ValidationError as exc:
        problems = api_errors.problems_from(exc, FineTuneJobSpec, prefix=("spec",))
        raise UserError(_problems_line(file, [str(p) for p in problems])) from None
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    return JobSpec(
        spec=resolve_paths(spec, file.parent),
        name=name or str(meta.get("name") or file.stem),
        namespace=meta.get("namespace"),
        base_dir=file.parent.resolve(),
        source=str(file),
        uid=meta.get("uid"),
        generation=meta.get("generation"),
    )


def check_owner(job: JobSpec, env: Mapping[str, str] | None = None) -> None:
    """Refuse a spec whose ``metadata.uid`` is not the FineTuneJob this pod runs for.

    The operator mounts the ConfigMap ``<job>-spec``; if that name was taken by someone else's
    ConfigMap, its spec must not be trained on (nor its result reported as this job's). Outside
    a pod (no ``$KUBETUNE_JOB_UID``) there is nothing to check.
    """
    expected = (os.environ if env is None else env).get(pod.JOB_UID)
    if not expected or job.uid == expected:
        return
    raise UserError(
        f"{job.source}: this spec belongs to FineTuneJob uid {job.uid or '(none)'}, not to uid "
        f"{expected} that this pod runs for; the spec ConfigMap is not this job's: delete it and "
        "re-create the FineTuneJob"
    )


def from_model(spec: FineTuneJobSpec, *, name: str, base_dir: Path | None = None) -> JobSpec:
    """Wrap an in-memory spec (tests, local mode); relative paths resolve from ``base_dir``."""
    base = (base_dir or Path.cwd()).resolve()
    return JobSpec(
        spec=resolve_paths(spec, base), name=name, namespace=None, base_dir=base, source="<memory>"
    )


def _problems_line(file: Path, problems: list[str]) -> str:
    # a misspelled field also makes the real one "missing": name the typo first
    problems = sorted(problems, key=lambda p: "likely a typo" not in p)
    more = f" (and {len(problems) - 1} more; run kubetune validate {file})" if len(problems) > 1 else ""
    return f"{file}: invalid FineTuneJob: {problems[0]}{more}"


def is_local_path(uri: str) -> bool:
    """Whether ``uri`` names a file on this machine (a path or file://)."""
    return uri.startswith(("/", "./", "../", "file://")) or "://" not in uri


def _resolve(uri: str, base: Path) -> str:
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    if "://" in uri:
        return uri
    path = Path(uri).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def resolve_paths(spec: FineTuneJobSpec, base: Path) -> FineTuneJobSpec:
    """A copy of ``spec`` whose local paths are absolute, relative ones taken from ``base``."""
    data = spec.model_copy(deep=True)
    data.base_model.uri = _resolve(data.base_model.uri, base)
    data.dataset.uri = _resolve(data.dataset.uri, base)
    if data.dataset.validation_uri:
        data.dataset.validation_uri = _resolve(data.dataset.validation_uri, base)
    repo = data.output.repository
    if repo and not repo.startswith("oci://"):
        data.output.repository = _resolve(repo, base)
    return data
