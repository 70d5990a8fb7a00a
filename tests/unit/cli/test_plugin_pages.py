"""The pages and decisions of ``kubectl kubetune`` that need no cluster: the Adapter page, the
Adapter diff, which pod ``logs`` reads, and what each writing verb patches."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest

from kubetune.cli import plugin, status
from kubetune.clients import kube as kubeclient


def _adapter(
    name: str, *, seed: int = 42, r: int = 8, tuned: float = 1.5, gate: bool = True
) -> dict[str, Any]:
    return {
        "kind": "Adapter",
        "metadata": {"name": name, "namespace": "ml"},
        "spec": {
            "ref": f"oci://reg/adapters/{name}@sha256:{'a' * 64}",
            "baseModel": {"uri": "hf://org/base"},
            "method": "lora",
            "methodConfig": {"r": r, "targetModules": ["q_proj", "v_proj"]},
            "hyperparameters": {"epochs": 2},
            "dataset": {"uri": "s3://b/train.jsonl", "sha256": "f" * 64},
            "seed": seed,
            "scorecard": {
                "primaryMetric": "rougeL",
                "primaryValue": tuned,
                "gatePassed": gate,
                "metrics": [{"name": "rougeL", "base": 0.5, "tuned": tuned, "delta": tuned - 0.5}],
            },
            "sourceJob": {"name": "support", "namespace": "ml"},
        },
        "status": {"state": "stable", "deployments": ["chat"]},
    }


def test_adapter_page_shows_ref_lineage_scorecard_and_who_serves_it() -> None:
    page = status.render_any(_adapter("support-v1"))
    assert page.splitlines()[0] == "Adapter ml/support-v1"
    assert "State:       stable   served by chat" in page
    assert "Dataset:     s3://b/train.jsonl (sha256 ffffffffffff)" in page
    assert 'lora.targetModules: ["q_proj", "v_proj"]' in page
    assert "From:        FineTuneJob ml/support" in page
    assert "Scorecard:   rougeL = 1.5   gate passed" in page


def test_diff_prints_only_differing_lineage_and_every_metric_with_b_minus_a() -> None:
    out = status.render_adapter_diff(
        _adapter("a", seed=1, r=8, tuned=0.5), _adapter("b", seed=2, r=8, tuned=0.75)
    )
    rows = [line.split() for line in out.splitlines()]
    assert ["Seed", "1", "2"] in rows
    assert not any(row[:1] == ["lora.r"] for row in rows)  # same r: counted, not printed
    assert ["rougeL", "0.5", "0.75", "0.25"] in rows
    assert any("lineage rows identical" in line for line in out.splitlines())


def test_diff_of_a_metric_only_one_side_has_shows_a_dash() -> None:
    b = _adapter("b")
    b["spec"]["scorecard"]["metrics"].append({"name": "bleu", "base": 0.1, "tuned": 0.2})
    rows = [line.split() for line in status.render_adapter_diff(_adapter("a"), b).splitlines()]
    assert ["bleu", "-", "0.2", "-"] in rows


def _pod(name: str, created: str, index: int | None = None) -> dict[str, Any]:
    labels = {} if index is None else {plugin.LABEL_INDEX: str(index)}
    return {"metadata": {"name": name, "creationTimestamp": created, "labels": labels}}


def test_logs_read_the_newest_pod_of_the_rank_asked_for() -> None:
    pods = [
        _pod("j-0-old", "2026-01-01T00:00:00Z", 0),
        _pod("j-1", "2026-01-01T00:00:01Z", 1),
        _pod("j-0-retry", "2026-01-01T00:05:00Z", 0),
    ]
    assert plugin.pick_pod(pods, 0)["metadata"]["name"] == "j-0-retry"  # type: ignore[index]
    assert plugin.pick_pod(pods, 1)["metadata"]["name"] == "j-1"  # type: ignore[index]
    assert plugin.pick_pod(pods, 2) is None


def test_a_single_node_job_has_only_rank_zero() -> None:
    pods = [_pod("j-abc", "2026-01-01T00:00:00Z")]
    assert plugin.pick_pod(pods, 0) is pods[0]
    assert plugin.pick_pod(pods, 1) is None
    assert plugin.pick_pod([], 0) is None


@pytest.mark.parametrize(
    ("verb", "full", "kind", "patch"),
    [
        ("promote", False, "ModelDeployment", {"metadata": {"annotations": {"kubetune.io/promote": "true"}}}),
        ("promote", True, "ModelDeployment", {"metadata": {"annotations": {"kubetune.io/promote": "full"}}}),
        ("abort", False, "ModelDeployment", {"metadata": {"annotations": {"kubetune.io/abort": "true"}}}),
        ("suspend", False, "FineTuneJob", {"spec": {"suspend": True}}),
        ("resume", False, "FineTuneJob", {"spec": {"suspend": False}}),
    ],
)
def test_each_writing_verb_is_one_merge_patch_of_the_existing_api(
    verb: str, full: bool, kind: str, patch: dict[str, Any]
) -> None:
    got_kind, got_patch, _ = plugin.change(verb, full)
    assert (got_kind, got_patch) == (kind, patch)
    words = shlex.split(plugin.kubectl_patch(kind, "ml", "x", got_patch))
    assert words[:4] == ["kubectl", "patch", f"{plugin.RESOURCES[kind]}.kubetune.io", "x"]
    assert "--type=merge" in words and f"--field-manager={plugin.FIELD_MANAGER}" in words
    assert json.loads(words[-1]) == patch


def test_the_annotations_are_the_ones_the_controller_reads() -> None:
    from kubetune.controllers.modeldeployment import canary

    assert (plugin.PROMOTE_ANNOTATION, plugin.ABORT_ANNOTATION) == (
        canary.PROMOTE_ANNOTATION,
        canary.ABORT_ANNOTATION,
    )


def test_dry_run_prints_the_kubectl_command_without_a_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    code = plugin.main(["suspend", "job", "-n", "ml", "--kubeconfig", "/nonexistent", "--dry-run"])
    assert code == 0
    assert capsys.readouterr().out.startswith("kubectl patch finetunejobs.kubetune.io job -n ml ")


def test_an_unreadable_kubeconfig_is_one_line_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert plugin.main(["status", "ftj", "x", "-n", "ml", "--kubeconfig", "/nonexistent"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--kubeconfig" in err[0]


def test_namespace_defaults_to_the_kubeconfig_contexts(tmp_path: Any) -> None:
    cfg = tmp_path / "config"
    cfg.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {}}],
                "contexts": [
                    {"name": "one", "context": {"cluster": "c", "user": "u", "namespace": "team-a"}},
                    {"name": "two", "context": {"cluster": "c", "user": "u"}},
                ],
                "current-context": "one",
            }
        )
    )
    assert kubeclient.context_namespace(str(cfg)) == "team-a"
    assert kubeclient.context_namespace(str(cfg), "two") is None
    assert kubeclient.context_namespace(str(tmp_path / "missing")) is None
