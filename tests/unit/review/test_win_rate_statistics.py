"""The win rate counts ties as half a win, and its Wilson interval matches published values and
scipy's implementation, and is never narrower than the exact spread of tie-half scores."""

from __future__ import annotations

import math

import pytest
from scipy import stats as scipy_stats

from kubetune.review import stats


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        # Newcombe (1998), Statistics in Medicine 17:857-872, table I, method 3 (Wilson, no correction)
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_interval_matches_newcombes_published_values(
    successes: int, n: int, low: float, high: float
) -> None:
    got = stats.wilson(successes, n, 0.95)
    assert got == (pytest.approx(low, abs=5e-5), pytest.approx(high, abs=5e-5))


@pytest.mark.parametrize(("k", "n", "level"), [(7, 10, 0.95), (3, 40, 0.9), (50, 50, 0.99), (12, 25, 0.8)])
def test_wilson_interval_matches_scipy(k: int, n: int, level: float) -> None:
    ci = scipy_stats.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    assert stats.wilson(k, n, level) == (pytest.approx(ci.low, abs=1e-12), pytest.approx(ci.high, abs=1e-12))


def test_ties_count_half_a_win() -> None:
    tally = stats.Tally(wins=6, losses=2, ties=2)
    assert tally.n == 10
    assert tally.win_rate == pytest.approx(0.7)
    assert tally.interval() == stats.wilson(7, 10)


def test_all_ties_is_even_and_the_interval_straddles_half() -> None:
    tally = stats.Tally(wins=0, losses=0, ties=8)
    low, high = tally.interval()
    assert tally.win_rate == 0.5 and low < 0.5 < high


def test_interval_with_ties_is_no_narrower_than_the_normal_interval_of_the_true_spread() -> None:
    # scores in {0, 1/2, 1}: variance (wins + ties/4)/n - p^2 is below the binomial p(1-p)
    tally = stats.Tally(wins=20, losses=10, ties=30)
    p, n = tally.win_rate, tally.n
    spread = math.sqrt(((tally.wins + tally.ties / 4) / n - p * p) / n)
    low, high = tally.interval()
    assert high - low > 2 * 1.959964 * spread


def test_unanimous_reviews_reach_the_edge_exactly() -> None:
    assert stats.Tally(wins=5, losses=0, ties=0).interval()[1] == 1.0
    assert stats.Tally(wins=0, losses=5, ties=0).interval()[0] == 0.0


def test_no_judgments_is_an_uninformative_interval() -> None:
    tally = stats.Tally(0, 0, 0)
    assert math.isnan(tally.win_rate) and tally.interval() == (0.0, 1.0)


def test_bad_confidence_and_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="confidence"):
        stats.wilson(1, 2, 1.0)
    with pytest.raises(ValueError, match="between 0 and n"):
        stats.wilson(3, 2)
