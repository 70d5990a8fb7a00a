"""The price table and the compute estimate behind the preflight's GPU-hours and cost.

Training compute is estimated as ``k * parameters * tokens`` FLOPs (k = 6 when every weight
is trained, 4 when the base is frozen: no weight gradients), run at a fixed share of the
GPU's dense bf16 peak (model FLOPs utilisation). Prices are list prices per GPU-hour in USD,
overridable by ``spec.budget.gpuHourlyPrice``. An estimate, shown as one; pure arithmetic.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Gpu:
    name: str
    hourly_usd: float
    peak_flops: float  # dense bf16/fp16


GPUS: dict[str, Gpu] = {
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
DEFAULT_GPU = GPUS["NVIDIA-A100-SXM4-80GB"]
CPU_FLOPS = 50e9  # a few cores, fp32: only to give CPU runs a time estimate
MFU = 0.35


def gpu_for(product: str | None) -> Gpu:
    """The table entry for a ``nvidia.com/gpu.product`` label (prefix match), else the default."""
    if product:
        for name, gpu in GPUS.items():
            if product.lower().startswith(name.lower()) or name.lower().startswith(product.lower()):
                return gpu
    return DEFAULT_GPU


@dataclasses.dataclass(frozen=True)
class Estimate:
    seconds: float
    gpu_hours: float
    cost: float
    currency: str
    hourly_price: float


def estimate(
    *,
    parameters: int,
    tokens: int,
    full: bool,
    gpus: int,
    product: str | None,
    hourly_price: float | None,
    currency: str = "USD",
) -> Estimate:
    """Wall time, GPU-hours and cost of training on ``tokens`` tokens with ``gpus`` GPUs."""
    flops = (6 if full else 4) * parameters * tokens
    gpu = gpu_for(product)
    price = hourly_price if hourly_price is not None else gpu.hourly_usd
    if gpus <= 0:
        return Estimate(flops / CPU_FLOPS, 0.0, 0.0, currency, price)
    seconds = flops / (gpus * gpu.peak_flops * MFU)
    hours = seconds / 3600 * gpus
    return Estimate(seconds, hours, hours * price, currency, price)
