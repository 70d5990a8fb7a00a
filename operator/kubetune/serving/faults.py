"""Fault injection for canary tests: a share of requests fail, every request gets extra latency.

``--fault-error-rate 0.3`` answers that share of generate/chat requests with HTTP 500 and TGI's
``incomplete_generation`` error (counted as ``tgi_request_failure{err="incomplete"}``);
``--fault-latency-ms 200`` adds that many milliseconds to each request, inside its measured
inference time. A bad canary is then one flag away. Only draws decisions; the HTTP layer acts on them.
"""

from __future__ import annotations

import random


class Faults:
    def __init__(self, error_rate: float = 0.0, latency_ms: float = 0.0, seed: int | None = None) -> None:
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError(f"error rate must be in [0, 1], got {error_rate}")
        if latency_ms < 0:
            raise ValueError(f"latency must not be negative, got {latency_ms}")
        self.error_rate = error_rate
        self.latency_s = latency_ms / 1000.0
        self._random = random.Random(seed)

    @property
    def active(self) -> bool:
        return self.error_rate > 0 or self.latency_s > 0

    def should_fail(self) -> bool:
        """One draw per request; exact at the extremes (0 never, 1 always)."""
        if self.error_rate <= 0.0:
            return False
        return self.error_rate >= 1.0 or self._random.random() < self.error_rate
