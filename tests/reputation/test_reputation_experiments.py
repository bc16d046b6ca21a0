"""The paper's two experiments and the collusion experiment.

Two kinds of test. Numbers pinned from a run at a fixed seed are determinism checks (the docstring
says so). Every claim those numbers stand for is also asserted against what the MWSL formulas
predict for the *expected* evidence (the "fluid" model below), computed here in plain Python,
independently of reputation/.

The fluid model (docs/reputation.md, reputation/mwsl.py and opinions.py):

- Freshness: a rating of age d periods weighs z**d, so n ratings per period for t + 1 periods sum to
  n * G(t) with G(t) = (1 - z**(t + 1)) / (1 - z); in the steady state G -> 1 / (1 - z) = 10.
- Local opinion: alpha = kappa * (positive sum), beta = eta * (negative sum),
  u = W / (alpha + beta + W), b = (1 - u) alpha / (alpha + beta), d = (1 - u) beta / (alpha + beta).
- Recommended opinion: the weighted mean of the other raters' local opinions, weights
  w = delta1 * IF + delta2 * TL (IF = N_yj / mean_k N_yk, TL = z**(periods since the last rating)).
- Final opinion: consensus(L, R): K = uL + uR - uL uR, b = (bL uR + bR uL) / K, u = uL uR / K.
- Reputation T = b + a u. Softmax selection sends a task to ESP j with probability
  exp(T_j) / sum_k exp(T_k) (temperature 1).

With kappa = 0.4, eta = 0.6, z = 0.9, W = 2, a = 0.5 (MWSLConfig defaults).
"""

from __future__ import annotations

import math

import pytest
import torch

from reputation.experiments import CollusionConfig, LifecycleConfig, collusion, trends, workload

KAPPA, ETA, Z, W, A = 0.4, 0.6, 0.9, 2.0, 0.5
PROB = (0.90, 0.75, 0.80)  # LifecycleConfig.positive_prob

Opinion = tuple[float, float, float]


# -- the fluid model, in plain floats ------------------------------------------------------------------


def geometric(t: int) -> float:
    """G(t) = sum_{s=0}^{t} z**s: freshness-weighted count of one rating per period for t + 1 periods."""
    return (1 - Z ** (t + 1)) / (1 - Z)


def local(alpha: float, beta: float, w: float = W) -> Opinion:
    total = alpha + beta
    if total == 0:
        return 0.0, 0.0, 1.0
    u = w / (total + w)
    return (1 - u) * alpha / total, (1 - u) * beta / total, u


def consensus(left: Opinion, right: Opinion) -> Opinion:
    k = left[2] + right[2] - left[2] * right[2]
    return ((left[0] * right[2] + right[0] * left[2]) / k, (left[1] * right[2] + right[1] * left[2]) / k, left[2] * right[2] / k)


def weighted_mean(opinions: list[Opinion], weights: list[float]) -> Opinion:
    total = sum(weights)
    return tuple(sum(w * o[i] for o, w in zip(opinions, weights, strict=True)) / total for i in range(3))  # type: ignore[return-value]


def expectation(opinion: Opinion) -> float:
    return opinion[0] + A * opinion[2]


def softmax(values: list[float]) -> list[float]:
    e = [math.exp(v) for v in values]
    return [x / sum(e) for x in e]


def trends_fluid(t: int, esp: int, switch: int = 10, per_period: float = 10 / 3) -> float:
    """Expected T of `esp` for a producer at the end of period t in the trends experiment (random phase).

    Each producer sends n = K / E = 10/3 tasks per period to each ESP. Before the switch the sums are
    n p G(t) positive and n (1 - p) G(t) negative. From the switch on ESP 0 is rated negative only:
    the old sums decay by z per period and n G(t - switch) negative ratings join them. Every producer
    holds the same expected opinion L, so the recommended opinion is L too and the final one is
    consensus(L, L) = (2b / (2 - u), 2d / (2 - u), u / (2 - u)).
    """
    p = PROB[esp]
    if esp != 0 or t < switch:
        pos, neg = per_period * p * geometric(t), per_period * (1 - p) * geometric(t)
    else:
        age = t - switch + 1
        pos = per_period * p * geometric(switch - 1) * Z**age
        neg = per_period * (1 - p) * geometric(switch - 1) * Z**age + per_period * geometric(age - 1)
    mine = local(KAPPA * pos, ETA * neg)
    return expectation(consensus(mine, mine))


# -- trends (experiment 1) -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trends_seed0():
    return trends(LifecycleConfig(switch_period=10, seed=0))


@pytest.fixture(scope="module")
def trends_eight_seeds():
    return [trends(LifecycleConfig(switch_period=10, seed=seed, periods=25)).reputation for seed in range(8)]


def test_trends_at_seed_0_reproduce_the_pinned_numbers(trends_seed0):
    """Determinism check. Seed 0: mean T before period 10 = 0.743 / 0.685 / 0.729 (ESP 0 / 1 / 2); over
    periods 10-19 0.305 / 0.705 / 0.706; at period 99 ESP 0 is at 0.040; after the random phase the
    ESPs got 436 / 782 / 882 tasks."""
    rep = trends_seed0.reputation  # [100, 3]
    assert rep[:10].mean(0).tolist() == pytest.approx([0.743, 0.685, 0.729], abs=1e-3)
    assert rep[10:20].mean(0).tolist() == pytest.approx([0.305, 0.705, 0.706], abs=1e-3)
    assert float(rep[-1, 0]) == pytest.approx(0.0395, abs=1e-3)
    assert trends_seed0.load[30:].sum(0).tolist() == [436, 782, 882]


def test_before_its_switch_the_best_esp_leads_by_the_margin_its_expected_evidence_predicts(trends_eight_seeds):
    """Fluid model, mean of T over periods 0-9: 0.793 / 0.638 / 0.688 for p = 0.90 / 0.75 / 0.80, so
    ESP 0 leads by about 0.1 (its positive share kappa p / (kappa p + eta (1 - p)) = 0.857 against
    0.667 and 0.727, pulled towards a = 0.5 by u). Averaged over 8 seeds the simulation is within 0.03
    of each value; at every seed ESP 0 has the highest mean (per period it does not: ESP 2 is close)."""
    predicted = [sum(trends_fluid(t, esp) for t in range(10)) / 10 for esp in range(3)]
    assert predicted == pytest.approx([0.793, 0.638, 0.688], abs=1e-3)
    observed = torch.stack([rep[:10].mean(0) for rep in trends_eight_seeds]).mean(0)
    assert observed.tolist() == pytest.approx(predicted, abs=0.03)
    assert all(int(rep[:10].mean(0).argmax()) == 0 for rep in trends_eight_seeds)


def test_after_its_switch_the_cheating_esp_loses_the_reputation_its_negative_evidence_predicts(trends_eight_seeds, trends_seed0):
    """Fluid model: from period 10 ESP 0's old evidence decays by z = 0.9 per period while 10/3 negative
    ratings per period arrive; its mean T over periods 10-19 is 0.367, 0.426 below its mean before.
    ESPs 1 and 2 are unaffected and still gaining evidence: +0.015 and +0.021, so they hold
    (0.654 and 0.709). The 8-seed average is within 0.03 of each; at seed 0 the drop is over 0.4."""
    predicted = [sum(trends_fluid(t, esp) for t in range(10, 20)) / 10 for esp in range(3)]
    assert predicted == pytest.approx([0.367, 0.654, 0.709], abs=1e-3)
    observed = torch.stack([rep[10:20].mean(0) for rep in trends_eight_seeds]).mean(0)
    assert observed.tolist() == pytest.approx(predicted, abs=0.03)
    before = sum(trends_fluid(t, 0) for t in range(10)) / 10
    rep = trends_seed0.reputation
    assert float(rep[:10, 0].mean() - rep[10:20, 0].mean()) > before - predicted[0] - 0.03 > 0.39
    assert bool(((rep[10:20, 1:].mean(0) - rep[:10, 1:].mean(0)).abs() < 0.05).all())


def test_the_cheating_esp_falls_below_both_others_within_two_periods_of_its_switch(trends_eight_seeds):
    """Fluid model: ESP 0 drops to 0.672 at period 10 (below ESP 2's 0.707) and 0.561 at period 11
    (below ESP 1's 0.652), then keeps falling. At every one of 8 seeds it is below both from period 12 on
    (one period of slack for the noise of ~3 ratings per producer and ESP per period)."""
    crossing = next(t for t in range(10, 20) if trends_fluid(t, 0) < min(trends_fluid(t, 1), trends_fluid(t, 2)))
    assert crossing == 11
    for rep in trends_eight_seeds:
        assert bool(((rep[12:25, 0] < rep[12:25, 1]) & (rep[12:25, 0] < rep[12:25, 2])).all())


def test_the_cheating_esp_ends_below_the_bound_its_negative_evidence_implies(trends_seed0):
    """Bound at period 99. With T in [0, 1] and temperature 1, softmax gives ESP 0 at least
    1 / (1 + 2e) of each producer's 10 tasks, n_min = 1.55 per period, all rated negative: the steady
    negative sum is at least n_min / (1 - z) = 15.5, so beta >= 9.3 and u_L <= W / (W + 9.3) = 0.177.
    Its positive evidence is from before period 10, decayed by z**90 ~ 8e-5, so b ~ 0. The consensus
    has u <= u_L, hence T <= a u_L = 0.089 (+ 2e-4 of belief). Observed at seed 0: 0.040."""
    n_min = 10 / (1 + 2 * math.e)
    bound = A * W / (W + ETA * n_min / (1 - Z)) + 2e-4
    assert bound == pytest.approx(0.0887, abs=1e-3)
    assert float(trends_seed0.reputation[-1, 0]) < bound


def test_softmax_sends_the_cheating_esp_the_share_of_work_its_reputation_implies(trends_seed0):
    """In period t every producer picks ESPs by softmax of its T at the end of period t - 1. Producer
    0's reputations (the others' are alike) predict ESP 0's share over periods 30-99: the mean of
    exp(T_0) / sum_k exp(T_k) = 0.21 (about e**0.04 against e**0.62 and e**0.73), against the 1/3 a
    random choice would give. The simulated share is within 0.03 of that, and ESP 0 gets less work than
    either other ESP."""
    rep, load = trends_seed0.reputation, trends_seed0.load
    predicted = sum(softmax(rep[t - 1].tolist())[0] for t in range(30, 100)) / 70
    share = float(load[30:, 0].sum() / load[30:].sum())
    assert share == pytest.approx(predicted, abs=0.03)
    assert share < 1 / 3 - 0.1
    assert load[30:, 0].sum() < load[30:, 1:].sum(0).min()


# -- workload (experiment 2) -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workload_seed0():
    return workload(LifecycleConfig(seed=0), strategies=("mwsl", "most-familiar", "most-familiar-global", "round-robin"))


def test_workload_at_seed_0_reproduces_the_pinned_numbers(workload_seed0):
    """Determinism check. Seed 0, 2,100 tasks after the random phase: MWSL 789 / 613 / 698 (Jain 0.990,
    per producer 0.988); most-familiar by own interactions 700 / 700 / 700 (the three producers happen to
    stick to three different ESPs); by all producers' interactions 0 / 0 / 2,100."""
    result = workload_seed0
    assert result.load["mwsl"] == [789, 613, 698]
    assert result.jain["mwsl"] == pytest.approx(0.9896, abs=1e-4)
    assert result.producer_jain["mwsl"] == pytest.approx(0.9878, abs=1e-4)
    assert result.load["most-familiar"] == [700, 700, 700]  # the ESP-level index is a lottery for "own"
    assert result.load["most-familiar-global"] == [0, 0, 2100]
    assert result.latency["mwsl"] == pytest.approx(0.502, abs=1e-3)


def test_mwsl_spreads_the_load_as_the_softmax_of_its_steady_state_reputations(workload_seed0):
    """Fixed point of the fluid model: ESP j gets a share s_j = softmax(T)_j of the 30 tasks per
    period; each producer's steady evidence on j is 10 s_j / (1 - z), which sets T_j. Iterating gives
    T = 0.835 / 0.655 / 0.712 and loads 772 / 645 / 683 of 2,100: the order of the positive rates, and
    no ESP starved (softmax over T in [0, 1] keeps the ratio of any two shares below e, so Jain's index
    is at least 0.79 whatever the reputations). The simulated loads are within 3 binomial standard
    deviations of the fixed point and the index within 0.01 of its 0.997."""
    shares = [1 / 3] * 3
    for _ in range(100):
        rep = []
        for esp, p in enumerate(PROB):
            evidence = 10 * shares[esp] / (1 - Z)
            mine = local(KAPPA * p * evidence, ETA * (1 - p) * evidence)
            rep.append(expectation(consensus(mine, mine)))
        shares = softmax(rep)
    predicted = [2100 * s for s in shares]
    assert predicted == pytest.approx([772, 645, 683], abs=1)
    load = workload_seed0.load["mwsl"]
    for observed, expected, share in zip(load, predicted, shares, strict=True):
        assert abs(observed - expected) < 3 * math.sqrt(2100 * share * (1 - share))
    assert load[0] > load[2] > load[1]
    jain_fixed_point = 1 / (3 * sum(s * s for s in shares))
    assert workload_seed0.jain["mwsl"] == pytest.approx(jain_fixed_point, abs=0.01)
    worst = (math.e + 2) ** 2 / (3 * (math.e**2 + 2))  # one ESP at T = 1, two at T = 0
    assert worst == pytest.approx(0.790, abs=1e-3) and workload_seed0.jain["mwsl"] > worst


def test_most_familiar_by_own_interactions_locks_every_producer_on_one_esp(workload_seed0):
    """The argmax of a producer's own counts gets all its 10 tasks, so its count only grows and it stays
    the argmax: from period 30 on each producer uses one ESP, whose Jain index over 3 ESPs is exactly
    1/3 (the index is 1/n exactly when all load is on one of n)."""
    assert workload_seed0.producer_jain["most-familiar"] == pytest.approx(1 / 3, abs=1e-12)
    assert workload_seed0.producer_jain["mwsl"] > 0.95


def test_most_familiar_by_all_interactions_piles_all_work_on_one_esp(workload_seed0):
    """The global argmax is the same ESP for every producer and, as above, stays the argmax: it gets
    all P K (periods - 30) = 3 * 10 * 70 = 2,100 tasks and Jain's index is 1/3."""
    load = workload_seed0.load["most-familiar-global"]
    assert sorted(load) == [0, 0, 3 * 10 * 70]
    assert workload_seed0.jain["most-familiar-global"] == pytest.approx(1 / 3, abs=1e-12)


def test_most_familiar_by_all_interactions_has_a_queue_that_grows_by_the_derived_rate(workload_seed0):
    """Capacity is 1.25 * 30 / 3 = 12.5 tasks per ESP and period. With all 30 arrivals at one ESP its
    backlog grows by 17.5 per period: in the k-th period after the random phase a task waits
    (B0 + 17.5 k + (30 + 1) / 2) / 12.5 periods on average, B0 the backlog the random phase left (>= 0).
    The mean over k = 0..69 is 49.54 + B0 / 12.5; seed 0 leaves no backlog. MWSL keeps every ESP under
    capacity (about 11 / 9 / 10 arrivals per period): a task waits about (a + 1) / 2 / 12.5 = 0.44 in
    the fluid model, a little more with random arrivals, so the pile-up costs about 100 times the latency."""
    derived = sum((17.5 * k + 15.5) / 12.5 for k in range(70)) / 70
    assert derived == pytest.approx(49.54)
    latency = workload_seed0.latency
    assert latency["most-familiar-global"] >= derived - 1e-9
    assert latency["most-familiar-global"] == pytest.approx(derived, abs=1e-9)  # B0 = 0 at seed 0
    assert 0.44 - 0.01 < latency["mwsl"] < 1.0
    assert latency["most-familiar-global"] > 40 * latency["mwsl"]


def test_round_robin_gives_each_esp_its_exact_turn(workload_seed0):
    """Each producer starts its turn at ESP 0 in period 30 and places 10 tasks per period in turn, so its
    next ESP advances by 10 mod 3 = 1 per period: every 3 periods each ESP gets 10 of its tasks. Over 70
    periods (23 cycles and one period with 4 / 3 / 3) that is 234 / 233 / 233 per producer, 702 / 699 /
    699 for the three."""
    assert workload_seed0.load["round-robin"] == [702, 699, 699]
    assert workload_seed0.jain["round-robin"] == pytest.approx(2100**2 / (3 * (702**2 + 2 * 699**2)))


def test_workload_rejects_unknown_strategies():
    with pytest.raises(ValueError, match="strategies"):
        workload(LifecycleConfig(periods=31), strategies=("oracle",))


# -- collusion ---------------------------------------------------------------------------------------------


def collusion_fluid(fraction: float, method: str, producers: int = 10, periods: int = 50) -> dict[str, tuple[float, float]]:
    """Expected (T honest ESP, T cheating ESP) for an honest producer and for the newcomer.

    An honest producer spreads 3 tasks per period over 3 ESPs: one rating per ESP and period, rated
    positive with p = 0.9 (honest ESP) and 0.4 (cheating ESP); a colluder puts its 3 tasks on the two
    targets, 1.5 each, always negative for the honest ESP and positive for the cheating one. MWSL: sums
    G(49) = 9.95 and 14.9, kappa / eta weights. Plain SL: no forgetting (50 and 75 ratings), unit weights.
    Recommendation weights: IF = 1 for everyone (each rater rates its ESPs equally often), TL is the
    expected z**(periods since the last rating): q / (1 - (1 - q) z) with q = 1 - (2/3)**3 for an honest
    producer and 1 - (1/2)**3 for a colluder, so w = 0.6 + 0.4 TL = 0.984 and 0.994. The honest producer's
    recommendation averages the 9 others, the newcomer's all 10. Beta (pooled): (r + 1) / (r + s + 2)
    over everyone's freshness-weighted counts.
    """
    colluders = round(fraction * producers)
    honest = producers - colluders
    if method == "beta":
        s = geometric(periods - 1)
        r_h, s_h = honest * s * 0.9, honest * s * 0.1 + colluders * 1.5 * s
        r_c, s_c = honest * s * 0.4 + colluders * 1.5 * s, honest * s * 0.6
        view = ((r_h + 1) / (r_h + s_h + 2), (r_c + 1) / (r_c + s_c + 2))
        return {"honest": view, "newcomer": view}
    if method == "mwsl":
        kappa, eta, own, theirs = KAPPA, ETA, geometric(periods - 1), 1.5 * geometric(periods - 1)
        timely = [q / (1 - (1 - q) * Z) for q in (1 - (2 / 3) ** 3, 1 - (1 / 2) ** 3)]
        w_honest, w_colluder = (0.6 + 0.4 * tl for tl in timely)
    else:
        kappa, eta, own, theirs, w_honest, w_colluder = 1.0, 1.0, float(periods), 1.5 * periods, 1.0, 1.0
    views = {"honest": [], "newcomer": []}
    for target, p in (("honest", 0.9), ("cheating", 0.4)):
        mine = local(kappa * p * own, eta * (1 - p) * own)
        colluder = local(kappa * theirs, 0.0) if target == "cheating" else local(0.0, eta * theirs)
        others = weighted_mean([mine] * (honest - 1) + [colluder] * colluders, [w_honest] * (honest - 1) + [w_colluder] * colluders)
        everyone = weighted_mean([mine] * honest + [colluder] * colluders, [w_honest] * honest + [w_colluder] * colluders)
        views["honest"].append(expectation(consensus(mine, others)))
        views["newcomer"].append(expectation(everyone))
    return {key: (value[0], value[1]) for key, value in views.items()}


@pytest.fixture(scope="module")
def collusion_by_fraction():
    return {fraction: collusion(CollusionConfig(seed=0, colluder_fraction=fraction)).outcomes for fraction in (0.2, 0.3, 0.4)}


def test_collusion_at_seed_0_reproduces_the_pinned_numbers(collusion_by_fraction):
    """Determinism check. Seed 0, 2 of 10 producers collude. T(honest ESP) / T(cheating ESP) seen by the
    honest producers: MWSL 0.699 / 0.409, plain SL 0.794 / 0.447, Beta 0.667 / 0.566; a newcomer under
    MWSL: 0.618 / 0.473. The colluders hold 18.4% / 21.4% of MWSL's recommendation weight (20% under
    plain SL)."""
    out = collusion_by_fraction[0.2]
    assert out["mwsl"].honest_view == pytest.approx((0.699, 0.409), abs=1e-3)
    assert out["plain-sl"].honest_view == pytest.approx((0.794, 0.447), abs=1e-3)
    assert out["beta"].honest_view == pytest.approx((0.667, 0.566), abs=1e-3)
    assert out["mwsl"].newcomer_view == pytest.approx((0.618, 0.473), abs=1e-3)
    assert out["mwsl"].colluder_weight_share == pytest.approx((0.184, 0.214), abs=1e-3)
    assert out["plain-sl"].colluder_weight_share == pytest.approx((0.2, 0.2))


@pytest.mark.parametrize("fraction", [0.2, 0.3, 0.4])
@pytest.mark.parametrize("method", ["mwsl", "plain-sl", "beta"])
def test_collusion_reputations_are_those_the_expected_evidence_predicts(collusion_by_fraction, method: str, fraction: float):
    """Every method's honest-producer and newcomer views are within 0.03 of `collusion_fluid` (e.g. MWSL
    at 20%: 0.695 / 0.407 and, for the newcomer, 0.610 / 0.465)."""
    predicted = collusion_fluid(fraction, method)
    outcome = collusion_by_fraction[fraction][method]
    assert outcome.honest_view == pytest.approx(predicted["honest"], abs=0.03)
    assert outcome.newcomer_view == pytest.approx(predicted["newcomer"], abs=0.03)


def test_twenty_percent_collusion_flips_no_method_and_the_margins_follow_the_evidence(collusion_by_fraction):
    """Fluid margins T(honest) - T(cheating) for an honest producer at 20%: plain SL 0.32 (no forgetting:
    50 ratings, so little uncertainty pulls it to a), MWSL 0.29, Beta 0.09 (pooled: the colluders' 30
    one-sided ratings sit in the same sums as everyone's). All positive: nobody is fooled, and the
    ordering of the margins is the ordering the evidence predicts."""
    out = collusion_by_fraction[0.2]
    predicted = {name: collusion_fluid(0.2, name)["honest"] for name in out}
    derived = {name: view[0] - view[1] for name, view in predicted.items()}
    assert derived["plain-sl"] > derived["mwsl"] > derived["beta"] > 0.05
    margin = {name: o.honest_view[0] - o.honest_view[1] for name, o in out.items()}
    assert margin["plain-sl"] > margin["mwsl"] > margin["beta"] > 0
    for o in out.values():
        assert o.honest_outranks_share == 1.0
        assert o.newcomer_view[0] > o.newcomer_view[1]


def test_pooled_beta_flips_once_colluders_exceed_a_quarter(collusion_by_fraction):
    """Without the prior, pooled Beta compares 0.9 h / (h + 1.5 c) with (0.4 h + 1.5 c) / (h + 1.5 c)
    (h honest raters, c colluders, evidence per rater as in `collusion_fluid`): they are equal at
    1.5 c = 0.5 h, c / (h + c) = 1/4. So 20% does not flip Beta's ranking and 30% does, for every
    producer (the sums are pooled)."""
    assert collusion_by_fraction[0.2]["beta"].honest_outranks_share == 1.0
    assert collusion_by_fraction[0.3]["beta"].honest_outranks_share == 0.0
    view = collusion_by_fraction[0.3]["beta"].newcomer_view
    assert view[0] < view[1]


def test_mwsl_newcomers_ranking_flips_near_a_third_of_colluders(collusion_by_fraction):
    """The newcomer's MWSL view is the weighted mean of the raters' local opinions. With colluder share
    f and the fluid local opinions (honest raters: honest ESP b = 0.579, u = 0.324; cheating ESP b =
    0.222, u = 0.279; colluders: honest ESP b = 0, u = 0.182; cheating ESP b = 0.749, u = 0.251):
    T(honest) = 0.741 - 0.650 f and T(cheating) = 0.361 + 0.514 f, equal at f = 0.33. So 20% and 30% do
    not flip it and 40% does; an honest producer keeps its own evidence in the consensus and still
    ranks right at 40% (fluid 0.594 / 0.475)."""
    flip = next(
        f / 1000
        for f in range(1000)
        if collusion_fluid(f / 1000, "mwsl", producers=1000)["newcomer"][0]
        <= collusion_fluid(f / 1000, "mwsl", producers=1000)["newcomer"][1]
    )
    assert flip == pytest.approx(0.33, abs=0.01)
    for fraction in (0.2, 0.3):
        view = collusion_by_fraction[fraction]["mwsl"].newcomer_view
        assert view[0] > view[1]
    newcomer = collusion_by_fraction[0.4]["mwsl"].newcomer_view
    assert newcomer[0] < newcomer[1]
    assert collusion_by_fraction[0.4]["mwsl"].honest_outranks_share == 1.0


def test_colluders_hold_their_head_count_share_of_mwsl_recommendation_weight(collusion_by_fraction):
    """Familiarity and timeliness do not discount colluders: IF = 1 for them as for honest producers
    (each rates its ESPs equally often) and their TL is if anything higher (they rate each target in a
    period with probability 7/8 against 19/27), so their expected share of the newcomer's weight is
    2 * 0.994 / (2 * 0.994 + 8 * 0.984) = 0.202 at 20% (0.302 at 30%, 0.403 at 40%). Observed within 0.035."""
    timely = [q / (1 - (1 - q) * Z) for q in (1 - (2 / 3) ** 3, 1 - (1 / 2) ** 3)]
    w_honest, w_colluder = (0.6 + 0.4 * tl for tl in timely)
    for fraction in (0.2, 0.3, 0.4):
        colluders = round(10 * fraction)
        expected = colluders * w_colluder / (colluders * w_colluder + (10 - colluders) * w_honest)
        assert expected == pytest.approx(fraction, abs=0.005)
        share = collusion_by_fraction[fraction]["mwsl"].colluder_weight_share
        assert share == pytest.approx((expected, expected), abs=0.035)


def test_collusion_without_colluders_has_no_colluder_weight():
    """No colluder holds any weight (an empty sum), and pooled Beta ranks the p = 0.9 ESP above the p = 0.4
    one: (0.9 n + 1) / (n + 2) > (0.4 n + 1) / (n + 2) for any amount of evidence n > 0."""
    result = collusion(CollusionConfig(colluder_fraction=0.0, periods=10))
    assert result.outcomes["mwsl"].colluder_weight_share == (0.0, 0.0)
    assert torch.tensor(result.outcomes["beta"].honest_view).diff().item() < 0
