"""One price table and one cost function: the preflight's estimate, the trainer's reported cost
and the operator's live status.cost price a GPU-hour the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubetune.api.contract import pricing
from kubetune.api.v1alpha1 import FineTuneJob
from kubetune.api.v1alpha1.finetunejob import BudgetSpec
from kubetune.controllers.finetunejob import decide
from kubetune.controllers.settings import Settings

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
H100 = "NVIDIA-H100-80GB-HBM3"


def test_estimate_scales_with_gpus_and_prices_by_product() -> None:
    kw: dict[str, Any] = {"parameters": 10**9, "tokens": 10**9, "full": False, "budget": None}
    one = pricing.estimate(gpus=1, product=H100, **kw)
    two = pricing.estimate(gpus=2, product=H100, **kw)
    assert two.seconds == pytest.approx(one.seconds / 2)
    assert two.gpu_hours == pytest.approx(one.gpu_hours)
    assert one.cost == pytest.approx(one.gpu_hours * 4.0)
    own = BudgetSpec(gpu_hourly_price=1.0)
    full = pricing.estimate(parameters=10**9, tokens=10**9, full=True, gpus=1, product=None, budget=own)
    frozen = pricing.estimate(parameters=10**9, tokens=10**9, full=False, gpus=1, product=None, budget=own)
    assert full.gpu_hours == pytest.approx(1.5 * frozen.gpu_hours)
    assert pricing.estimate(gpus=0, product=None, **kw).cost == 0.0


def test_a_budget_price_overrides_the_table_and_an_unknown_gpu_gets_the_default_row() -> None:
    assert pricing.hourly_price(H100, None) == 4.0
    assert pricing.hourly_price("NVIDIA-H100", None) == 4.0  # prefix of the full label
    assert pricing.hourly_price("Some-New-GPU", None) == pricing.DEFAULT_GPU.hourly_usd == 2.0
    assert pricing.hourly_price(H100, BudgetSpec(gpu_hourly_price=1.5)) == 1.5
    assert pricing.cost(2.0, H100, BudgetSpec(gpu_hourly_price=1.5, currency="EUR")) == 3.0
    assert pricing.currency(BudgetSpec(currency="EUR")) == "EUR" and pricing.currency(None) == "USD"


def _live_cost(**resources: Any) -> tuple[float, float]:
    budget = resources.pop("budget", None)
    job = FineTuneJob.model_validate(
        {
            "apiVersion": "kubetune.io/v1alpha1",
            "kind": "FineTuneJob",
            "metadata": {"name": "bot", "namespace": "ml", "uid": "u1", "generation": 1},
            "spec": {
                "baseModel": {"uri": "pvc://data/model"},
                "dataset": {"uri": "pvc://data/train.jsonl"},
                "resources": {"gpusPerNode": 1, **resources},
                **({"budget": budget} if budget else {}),
            },
            "status": {"phase": "Training", "startTime": "2026-01-01T11:00:00Z"},
        }
    )
    started = (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    pod = {
        "metadata": {"name": "bot-train-0"},
        "status": {
            "startTime": started,
            "containerStatuses": [{"name": "trainer", "state": {"running": {}}}],
        },
    }
    seen = decide.Observed(
        preflight_job={"status": {"conditions": [{"type": "Complete", "status": "True"}]}},
        training_job={"spec": {}, "status": {"active": 1}},
        training_pods=[pod],
    )
    d = decide.decide(job, seen, Settings(default_registry="oci://registry.test/ml"), NOW)
    assert d.status.cost is not None
    return d.status.cost.gpu_hours, d.status.cost.amount


def test_the_operator_prices_a_gpu_hour_as_the_preflight_estimated_it() -> None:
    # Before the contract the operator had its own table: 6.9/h for an H100, 2.5/h by default.
    hours, amount = _live_cost(gpuProduct=H100)
    assert hours == pytest.approx(1.0) and amount == pytest.approx(pricing.hourly_price(H100, None)) == 4.0
    _, default = _live_cost()
    assert default == pytest.approx(pricing.DEFAULT_GPU.hourly_usd)
    _, own = _live_cost(gpuProduct=H100, budget={"gpuHourlyPrice": 1.25})
    assert own == pytest.approx(1.25)
