"""Win rate of the tuned model over the base model, with a Wilson score interval.

A judgment is a win (tuned preferred), a loss (base preferred) or a tie. The win rate counts a
tie as half a win, ``(wins + ties/2) / n``: the convention of pairwise leaderboards (Chatbot
Arena, AlpacaEval), so 50% means "no better than base" whether reviewers tie or split, and
ties cannot be dropped to flatter a model. Counts are always reported beside it.

The interval is Wilson's score interval (Wilson 1927; Newcombe 1998, method 3) at the given
confidence, computed with the tie-half score as the observed proportion over ``n`` judgments.
For scores in {0, 1/2, 1} the variance ``(wins + ties/4)/n - p^2`` never exceeds the binomial
``p(1 - p)``, so the interval is exact Wilson without ties and conservative (wider) with them.
Wilson rather than the normal (Wald) interval because reviews are small (tens of prompts) and
rates near 0 or 1 are common; rather than a bootstrap because it needs no random draws and gives
the same numbers everywhere. Pure functions.
"""

from __future__ import annotations

import dataclasses
import math
from statistics import NormalDist


def z_for(confidence: float) -> float:
    """The two-sided normal quantile for ``confidence`` (0.95 -> 1.95996...)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(successes: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of the proportion ``successes / n``; (0, 1) when ``n`` is 0."""
    if n <= 0:
        return 0.0, 1.0
    if not 0.0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n={n}, got {successes}")
    z = z_for(confidence)
    p = successes / n
    z2n = z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    half = z * math.sqrt(p * (1 - p) / n + z2n / (4 * n)) / (1 + z2n)
    # exact at the edges (the formula gives them up to rounding)
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


@dataclasses.dataclass(frozen=True)
class Tally:
    """Counts of one review, from the tuned model's side."""

    wins: int
    losses: int
    ties: int

    @property
    def n(self) -> int:
        return self.wins + self.losses + self.ties

    @property
    def win_rate(self) -> float:
        """``(wins + ties/2) / n``; NaN without judgments."""
        return (self.wins + self.ties / 2) / self.n if self.n else math.nan

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        return wilson(self.wins + self.ties / 2, self.n, confidence)
