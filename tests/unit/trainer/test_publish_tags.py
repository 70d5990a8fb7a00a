"""The tag a run is pushed under: unique across namespaces and delete-and-recreate by default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubetune.api.v1alpha1.finetunejob import FineTuneJobSpec
from kubetune.trainer import publish
from kubetune.trainer.spec import JobSpec


def job_spec(uid: str | None, name: str = "bot", **output: Any) -> JobSpec:
    spec = FineTuneJobSpec.model_validate(
        {"baseModel": {"uri": "pvc://data/model"}, "dataset": {"uri": "pvc://data/t.jsonl"}, "output": output}
    )
    return JobSpec(
        spec=spec, name=name, namespace="ml", base_dir=Path("."), source="x", uid=uid, generation=3
    )


def test_a_re_created_job_of_the_same_name_gets_another_default_tag() -> None:
    first = publish.tag_for(job_spec("0f1e2d3c-aaaa-bbbb-cccc-000000000001"))
    second = publish.tag_for(job_spec("9a8b7c6d-aaaa-bbbb-cccc-000000000002"))
    assert first == "bot-3-0f1e2d3c" and second == "bot-3-9a8b7c6d"


def test_local_mode_has_no_uid_and_keeps_the_short_tag() -> None:
    assert publish.tag_for(job_spec(None)) == "bot-3"


def test_an_explicit_tag_wins_and_a_long_name_still_makes_a_valid_tag() -> None:
    assert publish.tag_for(job_spec("u", tag="v1")) == "v1"
    long = publish.tag_for(job_spec("0f1e2d3c-x", name="a" * 200))
    assert len(long) <= 128 and long.endswith("-3-0f1e2d3c")
