"""Review of a registered Adapter on a real API server and a real registry: ``kubetune review
export adapter/NAME`` pulls the Adapter's digest-pinned artifact (which carries the run's
``samples.jsonl``), and ``kubetune review import`` writes the win rate into the Adapter's
``status.humanReview`` (its spec is immutable), leaving the promotion state alone."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from kubetune.api.contract import samples
from kubetune.cli import main as cli
from kubetune.registry import devserver, store, transfer
from kubetune.review import blind, stats
from kubetune.testing import Cluster
from kubetune.testing.kube import Kube

ADAPTERS = "/apis/kubetune.io/v1alpha1/namespaces/{ns}/adapters"


@pytest.fixture
def registry_url(tmp_path: Path) -> Any:
    if devserver.find_binary() is None:
        message = "needs the docker-registry binary (apt-get install docker-registry)"
        if os.environ.get("KUBETUNE_REQUIRE_REGISTRY") == "1":
            pytest.fail(f"{message} (KUBETUNE_REQUIRE_REGISTRY=1 makes this an error)")
        pytest.skip(message)
    with devserver.DevRegistry(tmp_path / "registry") as server:
        yield f"oci://{server.host}"


def test_export_pulls_the_adapters_samples_and_import_writes_its_status(
    cluster: Cluster,
    kube: Kube,
    namespace: str,
    kubetune_crds: Any,
    registry_url: str,
    run_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    where = ["-n", namespace, "--kubeconfig", str(cluster.kubeconfig)]
    assert "adapters.kubetune.io" in kubetune_crds.installed
    artifact = tmp_path / "adapter"
    artifact.mkdir()
    (artifact / "adapter_config.json").write_text('{"peft_type": "LORA"}', encoding="utf-8")
    (artifact / samples.FILENAME).write_bytes((run_dir / samples.FILENAME).read_bytes())
    ref = transfer.push_directory(
        artifact,
        f"{registry_url}/adapters/bot:v1",
        {"baseModel": {"uri": "pvc://data/model"}, "method": "lora"},
        options=store.Options(insecure=True),
    )
    kube.create(
        ADAPTERS.format(ns=namespace),
        {
            "apiVersion": "kubetune.io/v1alpha1",
            "kind": "Adapter",
            "metadata": {"name": "bot-v1"},
            "spec": {
                "ref": str(ref),
                "baseModel": {"uri": "pvc://data/model"},
                "method": "lora",
                "dataset": {"uri": "pvc://d.jsonl", "sha256": "0" * 64},
                "seed": 1,
                "scorecard": {"primaryMetric": "loss", "primaryValue": 1.0, "gatePassed": True},
                "sourceJob": {"name": "bot", "namespace": namespace},
            },
        },
    )
    url = ADAPTERS.format(ns=namespace) + "/bot-v1"
    kube.patch(url + "/status", {"status": {"state": "stable", "deployments": [f"{namespace}/chat"]}})

    export = tmp_path / "export"
    argv = ["review", "export", "adapter/bot-v1", *where, "--insecure", "--seed", "5", "--out", str(export)]
    assert cli.main(argv) == 0
    key = blind.Key.model_validate_json((export / blind.KEY_FILE).read_text(encoding="utf-8"))
    assert key.source == {"adapter": {"namespace": namespace, "name": "bot-v1"}, "ref": str(ref)}
    assert len(key.items) == 10
    # a reviewer prefers the tuned answer on 6 prompts, the base on 3, and ties 1
    choices = (
        [e.tuned for e in key.items[:6]]
        + ["left" if e.tuned == "right" else "right" for e in key.items[6:9]]
        + ["tie"]
    )
    body = {
        "kind": "kubetune-review-ratings",
        "exportId": key.export_id,
        "reviewer": "bo",
        "ratings": [{"id": e.id, "choice": c} for e, c in zip(key.items, choices, strict=True)],
    }
    ratings = tmp_path / "ratings.json"
    ratings.write_text(json.dumps(body), encoding="utf-8")
    capsys.readouterr()
    assert (
        cli.main(
            [
                "review",
                "import",
                str(ratings),
                "--export",
                str(export),
                "--kubeconfig",
                str(cluster.kubeconfig),
            ]
        )
        == 0
    )
    assert f"Adapter {namespace}/bot-v1 status.humanReview" in capsys.readouterr().out

    status = (kube.get(url) or {})["status"]
    review = status["humanReview"]
    low, high = stats.wilson(6.5, 10)
    assert (review["wins"], review["losses"], review["ties"], review["items"]) == (6, 3, 1, 10)
    assert review["winRate"] == pytest.approx(0.65)
    assert review["low"] == pytest.approx(low, abs=1e-6) and review["high"] == pytest.approx(high, abs=1e-6)
    assert (
        review["exportId"] == key.export_id and review["reviewers"] == ["bo"] and review["method"] == "wilson"
    )
    assert status["state"] == "stable" and status["deployments"] == [f"{namespace}/chat"]


def test_export_of_a_missing_adapter_says_so(
    cluster: Cluster, namespace: str, kubetune_crds: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["review", "export", "adapter/nope", "-n", namespace, "--kubeconfig", str(cluster.kubeconfig)]
    assert cli.main(argv) == 1
    assert f"Adapter {namespace}/nope not found" in capsys.readouterr().err
