"""Baselines share MWSL's observe / reputation / select interface and follow their own rules."""

from __future__ import annotations

import pytest
import torch

from reputation import (
    MWSL,
    BetaConfig,
    BetaReputation,
    MostFamiliar,
    MWSLConfig,
    PlainSL,
    PlainSLConfig,
    RandomSelection,
    RoundRobin,
    jain_index,
)

FACTORIES = {
    "mwsl": lambda p, e: MWSL(MWSLConfig(), p, e),
    "random": lambda p, e: RandomSelection(p, e),
    "round-robin": lambda p, e: RoundRobin(p, e),
    "most-familiar": lambda p, e: MostFamiliar(p, e),
    "beta": lambda p, e: BetaReputation(BetaConfig(), p, e),
    "plain-sl": lambda p, e: PlainSL(PlainSLConfig(), p, e),
}


@pytest.mark.parametrize("name", FACTORIES)
def test_every_selector_has_the_same_interface_and_input_checks(name: str):
    selector = FACTORIES[name](3, 4)
    selector.observe(torch.tensor([0, 1, 2]), torch.tensor([1, 1, 3]), torch.tensor([True, False, True]), 1.0)
    selector.observe(0, 2, True, 2.0, score=3.0)
    assert selector.reputation(2.0).shape == (3, 4)
    picks = selector.select(torch.tensor([0, 1, 2]), 2.0, generator=torch.Generator().manual_seed(0))
    assert picks.shape == (3,) and bool(((picks >= 0) & (picks < 4)).all())
    assert isinstance(selector.select(1, 2.0, generator=torch.Generator().manual_seed(0)), int)
    only = torch.tensor([False, False, True, False])
    assert selector.select(torch.tensor([0, 1]), 2.0, mask=only, generator=torch.Generator().manual_seed(0)).tolist() == [2, 2]
    with pytest.raises(ValueError, match="esp"):
        selector.observe(0, 4, True, 0.0)
    with pytest.raises(ValueError, match="t must be finite"):
        selector.observe(0, 0, True, float("nan"))
    with pytest.raises(ValueError, match="score"):
        selector.observe(0, 0, True, 0.0, score=-2)
    with pytest.raises(ValueError, match="strategy"):
        selector.select(0, 2.0, strategy="best")


def test_random_selection_is_uniform_and_seeded():
    selector = RandomSelection(1, 4)
    picks = selector.select(torch.zeros(8000, dtype=torch.int64), 0.0, generator=torch.Generator().manual_seed(2))
    assert (torch.bincount(picks, minlength=4).double() / 8000 - 0.25).abs().max() < 0.02


def test_round_robin_cycles_per_producer_and_skips_masked_esps():
    selector = RoundRobin(2, 3)
    assert selector.select(torch.tensor([0, 0, 0, 0, 1]), 0.0).tolist() == [0, 1, 2, 0, 0]
    assert selector.select(torch.tensor([0, 1]), 0.0).tolist() == [1, 1]
    assert selector.select(torch.tensor([0, 0]), 0.0, mask=torch.tensor([True, False, True])).tolist() == [2, 0]


def test_most_familiar_picks_the_esp_with_most_interactions():
    own, popular = MostFamiliar(2, 3, scope="own"), MostFamiliar(2, 3, scope="global")
    for selector in (own, popular):
        selector.observe([0, 0, 1, 1, 1], [2, 2, 1, 1, 1], [False, False, True, True, True], 0.0)
    assert own.select(torch.tensor([0, 1]), 1.0).tolist() == [2, 1]  # negatives count as interactions too
    assert popular.select(torch.tensor([0, 1]), 1.0).tolist() == [1, 1]
    with pytest.raises(ValueError, match="scope"):
        MostFamiliar(1, 1, scope="team")


def test_beta_reputation_is_r_plus_one_over_r_plus_s_plus_two():
    pooled = BetaReputation(BetaConfig(z=1.0), 2, 2)
    private = BetaReputation(BetaConfig(z=1.0, pooled=False), 2, 2)
    for selector in (pooled, private):
        selector.observe([0, 0, 0, 1], [0, 0, 0, 0], [True, True, False, True], 0.0)
    assert pooled.reputation(0.0)[:, 0].tolist() == pytest.approx([(3 + 1) / (4 + 2)] * 2)
    assert private.reputation(0.0)[:, 0].tolist() == pytest.approx([(2 + 1) / (3 + 2), (1 + 1) / (1 + 2)])
    assert pooled.reputation(0.0)[:, 1].tolist() == [0.5, 0.5]
    fading = BetaReputation(BetaConfig(z=0.5), 1, 1)
    fading.observe(0, 0, True, 0.0)
    assert fading.reputation(1.0).item() == pytest.approx((0.5 + 1) / (0.5 + 2))


def test_plain_subjective_logic_averages_the_other_raters_equally():
    plain = PlainSL(PlainSLConfig(), 3, 1)
    # producer 1: 4 positives (b = 4/6, u = 2/6); producer 2: 1 negative (d = 1/3, u = 2/3); producer 0: none
    plain.observe([1, 1, 1, 1, 2], [0] * 5, [True, True, True, True, False], [0.0, 1.0, 2.0, 3.0, 3.0])
    b, d, u = plain.opinions(100.0)  # no decay
    assert (b[0, 0].item(), d[0, 0].item(), u[0, 0].item()) == pytest.approx(((4 / 6) / 2, (1 / 3) / 2, (2 / 6 + 2 / 3) / 2))
    assert plain.reputation(100.0)[0, 0].item() == pytest.approx(b[0, 0].item() + 0.5 * u[0, 0].item())


def test_jain_index():
    assert jain_index(torch.tensor([5.0, 5.0, 5.0])).item() == pytest.approx(1.0)
    assert jain_index(torch.tensor([9.0, 0.0, 0.0])).item() == pytest.approx(1 / 3)
    assert jain_index(torch.tensor([2.0, 1.0, 0.0])).item() == pytest.approx(9 / 15)
    assert jain_index(torch.zeros(3)).item() == 1.0
