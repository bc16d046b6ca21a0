"""Every name has one source (a StrEnum) whose values are the strings used before: JSON, the database and the
command line see exactly what they saw."""

from __future__ import annotations

import re

from market.actors import Esp, EspProfile
from market.chain.paths import REPO_ROOT
from market.simulation import SimulationConfig, make_selector
from market.terms import ETHER
from reputation import MWSL, BetaReputation, MostFamiliar, PlainSL, RandomSelection, RoundRobin
from reputation.selection import Selection, SelectionStrategy


def test_esp_profiles_keep_their_strings():
    assert [p.value for p in EspProfile] == ["honest", "slow", "delaying", "cheating"]
    assert EspProfile.CHEATING == "cheating" and f"{EspProfile.SLOW}" == "slow"
    assert Esp.__dataclass_fields__["profile"].default is EspProfile.HONEST


def test_selections_and_strategies_keep_their_strings():
    assert [s.value for s in SelectionStrategy] == ["softmax", "argmax"]
    assert [s.value for s in Selection] == ["softmax", "argmax", "random", "familiar", "round-robin", "beta", "plain-sl"]
    assert {s: s.strategy for s in Selection} == {
        Selection.SOFTMAX: SelectionStrategy.SOFTMAX,
        Selection.ARGMAX: SelectionStrategy.ARGMAX,
        Selection.RANDOM: None,
        Selection.FAMILIAR: None,
        Selection.ROUND_ROBIN: None,
        Selection.BETA: None,
        Selection.PLAIN_SL: None,
    }
    assert SimulationConfig().selection is Selection.SOFTMAX


def test_each_selection_makes_its_selector():
    kinds = {
        Selection.SOFTMAX: MWSL,
        Selection.ARGMAX: MWSL,
        Selection.RANDOM: RandomSelection,
        Selection.FAMILIAR: MostFamiliar,
        Selection.ROUND_ROBIN: RoundRobin,
        Selection.BETA: BetaReputation,
        Selection.PLAIN_SL: PlainSL,
    }
    for selection, kind in kinds.items():
        selector, strategy = make_selector(selection, 2, 3)
        assert isinstance(selector, kind) and strategy == selection.strategy
    assert make_selector("argmax", 2, 3)[1] is SelectionStrategy.ARGMAX  # type: ignore[arg-type]


def test_ether_is_defined_only_in_market_terms():
    assert ETHER == 10**18
    pattern = re.compile(r"^\s*ETHER\s*=|10\s*\*\*\s*18")
    offenders = []
    for folder in ("api", "cli", "market", "benchmarks", "tests", "tools"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            if path == REPO_ROOT / "market" / "terms.py" or path == REPO_ROOT / "tests" / "market" / "test_names.py":
                continue
            offenders += [
                f"{path.relative_to(REPO_ROOT)}:{n}"
                for n, line in enumerate(path.read_text().splitlines(), 1)
                if pattern.search(line)
            ]
    assert not offenders, offenders
