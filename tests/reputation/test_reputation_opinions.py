"""Subjective-logic building blocks: local opinions, consensus (hand-computed cases), expectation."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from reputation import consensus, expectation, local_opinion, recommended_opinion
from reputation.evidence import RatedPairs
from reputation.opinions import recommended_by_column


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_consensus_matches_hand_computed_values():
    # L = (0.6, 0.2, 0.2), R = (0.3, 0.3, 0.4): K = 0.2 + 0.4 - 0.08 = 0.52
    b, d, u = consensus((t(0.6), t(0.2), t(0.2)), (t(0.3), t(0.3), t(0.4)))
    assert b.item() == pytest.approx((0.6 * 0.4 + 0.3 * 0.2) / 0.52)  # 0.576923
    assert d.item() == pytest.approx((0.2 * 0.4 + 0.3 * 0.2) / 0.52)  # 0.269231
    assert u.item() == pytest.approx(0.2 * 0.4 / 0.52)  # 0.153846


def test_consensus_with_a_vacuous_opinion_returns_the_other():
    b, d, u = consensus((t(0.0), t(0.0), t(1.0)), (t(0.5), t(0.25), t(0.25)))
    assert (b.item(), d.item(), u.item()) == pytest.approx((0.5, 0.25, 0.25))


def test_consensus_of_two_dogmatic_opinions_is_their_mean():
    b, d, u = consensus((t(0.8), t(0.2), t(0.0)), (t(0.4), t(0.6), t(0.0)))
    assert (b.item(), d.item(), u.item()) == pytest.approx((0.6, 0.4, 0.0))


def test_consensus_of_one_dogmatic_opinion_keeps_it():
    # uL = 0, uR = 0.5: K = 0.5, b = bL * 0.5 / 0.5 = bL
    b, d, u = consensus((t(0.7), t(0.3), t(0.0)), (t(0.1), t(0.4), t(0.5)))
    assert (b.item(), d.item(), u.item()) == pytest.approx((0.7, 0.3, 0.0))


def test_local_opinion_hand_computed_and_link_mode():
    b, d, u = local_opinion(t(0.4 * 3), t(0.6 * 1), prior_weight=2.0)  # 3 positive, 1 negative, fresh
    assert u.item() == pytest.approx(2 / (1.8 + 2))
    assert b.item() == pytest.approx((1 - 2 / 3.8) * 1.2 / 1.8)
    assert d.item() == pytest.approx((1 - 2 / 3.8) * 0.6 / 1.8)
    b, d, u = local_opinion(t(1.2, 0.0), t(0.6, 0.0), uncertainty="link", link_quality=0.9)
    assert u.tolist() == pytest.approx([0.1, 1.0])
    assert b.tolist() == pytest.approx([0.9 * 2 / 3, 0.0])
    with pytest.raises(ValueError, match="uncertainty"):
        local_opinion(t(1.0), t(1.0), uncertainty="bogus")


def test_expectation_is_belief_plus_base_rate_times_uncertainty():
    assert expectation((t(0.5), t(0.2), t(0.3)), 0.5).item() == pytest.approx(0.65)


finite = st.floats(0, 1e6, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(alpha=finite, beta=finite, w=st.floats(0.01, 10), link=st.booleans(), q=st.floats(0, 1))
def test_local_opinions_are_opinions(alpha: float, beta: float, w: float, link: bool, q: float):
    b, d, u = local_opinion(t(alpha), t(beta), prior_weight=w, uncertainty="link" if link else "evidence", link_quality=q)
    for x in (b, d, u):
        assert 0 <= x.item() <= 1
    assert (b + d + u).item() == pytest.approx(1.0)


opinion = (
    st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1))
    .filter(lambda x: sum(x) > 0)
    .map(lambda x: tuple(v / sum(x) for v in x))
)


@settings(max_examples=200, deadline=None)
@given(left=opinion, right=opinion)
def test_consensus_gives_an_opinion_and_is_symmetric(left, right):
    b, d, u = consensus(tuple(t(v) for v in left), tuple(t(v) for v in right))
    for x in (b, d, u):
        assert -1e-12 <= x.item() <= 1 + 1e-12
    assert (b + d + u).item() == pytest.approx(1.0)
    b2, d2, u2 = consensus(tuple(t(v) for v in right), tuple(t(v) for v in left))
    assert (b2.item(), d2.item(), u2.item()) == pytest.approx((b.item(), d.item(), u.item()))


def test_sparse_recommended_opinion_equals_the_dense_reference():
    gen = torch.Generator().manual_seed(3)
    n_p, n_e = 7, 5
    rated = torch.rand(n_p, n_e, generator=gen) < 0.5  # [P, E]
    raw = torch.rand(3, n_p, n_e, generator=gen, dtype=torch.float64)
    raw = raw / raw.sum(0)
    local = tuple(torch.where(rated, raw[k], torch.tensor(float(k == 2), dtype=torch.float64)) for k in range(3))
    weights = torch.rand(n_p, n_e, generator=gen, dtype=torch.float64) * 3
    dense = recommended_opinion(local, weights, rated)
    flat = rated.view(-1).nonzero().squeeze(1)
    pairs = RatedPairs(flat=flat, producer=flat // n_e, esp=flat % n_e)
    on_rated, on_column = recommended_by_column(tuple(x.view(-1)[flat] for x in local), weights.view(-1)[flat], pairs.esp, n_e)
    for k in range(3):
        expected = on_column[k].expand(n_p, n_e).clone()
        expected.view(-1)[flat] = on_rated[k]
        torch.testing.assert_close(expected, dense[k])
