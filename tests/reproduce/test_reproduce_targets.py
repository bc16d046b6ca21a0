"""Every reproduce target at a tiny budget: its table, files and verdict words, and the same numbers for the same seeds.

The budgets here are smaller than `--tiny` (two sweep points, two episodes of two steps): the tests
check structure and determinism, not results.
"""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from offload_core.compare import run_variant
from offload_core.config import preset
from reproduce import TARGETS, TargetName, asp, lc, mato, reputation
from reproduce.claims import VERDICTS, EnvBudget, Verdict
from reproduce.report import TargetResult, write

MATO_TEST = replace(mato.TINY, updates=2, envs=2, episodes=2, steps=2, batch_size=4, learning_starts=4, eval_envs=2, eval_steps=2)
SEEDS = 2


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as `aigc-market reproduce` runs (on a busy 2-core machine, 7x faster here)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run_tiny(name: TargetName) -> TargetResult:
    if name == TargetName.MATO_CONVERGENCE:
        return mato.convergence(seeds=SEEDS, budget=MATO_TEST)
    if name == TargetName.MATO_MODELS:
        return mato.models(seeds=SEEDS, budget=replace(MATO_TEST, values=(3, 6)))
    if name == TargetName.MATO_EDS:
        return mato.eds(seeds=SEEDS, budget=replace(MATO_TEST, values=(5, 20)))
    if name == TargetName.LC_TABLE2:
        return lc.table2(seeds=SEEDS, budget=EnvBudget("test", envs=2, steps=4))
    if name == TargetName.ASP_BASELINES:
        return asp.baselines(seeds=SEEDS, budget=EnvBudget("test", envs=2, steps=4))
    if name == TargetName.REPUTATION_TRENDS:
        return reputation.reputation_trends(seeds=SEEDS, budget=reputation.BUDGETS["tiny"])
    return reputation.reputation_workload(seeds=SEEDS, budget=reputation.BUDGETS["tiny"])


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("name", list(TargetName))
def test_target_writes_its_table_and_files_and_repeats_itself(name: TargetName, tmp_path: Path):
    result = run_tiny(name)
    assert result.name == name.value and result.seeds == SEEDS and result.claims
    for claim in result.claims:
        assert claim.verdict.value in VERDICTS
        assert claim.text and claim.paper and claim.rule and claim.ours
        assert claim.verdict == Verdict.REPRODUCED or claim.reason, claim.key
    assert len({c.key for c in result.claims}) == len(result.claims)
    assert all(row.interval.n == SEEDS and row.interval.low <= row.interval.mean <= row.interval.high for row in result.summary)

    paths = write(result, tmp_path / "a")
    assert {p.name for p in paths} == {"runs.csv", "summary.csv", "claims.csv", f"{name.value}.png", "report.md"}
    assert (tmp_path / "a" / f"{name.value}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    claims = read_csv(tmp_path / "a" / "claims.csv")
    assert list(claims[0]) == ["claim", "kind", "text", "paper", "ours", "verdict", "rule", "reason"]
    assert [row["verdict"] for row in claims] == [c.verdict.value for c in result.claims]
    summary = read_csv(tmp_path / "a" / "summary.csv")
    assert list(summary[0]) == ["group", "variant", "metric", "mean", "ci95_low", "ci95_high", "seeds", "paper"]
    assert {int(row["seed"]) for row in read_csv(tmp_path / "a" / "runs.csv")} == set(range(SEEDS))
    assert "| claim | paper | ours (95% CI over seeds) | verdict | reason |" in (tmp_path / "a" / "report.md").read_text()

    again = run_tiny(name)
    write(again, tmp_path / "b")
    for file in ("runs.csv", "summary.csv", "claims.csv"):
        assert (tmp_path / "a" / file).read_text() == (tmp_path / "b" / file).read_text(), file


def test_every_target_is_registered_with_a_runner():
    assert set(TARGETS) == set(TargetName)
    with pytest.raises(ValueError, match="seeds must be at least 2"):
        from reproduce import run

        run(TargetName.LC_TABLE2, "tiny", 1)


def test_run_variant_takes_a_placement_function_as_it_takes_a_scheduler_name():
    """asp's upper bound is a function; its runs go through the same loop as the named schedulers."""
    chosen = preset("asp")
    named = run_variant(chosen, chosen.caching, "round-robin", 3, 6, 7)
    given = run_variant(chosen, chosen.caching, asp.placement(asp.ROUND_ROBIN), 3, 6, 7)
    assert named.keys() == given.keys()
    for metric in named:
        torch.testing.assert_close(given[metric], named[metric], msg=metric)


def test_upper_bound_picks_the_best_asp_that_fits():
    from offload_core.engine import EdgeEngine

    chosen = preset("asp")
    engine = EdgeEngine(chosen.config, 4, chosen.caching, dtype=torch.float64)
    engine.reset(3)
    stream = torch.Generator().manual_seed(4)
    for _ in range(5):
        tasks = engine.sample_tasks(stream)
        view = engine.view
        free = view.server_capacity - view.occupied  # [B, N]
        action = asp.upper_bound(engine, tasks, stream)
        target = action.split[..., 1:-1].argmax(dim=-1)  # [B, M]
        first = target[:, 0]  # the first device's task sees the step's whole free capacity
        demand = tasks.demand[:, 0]
        fits = free >= demand.unsqueeze(-1)
        quality = engine.topology.server_quality
        best_fit = torch.where(fits, quality, torch.full_like(quality, -torch.inf)).max(dim=-1).values
        chosen_quality = quality.gather(1, first.unsqueeze(-1)).squeeze(-1)
        assert torch.equal(chosen_quality[fits.any(-1)], best_fit[fits.any(-1)])
        engine.step(tasks, action)
