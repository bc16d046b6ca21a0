"""`aigc-market sweep` (issue 20, item 2): 4 cells on a local Ray with 2 workers and in a process pool,
interrupted and resumed without redoing finished cells; the config's expansion and its errors.

Ray takes seconds to start: the module starts one session (2 CPUs, no dashboard) and shuts it down.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from sweep.config import Cell, CellKind, SweepConfigError, parse_sweep_config, read_sweep_config
from sweep.runner import RESULTS, run_sweep

#: 2 purchase probabilities x 2 seeds: 4 tiny markets of one period on their own embedded chains.
FOUR_CELLS = """
kind = "simulate"
seeds = [0, 1]

[fixed]
periods = 1
producers = 2
esps = 2
consumers = 1
attackers = 0
random_periods = 1

[grid]
purchase_probability = [0.0, 0.5]
"""


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def interrupted_then_resumed(config_text: str, out: Path, **how: Any) -> tuple[list[str], list[str]]:
    """Run the sweep until two cells finished, interrupt it, run it again: the hashes each run finished."""
    config = parse_sweep_config(__import__("tomllib").loads(config_text))
    first: list[str] = []

    def stop_after_two(row: dict[str, Any]) -> None:
        first.append(row["config_hash"])
        if len(first) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(config, out, on_row=stop_after_two, **how)
    second: list[str] = []
    resumed = run_sweep(config, out, on_row=lambda row: second.append(row["config_hash"]), **how)
    assert (resumed.skipped, resumed.ran, resumed.failed) == (2, 2, 0)
    return first, second


def check_table(out: Path) -> None:
    expected = {cell.config_hash for cell in parse_sweep_config(__import__("tomllib").loads(FOUR_CELLS)).cells()}
    lines = [json.loads(line) for line in (out / RESULTS).read_text().splitlines()]
    assert len(lines) == 4 and {row["config_hash"] for row in lines} == expected  # no cell ran twice
    with (out / "results.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert {row["config_hash"] for row in table} == expected and all(row["status"] == "ok" for row in table)
    # One row per cell and seed, with the cell's full config: its own fields and every default.
    assert sorted((row["config.purchase_probability"], row["seed"]) for row in table) == [
        ("0.0", "0"),
        ("0.0", "1"),
        ("0.5", "0"),
        ("0.5", "1"),
    ]
    assert {row["config.producers"] for row in table} == {"2"} and {row["config.temperature"] for row in table} == {"0.1"}
    assert {row["tasks"] for row in table} == {"2"} and {row["invariants_hold"] for row in table} == {"True"}


def test_four_cells_on_a_local_ray_resume_after_an_interruption_without_redoing_finished_cells(tmp_path: Path, ray_session):
    first, second = interrupted_then_resumed(FOUR_CELLS, tmp_path, workers=2)
    assert len(first) == 2 and len(second) == 2 and not set(first) & set(second)
    check_table(tmp_path)


def test_four_cells_in_a_process_pool_resume_after_an_interruption_without_redoing_finished_cells(tmp_path: Path):
    first, second = interrupted_then_resumed(FOUR_CELLS, tmp_path, workers=2, pool=True)
    assert len(first) == 2 and len(second) == 2 and not set(first) & set(second)
    check_table(tmp_path)


def test_a_grid_is_every_combination_for_every_seed_and_a_random_search_draws_samples():
    grid = parse_sweep_config({"kind": "simulate", "seeds": 3, "grid": {"producers": [2, 3], "esps": [2, 4]}})
    cells = grid.cells()
    assert len(cells) == 2 * 2 * 3 and {c.seed for c in cells} == {0, 1, 2}
    assert len({c.config_hash for c in cells}) == 12  # every cell has its own hash
    drawn = parse_sweep_config({"kind": "simulate", "search": "random", "samples": 5, "seeds": [7], "grid": {"producers": [2, 3]}})
    assert len(drawn.cells()) == 5 and {c.fields["producers"] for c in drawn.cells()} <= {2, 3}


def test_a_cells_hash_depends_on_its_fields_and_seed_and_not_on_their_order():
    a = Cell(CellKind.SIMULATE, {"producers": 2, "seed": 0, "esps": 3})
    assert a.config_hash == Cell(CellKind.SIMULATE, {"esps": 3, "producers": 2, "seed": 0}).config_hash
    assert a.config_hash != Cell(CellKind.SIMULATE, {"producers": 2, "seed": 1, "esps": 3}).config_hash
    assert a.config_hash != Cell(CellKind.OFFLOAD_COMPARE, {"producers": 2, "seed": 0, "esps": 3}).config_hash


@pytest.mark.parametrize(
    "text,fragment",
    [
        ('kind = "dance"', "kind must be one of"),
        ('kind = "simulate"\nseeds = 0', "seeds must be"),
        ('kind = "simulate"\n[grid]\nproducers = 3', "grid.producers must be a non-empty list"),
        ('kind = "simulate"\n[grid]\nproducers = [0, 2]', "producers"),
        ('kind = "simulate"\nsearch = "random"', "samples >= 1"),
        ('kind = "simulate"\ncolour = 1', "unknown key"),
        ('kind = "offload-compare"\n[fixed]\nproducers = 2', "unknown field"),
        ('kind = "simulate"\n[fixed]\nseed = 3', "set twice"),
        ("kind = ", "not valid TOML"),
    ],
)
def test_a_bad_sweep_config_prints_one_line_and_exits_2(tmp_path: Path, capsys, text: str, fragment: str):
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    with pytest.raises(SweepConfigError, match=fragment):
        read_sweep_config(path)
    assert main(["sweep", "--config", str(path), "--out", str(tmp_path / "out")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0]
