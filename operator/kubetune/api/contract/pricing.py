"""GPU prices and the one cost function: the preflight's estimate, the trainer's reported cost
and the operator's live ``status.cost`` all price a GPU-hour here.

Prices are list prices per GPU-hour in USD by ``nvidia.com/gpu.product`` label (prefix
match), the default row when the product is unknown or unset; ``spec.budget.gpuHourlyPrice``
overrides them. Training compute is estimated as ``k * parameters * tokens`` FLOPs (k = 6 when
every weight is trained, 4 when the base is frozen: no weight gradients), run at a fixed share
of the GPU's dense bf16 peak (model FLOPs utilisation). Estimates, shown as such; pure arithmetic.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from kubetune.api.v1alpha1.finetunejob import BudgetSpec


@dataclasses.dataclass(frozen=True)
class Gpu:
    name: str
    hourly_usd: float
    peak_flops: float  # dense bf16/fp16


GPUS: Final[dict[str, Gpu]] = {
    g.name: g
    for g in (
        Gpu("NVIDIA-H200", 4.50, 989e12),
        Gpu("NVIDIA-H100-80GB-HBM3", 4.00, 989e12),
        Gpu("NVIDIA-A100-SXM4-80GB", 2.00, 312e12),
        Gpu("NVIDIA-A100-SXM4-40GB", 1.60, 312e12),
        Gpu("NVIDIA-L40S", 1.40, 362e12),
        Gpu("NVIDIA-A10G", 1.00, 70e12),
        Gpu("NVIDIA-L4", 0.80, 121e12),
        Gpu("Tesla-T4", 0.50, 65e12),
    )
}
DEFAULT_GPU: Final = GPUS["NVIDIA-A100-SXM4-80GB"]
CPU_FLOPS: Final = 50e9  # a few cores, fp32: only to give CPU runs a time estimate
MFU: Final = 0.35


def gpu_for(product: str | None) -> Gpu:
    """The table entry for a ``nvidia.com/gpu.product`` label (prefix match), else the default."""
    if product:
        for name, gpu in GPUS.items():
            if product.lower().startswith(name.lower()) or name.lower().startswith(product.lower()):
                return gpu
    return DEFAULT_GPU


def hourly_price(product: str | None, budget: BudgetSpec | None) -> float:
    """Price of one GPU-hour: ``spec.budget.gpuHourlyPrice`` when set, else the table's."""
    if budget is not None and budget.gpu_hourly_price is not None:
        return budget.gpu_hourly_price
    return gpu_for(product).hourly_usd


def currency(budget: BudgetSpec | None) -> str:
    return budget.currency if budget is not None else "USD"


def cost(gpu_hours: float, product: str | None, budget: BudgetSpec | None) -> float:
    """What ``gpu_hours`` GPU-hours of ``product`` cost, in :func:`currency`."""
    return gpu_hours * hourly_price(product, budget)


@dataclasses.dataclass(frozen=True)
class Estimate:
    seconds: float
    gpu_hours: float
    cost: float
    currency: str
    hourly_price: float


def estimate(
    *, parameters: int, tokens: int, full: bool, gpus: int, product: str | None, budget: BudgetSpec | None
) -> Estimate:
    """Wall time, GPU-hours and cost of training on ``tokens`` tokens with ``gpus`` GPUs."""
    flops = (6 if full else 4) * parameters * tokens
    price = hourly_price(product, budget)
    if gpus <= 0:
        return Estimate(flops / CPU_FLOPS, 0.0, 0.0, currency(budget), price)
    seconds = flops / (gpus * gpu_for(product).peak_flops * MFU)
    hours = seconds / 3600 * gpus
    return Estimate(seconds, hours, cost(hours, product, budget), currency(budget), price)
