"""The trainer reads a whole FineTuneJob or a bare spec, resolves relative paths from the
file's directory, and reports invalid specs in one line naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubetune.trainer import spec as job_spec
from kubetune.trainer.errors import UserError

JOB = """apiVersion: kubetune.io/v1alpha1
kind: FineTuneJob
metadata: {name: demo, namespace: ml}
spec:
  baseModel: {uri: ../models/tiny}
  dataset: {uri: ./data/train.jsonl, validationUri: data/val.jsonl}
  output: {repository: ./registry}
"""


def test_relative_paths_resolve_from_the_spec_file(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "job.yaml").write_text(JOB)
    job = job_spec.load(tmp_path / "jobs" / "job.yaml")
    assert (job.name, job.namespace) == ("demo", "ml")
    assert job.spec.base_model.uri == str(tmp_path / "models" / "tiny")
    assert job.spec.dataset.uri == str(tmp_path / "jobs" / "data" / "train.jsonl")
    assert job.spec.dataset.validation_uri == str(tmp_path / "jobs" / "data" / "val.jsonl")
    assert job.spec.output.repository == str(tmp_path / "jobs" / "registry")


def test_a_bare_spec_as_mounted_in_a_pod_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(
        "baseModel: {uri: hf://org/model@main}\ndataset: {uri: pvc://data/train.jsonl}\n"
    )
    job = job_spec.load(tmp_path / "spec.yaml", name="from-pod")
    assert job.name == "from-pod"
    assert job.spec.base_model.uri == "hf://org/model@main"  # remote URIs are left alone
    assert job.spec.dataset.uri == "pvc://data/train.jsonl"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            JOB.replace(
                "baseModel: {uri: ../models/tiny}",
                "baseModel: {uri: ../models/tiny}\n  method: {type: lora, lora: {r: 0}}",
            ),
            "spec.method.lora.r: must be >= 1",
        ),
        (JOB.replace("dataset:", "datset:"), "likely a typo of 'dataset'"),
        (
            "kind: FineTuneJob\napiVersion: kubetune.io/v1alpha1\nmetadata: {name: x}\nspec: [\n",
            "invalid YAML",
        ),
        ("just text\n", "no FineTuneJob found"),
    ],
)
def test_invalid_specs_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=message) as info:
        job_spec.load(path)
    assert "\n" not in str(info.value)


def test_a_pod_refuses_a_spec_written_for_another_job(tmp_path: Path) -> None:
    from kubetune.trainer.__main__ import main

    path = tmp_path / "spec.yaml"
    path.write_text(JOB.replace("namespace: ml}", "namespace: ml, uid: u-someone-else}"))
    job = job_spec.load(path)
    job_spec.check_owner(job, {})  # outside a pod: nothing to compare with
    job_spec.check_owner(job, {"KUBETUNE_JOB_UID": "u-someone-else"})
    with pytest.raises(UserError, match="belongs to FineTuneJob uid u-someone-else, not to uid u-mine"):
        job_spec.check_owner(job, {"KUBETUNE_JOB_UID": "u-mine"})
    # the entry point: exit 1 (not retried) with the reason in the termination log
    log = tmp_path / "termination-log"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KUBETUNE_JOB_UID", "u-mine")
        code = main(
            [
                "preflight",
                "--spec",
                str(path),
                "--output",
                str(tmp_path / "out"),
                "--progress",
                "none",
                "--termination-log",
                str(log),
            ]
        )
    assert code == 1
    assert "not to uid u-mine" in log.read_text()
