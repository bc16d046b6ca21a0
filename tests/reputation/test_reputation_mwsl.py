"""MWSL: the properties of docs/reputation.md, agreement with a naive per-pair implementation, input checks."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from market.chain.paths import REPO_ROOT
from reputation import MWSL, MWSLConfig, Rating

P, E = 4, 3

rating = st.tuples(st.integers(0, P - 1), st.integers(0, E - 1), st.booleans(), st.integers(0, 20))
histories = st.lists(rating, max_size=30)
configs = st.sampled_from(
    [
        MWSLConfig(),
        MWSLConfig(z=1.0),
        MWSLConfig(uncertainty="link", link_quality=0.8),
        MWSLConfig(kappa=0.3, eta=0.7, prior_weight=0.5, delta1=1.0, delta2=0.0),
    ]
)


def build(config: MWSLConfig, history: list[tuple[int, int, bool, int]]) -> MWSL:
    model = MWSL(config, P, E)
    if history:
        p, e, pos, t = zip(*history, strict=True)
        model.observe(torch.tensor(p), torch.tensor(e), torch.tensor(pos), torch.tensor(t, dtype=torch.float64))
    return model


def naive_module():
    spec = importlib.util.spec_from_file_location("reputation_scale", REPO_ROOT / "benchmarks" / "reputation_scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@settings(max_examples=150, deadline=None)
@given(config=configs, history=histories, now=st.integers(20, 40))
def test_opinions_sum_to_one_and_lie_in_the_unit_interval(config: MWSLConfig, history, now: int):
    b, d, u = build(config, history).opinions(now)
    for x in (b, d, u):
        assert x.shape == (P, E)
        assert bool(((x >= 0) & (x <= 1)).all())
    torch.testing.assert_close(b + d + u, torch.ones(P, E, dtype=torch.float64))


def test_no_evidence_gives_the_vacuous_opinion_and_the_base_rate():
    model = MWSL(MWSLConfig(base_rate=0.3), P, E)
    b, d, u = model.opinions(5.0)
    assert bool((b == 0).all() and (d == 0).all() and (u == 1).all())
    assert bool((model.reputation(5.0) == 0.3).all())
    model.observe(0, 0, True, 1.0)  # evidence about ESP 0 only: ESP 1 and 2 stay vacuous for everyone
    b, d, u = model.opinions(5.0)
    assert bool((u[:, 1:] == 1).all()) and bool((model.reputation(5.0)[:, 1:] == 0.3).all())


@settings(max_examples=150, deadline=None)
@given(config=configs, history=histories, who=st.integers(0, P - 1), esp=st.integers(0, E - 1), positive=st.booleans())
def test_a_positive_rating_never_lowers_and_a_negative_never_raises_that_reputation(config, history, who, esp, positive):
    now = 21.0  # after every history rating
    model = build(config, history)
    before = model.reputation(now)[who, esp].item()
    model.observe(who, esp, positive, now)
    after = model.reputation(now)[who, esp].item()
    if positive:
        assert after >= before - 1e-12
    else:
        assert after <= before + 1e-12


def test_one_negative_weighs_more_than_one_positive():
    model = MWSL(MWSLConfig(), 1, 2)
    model.observe([0, 0], [0, 0], [True, False], 0.0)
    b, d, _ = model.opinions(0.0)
    assert d[0, 0] > b[0, 0]
    assert model.reputation(0.0)[0, 0] < 0.5
    positive, negative = MWSL(MWSLConfig(), 1, 1), MWSL(MWSLConfig(), 1, 1)
    positive.observe(0, 0, True, 0.0)
    negative.observe(0, 0, False, 0.0)
    assert 0.5 - negative.reputation(0.0).item() > positive.reputation(0.0).item() - 0.5 > 0


def test_old_evidence_fades_with_z():
    config = MWSLConfig(z=0.9)
    model = MWSL(config, 1, 1)
    model.observe(0, 0, True, 0.0)
    trajectory = [model.reputation(float(now)).item() for now in range(0, 60, 5)]
    assert all(a > b for a, b in zip(trajectory, trajectory[1:], strict=False))
    assert trajectory[-1] == pytest.approx(0.5, abs=2e-3)
    _, _, u = model.opinions(3.0)
    alpha = config.kappa * 0.9**3
    assert u.item() == pytest.approx(2 / (alpha + 2))
    still = MWSL(MWSLConfig(z=1.0), 1, 1)
    still.observe(0, 0, True, 0.0)
    assert still.reputation(100.0).item() == pytest.approx(still.reputation(0.0).item())


def test_a_producer_without_evidence_follows_the_weighted_recommendations():
    config = MWSLConfig()
    model = MWSL(config, 3, 2)
    # producer 1: 3 positives with ESP 0 at t = 4 and one negative with ESP 1 at t = 2;
    # producer 2: one negative with ESP 0 at t = 5; producer 0 rates nothing.
    model.observe([1, 1, 1, 1, 2], [0, 0, 0, 1, 0], [True, True, True, False, False], [4.0, 4.0, 4.0, 2.0, 5.0])
    now = 5.0
    local = model.local_opinions(now)
    z = config.z
    w1 = config.delta1 * 3 / 2 + config.delta2 * z**1  # IF = 3 / mean(3, 1), TL = z ** (5 - 4)
    w2 = config.delta1 * 1 / 1 + config.delta2 * 1.0
    expected = [(w1 * local[k][1, 0] + w2 * local[k][2, 0]) / (w1 + w2) for k in range(3)]
    b, d, u = model.opinions(now)
    assert (b[0, 0].item(), d[0, 0].item(), u[0, 0].item()) == pytest.approx([x.item() for x in expected])
    assert model.reputation(now)[0, 0].item() == pytest.approx((expected[0] + 0.5 * expected[2]).item())
    torch.testing.assert_close(model.recommendation_weights(now)[1:, 0], torch.tensor([w1, w2], dtype=torch.float64))


@pytest.mark.parametrize("config", [MWSLConfig(), MWSLConfig(uncertainty="link"), MWSLConfig(z=0.5, period=3.0)])
def test_vectorized_reputation_equals_the_naive_per_pair_implementation(config: MWSLConfig):
    scale = naive_module()
    ratings = scale.make_ratings(30, 8, 400, 20.0, seed=5)
    model = MWSL(config, 30, 8)
    model.observe(ratings["producer"], ratings["esp"], ratings["positive"], ratings["t"])
    naive = scale.NaiveMWSL(config, ratings)
    reputation = model.reputation(21.0)
    expected = torch.tensor([[naive.reputation(i, j, 21.0) for j in range(8)] for i in range(30)], dtype=torch.float64)
    torch.testing.assert_close(reputation, expected, rtol=0, atol=1e-12)


def test_batched_and_one_by_one_observation_agree_and_records_work():
    gen = torch.Generator().manual_seed(1)
    p, e = torch.randint(P, (50,), generator=gen), torch.randint(E, (50,), generator=gen)
    pos, t = torch.rand(50, generator=gen) < 0.7, torch.randint(0, 30, (50,), generator=gen).double()
    batched, single, records = (MWSL(MWSLConfig(), P, E) for _ in range(3))
    batched.observe(p, e, pos, t)
    for k in range(50):
        single.observe(int(p[k]), int(e[k]), bool(pos[k]), float(t[k]))
    records.observe_records(Rating(int(p[k]), int(e[k]), bool(pos[k]), float(t[k])) for k in range(50))
    torch.testing.assert_close(single.reputation(30.0), batched.reputation(30.0))
    torch.testing.assert_close(records.reputation(30.0), batched.reputation(30.0))


def test_float32_and_long_time_spans_stay_finite_and_close():
    wide, narrow = MWSL(MWSLConfig(period=60.0), 2, 2), MWSL(MWSLConfig(period=60.0), 2, 2, dtype=torch.float32)
    base = 1.7e9  # wall-clock seconds
    for step in range(200):  # 200 hours: z ** 200 * 60 underflows long before the end
        t = base + 3600.0 * step
        for model in (wide, narrow):
            model.observe([0, 1], [step % 2, 1], [True, step % 3 == 0], t)
    now = base + 3600.0 * 199
    r64, r32 = wide.reputation(now), narrow.reputation(now)
    assert r32.dtype == torch.float32 and bool(torch.isfinite(r64).all())
    torch.testing.assert_close(r32.double(), r64, atol=1e-5, rtol=0)


def test_scores_are_kept_as_a_freshness_weighted_mean():
    model = MWSL(MWSLConfig(z=0.5), 1, 2)
    model.observe(0, 0, True, 0.0, score=10.0)
    model.observe(0, 0, True, 1.0, score=40.0)
    assert model.mean_score()[0, 0].item() == pytest.approx((10 * 0.5 + 40) / 1.5)
    assert math.isnan(model.mean_score()[0, 1].item())


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda m: m.observe(P, 0, True, 0.0), "producer"),
        (lambda m: m.observe(-1, 0, True, 0.0), "producer"),
        (lambda m: m.observe(0, E, True, 0.0), "esp"),
        (lambda m: m.observe(torch.tensor([0, 1]), torch.tensor([0, 9]), True, 0.0), "esp"),
        (lambda m: m.observe(0, 0, True, float("nan")), "t"),
        (lambda m: m.observe(0, 0, True, torch.tensor([0.0, float("nan")])), "t"),
        (lambda m: m.observe(0, 0, True, 0.0, score=-1.0), "score"),
        (lambda m: m.observe(0, 0, True, 0.0, score=torch.tensor([1.0, -0.5])), "score"),
        (lambda m: m.observe(0, 0, 2, 0.0), "positive"),
        (lambda m: m.observe(0.5, 0, True, 0.0), "producer"),
        (lambda m: m.observe(torch.tensor([0, 1]), torch.tensor([0, 1, 2]), True, 0.0), "producer, esp"),
        (lambda m: m.reputation(float("nan")), "now"),
        (lambda m: m.select(0, 1.0, strategy="greedy"), "strategy"),
        (lambda m: m.select(0, 1.0, temperature=0.0), "temperature"),
        (lambda m: m.select(P, 1.0), "producers"),
        (lambda m: m.select(0, 1.0, mask=torch.zeros(E, dtype=torch.bool)), "mask"),
        (lambda m: m.select(0, 1.0, mask=torch.ones(E + 1, dtype=torch.bool)), "mask"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, argument: str):
    with pytest.raises(ValueError, match=argument):
        call(MWSL(MWSLConfig(), P, E))


@pytest.mark.parametrize(
    "bad",
    [
        dict(kappa=0.6, eta=0.4),
        dict(kappa=0.3, eta=0.6),
        dict(z=0.0),
        dict(z=1.5),
        dict(period=0.0),
        dict(uncertainty="x"),
        dict(link_quality=2.0),
        dict(base_rate=-0.1),
        dict(z_negative=0.0),
        dict(z_negative=1.2),
    ],
)
def test_invalid_configs_are_refused(bad: dict):
    with pytest.raises(ValueError, match="MWSLConfig"):
        MWSLConfig(**bad)


def test_select_argmax_softmax_mask_and_generator():
    model = MWSL(MWSLConfig(), 2, 3)
    model.observe([0] * 6 + [1] * 6, [0, 0, 1, 1, 2, 2] * 2, [True, True, True, False, False, False] * 2, 0.0)
    assert model.select(0, 0.0, strategy="argmax") == 0
    assert model.select(torch.tensor([0, 1]), 0.0, strategy="argmax").tolist() == [0, 0]
    assert model.select(0, 0.0, strategy="argmax", mask=torch.tensor([False, True, True])) == 1
    rows = torch.zeros(20_000, dtype=torch.int64)
    picks = model.select(rows, 0.0, temperature=0.2, generator=torch.Generator().manual_seed(0))
    expected = torch.softmax(model.reputation(0.0)[0] / 0.2, 0)
    torch.testing.assert_close(torch.bincount(picks, minlength=3).double() / 20_000, expected, atol=0.015, rtol=0)
    again = model.select(rows, 0.0, temperature=0.2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(picks, again)
    masked = model.select(rows[:500], 0.0, mask=torch.tensor([False, True, True]), generator=torch.Generator().manual_seed(1))
    assert bool((masked != 0).all())


# -- negative evidence that fades slower, and a base rate from the ESP's record (docs/reputation.md) --------------


def test_negative_ratings_fade_at_their_own_rate():
    """One positive and one negative rating at t = 0, seen at t = 10 with z = 0.9 and z_negative = 0.98."""
    model = MWSL(MWSLConfig(z=0.9, z_negative=0.98), 1, 1)
    model.observe([0, 0], [0, 0], [True, False], 0.0)
    alpha, beta = 0.4 * 0.9**10, 0.6 * 0.98**10  # kappa * theta+, eta * theta-
    u = 2 / (alpha + beta + 2)
    b, d = (1 - u) * alpha / (alpha + beta), (1 - u) * beta / (alpha + beta)
    got = model.opinions(10.0)
    assert [x.item() for x in got] == pytest.approx([b, d, u], rel=1e-12)
    assert model.reputation(10.0).item() == pytest.approx(b + 0.5 * u, rel=1e-12)
    # Without its own rate, the negative fades as fast as the positive: the two weigh kappa : eta.
    same = MWSL(MWSLConfig(z=0.9), 1, 1)
    same.observe([0, 0], [0, 0], [True, False], 0.0)
    assert same.opinions(10.0)[0].item() / same.opinions(10.0)[1].item() == pytest.approx(0.4 / 0.6)


def test_a_negative_that_never_fades_keeps_an_unchosen_cheater_down():
    """With z_negative = 1 the cheater's one negative stays: T = a W / (eta + W) = 1 / 2.6 for ever, while
    with z = 0.9 for both it drifts back to the base rate 0.5."""
    kept, drifting = MWSL(MWSLConfig(z_negative=1.0), 1, 1), MWSL(MWSLConfig(), 1, 1)
    for model in (kept, drifting):
        model.observe(0, 0, False, 0.0)
    assert kept.reputation(0.0).item() == pytest.approx(1 / 2.6) == kept.reputation(200.0).item()
    assert drifting.reputation(0.0).item() == pytest.approx(1 / 2.6)
    assert drifting.reputation(200.0).item() == pytest.approx(0.5, abs=1e-6)


def test_a_base_rate_from_the_record_is_what_decay_returns_to():
    """ESP 0: two negatives from producer 0 and one positive from producer 1; ESP 1 unrated.

    Record: a_0 = (N+ + a W) / (N + W) = (1 + 0.5 * 2) / (3 + 2) = 0.4, a_1 = 0.5. No decay (z = 1):
    L0 = (0, 0.375, 0.625) (beta = 0.6 * 2, u = 2 / 3.2), L1 = (1/6, 0, 5/6) (alpha = 0.4, u = 2 / 2.4);
    both recommenders weigh 1 (IF = 1, TL = 1), so producer 2, who rated nothing, holds their mean.
    """
    config = MWSLConfig(z=1.0, base_rate_from_record=True)
    model = MWSL(config, 3, 2)
    model.observe([0, 0, 1], [0, 0, 0], [False, False, True], 0.0)
    torch.testing.assert_close(model.base_rates(), torch.tensor([0.4, 0.5], dtype=torch.float64))
    b, d, u = (1 / 6) / 2, 0.375 / 2, (0.625 + 5 / 6) / 2
    assert [x[2, 0].item() for x in model.opinions(0.0)] == pytest.approx([b, d, u])
    assert model.reputation(0.0)[2, 0].item() == pytest.approx(b + 0.4 * u)
    assert model.reputation(0.0)[2, 1].item() == 0.5  # no evidence, no record: the base rate a
    fixed = MWSL(MWSLConfig(z=1.0), 3, 2)
    fixed.observe([0, 0, 1], [0, 0, 0], [False, False, True], 0.0)
    assert fixed.reputation(0.0)[2, 0].item() == pytest.approx(b + 0.5 * u)
    # With decay, the evidence fades and everyone's view of ESP 0 returns to its record, not to 0.5.
    fading = MWSL(MWSLConfig(base_rate_from_record=True), 3, 2)
    fading.observe([0, 0, 1], [0, 0, 0], [False, False, True], 0.0)
    torch.testing.assert_close(fading.reputation(400.0)[:, 0], torch.full((3,), 0.4, dtype=torch.float64))


def test_two_decay_rates_survive_long_time_spans():
    """Ratings 2,000 periods apart (the store rebases its sums on the way): each sum is its own decay."""
    model = MWSL(MWSLConfig(z=0.9, z_negative=0.99), 1, 1)
    for t in range(0, 2001, 50):
        model.observe([0, 0], [0, 0], [True, False], float(t))
    pos, neg = model.evidence.freshness_sums(2000.0)
    assert pos.item() == pytest.approx(sum(0.9 ** (2000 - t) for t in range(0, 2001, 50)), rel=1e-9)
    assert neg.item() == pytest.approx(sum(0.99 ** (2000 - t) for t in range(0, 2001, 50)), rel=1e-9)
    assert model.evidence.count.item() == 82 and model.evidence.positive_count.item() == 41
