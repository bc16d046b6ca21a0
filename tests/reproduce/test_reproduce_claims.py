"""The verdict rules of reproduce.claims on hand-made intervals, and the 95% t-interval over seeds."""

from __future__ import annotations

import math

import pytest

from reproduce.claims import (
    VERDICTS,
    Claim,
    Interval,
    Outcome,
    PerSeed,
    Verdict,
    above,
    best,
    combine,
    gain,
    near,
    ordered,
    share,
    worst,
)
from reproduce.lc import CLAIMS as LC_CLAIMS
from reproduce.lc import POLICIES


def iv(mean: float, half: float) -> Interval:
    return Interval(mean, mean - half, mean + half, 5)


def test_interval_is_the_student_t_interval_of_the_mean():
    got = Interval.of([1.0, 2.0, 3.0, 4.0, 5.0])
    # mean 3, sample sd sqrt(2.5), t(0.975, 4) = 2.7764451
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)
    assert got.mean == 3.0 and got.n == 5
    assert got.low == pytest.approx(3.0 - half) and got.high == pytest.approx(3.0 + half)
    assert Interval.of([2.0]) == Interval(2.0, 2.0, 2.0, 1)
    with pytest.raises(ValueError):
        Interval.of([])


def test_verdict_words_are_the_three_allowed():
    assert VERDICTS == ("reproduced", "partly", "not reproduced")


def test_a_verdict_short_of_reproduced_needs_a_reason():
    with pytest.raises(ValueError, match="reason"):
        Outcome(Verdict.PARTLY, "x")
    Outcome(Verdict.REPRODUCED, "x")


def test_best_separated_overlapping_and_beaten():
    assert best({"a": iv(1, 0.1), "b": iv(2, 0.1)}, "a", False, "cost").verdict == Verdict.REPRODUCED
    partly = best({"a": iv(1, 0.6), "b": iv(2, 0.6)}, "a", False, "cost")
    assert partly.verdict == Verdict.PARTLY and "overlaps b" in partly.reason
    beaten = best({"a": iv(3, 0.1), "b": iv(2, 0.1)}, "a", False, "cost")
    assert beaten.verdict == Verdict.NOT_REPRODUCED and "b has a better mean cost" in beaten.reason
    assert best({"a": iv(3, 0.1), "b": iv(2, 0.1)}, "a", True, "utility").verdict == Verdict.REPRODUCED


def test_worst():
    values = {"r": iv(10, 1), "g": iv(9, 1), "m": iv(2, 1)}
    assert worst(values, ["r", "g"], False, "latency").verdict == Verdict.REPRODUCED
    values["m"] = iv(8, 1)
    assert worst(values, ["r", "g"], False, "latency").verdict == Verdict.PARTLY
    values["m"] = iv(11, 1)
    assert worst(values, ["r", "g"], False, "latency").verdict == Verdict.NOT_REPRODUCED


def test_ordered_exact_overlapping_one_swap_and_wrong():
    order = ["a", "b", "c"]
    assert ordered({"a": iv(1, 0.1), "b": iv(2, 0.1), "c": iv(3, 0.1)}, order, "x").verdict == Verdict.REPRODUCED
    assert ordered({"a": iv(1, 0.8), "b": iv(2, 0.8), "c": iv(3, 0.1)}, order, "x").verdict == Verdict.PARTLY
    swap = ordered({"a": iv(2, 0.1), "b": iv(1, 0.1), "c": iv(3, 0.1)}, order, "x")
    assert swap.verdict == Verdict.PARTLY and "swapped (a and b)" in swap.reason
    wrong = ordered({"a": iv(3, 0.1), "b": iv(2, 0.1), "c": iv(1, 0.1)}, order, "x")
    assert wrong.verdict == Verdict.NOT_REPRODUCED and "c 1 < b 2 < a 3" in wrong.reason
    tied = ordered({"a": iv(1, 0.1), "b": iv(1, 0.1), "c": iv(1, 0.1)}, order, "x")  # equal means are not an order
    assert tied.verdict == Verdict.NOT_REPRODUCED and "a 1 = b 1 = c 1" in tied.ours


def test_gain_near_above():
    assert gain(iv(7.0, 2.0), 6.98, "g").verdict == Verdict.REPRODUCED
    assert gain(iv(20.0, 2.0), 6.98, "g").verdict == Verdict.REPRODUCED  # above the paper's gain
    assert gain(iv(2.0, 1.0), 6.98, "g").verdict == Verdict.PARTLY  # a gain, smaller
    assert gain(iv(2.0, 3.0), 6.98, "g").verdict == Verdict.PARTLY  # interval includes 0
    assert gain(iv(-1.0, 0.5), 6.98, "g").verdict == Verdict.NOT_REPRODUCED
    assert near(iv(0.97, 0.001), 0.98, 0.02, 0.05, "c").verdict == Verdict.REPRODUCED
    assert near(iv(0.94, 0.001), 0.98, 0.02, 0.05, "c").verdict == Verdict.PARTLY
    assert near(iv(0.80, 0.001), 0.98, 0.02, 0.05, "c").verdict == Verdict.NOT_REPRODUCED
    assert above(iv(1.0, 0.5), 0.0, "x").verdict == Verdict.REPRODUCED
    assert above(iv(1.0, 2.0), 0.0, "x").verdict == Verdict.PARTLY
    assert above(iv(-1.0, 0.5), 0.0, "x").verdict == Verdict.NOT_REPRODUCED


def test_combine_takes_the_weakest_and_share_counts_points():
    ok, half, bad = (
        Outcome(Verdict.REPRODUCED, "a"),
        Outcome(Verdict.PARTLY, "b", "why b"),
        Outcome(Verdict.NOT_REPRODUCED, "c", "why c"),
    )
    assert combine([ok, half]).verdict == Verdict.PARTLY and combine([ok, half]).reason == "why b"
    assert combine([ok, bad, half]).verdict == Verdict.NOT_REPRODUCED
    assert share([ok, ok], "s", "w").verdict == Verdict.REPRODUCED
    assert share([ok, half, bad], "s", "w").verdict == Verdict.PARTLY
    assert share([ok, bad, bad], "s", "w").verdict == Verdict.NOT_REPRODUCED


def test_claim_evaluates_to_a_row():
    claim: Claim[float] = Claim("k", "text", "paper", "rule", lambda x: above(Interval.of([x, x + 0.01, x + 0.02]), 0.0, "x"))
    row = claim.evaluate(1.0)
    assert (row.key, row.verdict, row.rule, row.check) == ("k", Verdict.REPRODUCED, "rule", False)


def lc_data(system_cost: dict[str, list[float]]) -> PerSeed:
    per_seed = {}
    for policy in POLICIES:
        for metric in ("system_cost", "switching_cost", "avg_accuracy_cost", "edge_execution_ratio"):
            per_seed[(policy.value, metric)] = system_cost[policy.value] if metric == "system_cost" else [0.5] * 5
    per_seed[("cloud", "edge_execution_ratio")] = [0.0] * 5
    return PerSeed(per_seed, tuple(POLICIES))


def seeds(mean: float, spread: float) -> list[float]:
    """Five per-seed values around `mean`."""
    return [mean + spread * k for k in (-2, -1, 0, 1, 2)]


def test_lc_lowest_cost_rule_as_written_next_to_it():
    """'reproduced if its CI upper bound is below every other policy's CI lower bound, partly if its mean is lowest'."""
    (claim,) = [c for c in LC_CLAIMS if c.key == "lc-lowest-cost"]
    assert "upper bound is below every other policy's lower bound" in claim.rule
    others = {"random": seeds(25.7, 0.1), "cloud": seeds(7.3, 0.1), "fifo": seeds(27.5, 0.1), "lfu": seeds(5.9, 0.1)}
    assert claim.evaluate(lc_data({**others, "lc": seeds(4.9, 0.1)})).verdict == Verdict.REPRODUCED
    assert claim.evaluate(lc_data({**others, "lc": seeds(5.8, 0.5)})).verdict == Verdict.PARTLY
    assert claim.evaluate(lc_data({**others, "lc": seeds(6.5, 0.1)})).verdict == Verdict.NOT_REPRODUCED
