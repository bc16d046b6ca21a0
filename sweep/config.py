"""A sweep's config (a TOML file) and the cells it expands to, each with its config hash.

    kind = "simulate"          # simulate | offload-compare | offload-train | reproduce
    seeds = [0, 1]             # or a count: seeds = 2 is [0, 1]
    search = "grid"            # grid: every combination; random: `samples` cells drawn from the lists
    samples = 4                # random search only
    random_seed = 0            # random search only: which cells are drawn

    [fixed]                    # fields every cell gets
    periods = 5

    [grid]                     # each field a list of values (grid: their product; random: draws)
    producers = [3, 6]
    selection = ["softmax", "random"]

A cell is one combination of fields and one seed; its hash (the first 16 hex digits of the sha256
of its kind and fields, seed included, as sorted JSON) names it in the table, so that a re-run can
skip what is done. Every mistake in the file raises `SweepConfigError` with a one-line message.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any


class SweepConfigError(ValueError):
    """The sweep's config is malformed; the message is one line naming what is wrong."""


class CellKind(StrEnum):
    SIMULATE = "simulate"
    OFFLOAD_COMPARE = "offload-compare"
    OFFLOAD_TRAIN = "offload-train"
    REPRODUCE = "reproduce"


class Search(StrEnum):
    GRID = "grid"
    RANDOM = "random"


TOP_LEVEL = {"kind", "seeds", "search", "samples", "random_seed", "fixed", "grid"}


@dataclass(frozen=True)
class Cell:
    """One run of a sweep: its kind and every field it sets (its seed included)."""

    kind: CellKind
    fields: dict[str, Any]

    @property
    def seed(self) -> int:
        return int(self.fields["seed"])

    @property
    def config_hash(self) -> str:
        text = json.dumps({"kind": self.kind.value, "fields": self.fields}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SweepConfig:
    kind: CellKind
    seeds: tuple[int, ...]
    search: Search
    fixed: dict[str, Any]
    grid: dict[str, list[Any]]
    samples: int = 0
    random_seed: int = 0

    def cells(self) -> list[Cell]:
        """Every cell, seeds innermost: grid order, or `samples` random draws (each for every seed)."""
        names = sorted(self.grid)
        if self.search is Search.GRID:
            points = [dict(zip(names, values, strict=True)) for values in itertools.product(*(self.grid[n] for n in names))]
        else:
            draw = random.Random(self.random_seed)
            points = [{name: draw.choice(self.grid[name]) for name in names} for _ in range(self.samples)]
        return [Cell(self.kind, {**self.fixed, **point, "seed": seed}) for point in points for seed in self.seeds]


def read_sweep_config(path: Path) -> SweepConfig:
    """The sweep config in the TOML file at `path`; `SweepConfigError` on any mistake."""
    try:
        values = tomllib.loads(path.read_text())
    except OSError as exc:
        raise SweepConfigError(f"cannot read --config {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SweepConfigError(f"--config {path} is not valid TOML: {exc}") from None
    return parse_sweep_config(values)


def parse_sweep_config(values: dict[str, Any]) -> SweepConfig:
    """A sweep config from the tables of a TOML file; `SweepConfigError` on any mistake."""
    unknown = sorted(set(values) - TOP_LEVEL)
    if unknown:
        raise SweepConfigError(f"unknown key(s) {', '.join(unknown)}; a sweep config has {', '.join(sorted(TOP_LEVEL))}")
    try:
        kind = CellKind(values.get("kind", ""))
    except ValueError:
        raise SweepConfigError(f"kind must be one of {[k.value for k in CellKind]}, got {values.get('kind')!r}") from None
    try:
        search = Search(values.get("search", "grid"))
    except ValueError:
        raise SweepConfigError(f"search must be grid or random, got {values.get('search')!r}") from None
    seeds = _seeds(values.get("seeds", 1))
    fixed, grid = values.get("fixed", {}), values.get("grid", {})
    if not isinstance(fixed, dict) or not isinstance(grid, dict):
        raise SweepConfigError("[fixed] and [grid] must be tables")
    for name, options in grid.items():
        if not isinstance(options, list) or not options:
            raise SweepConfigError(f"grid.{name} must be a non-empty list of values, got {options!r}")
    both = sorted(set(fixed) & set(grid))
    if both or "seed" in fixed or "seed" in grid:
        raise SweepConfigError(f"a field is set twice: {', '.join(both or ['seed'])} (seeds come from `seeds`)")
    samples, random_seed = values.get("samples", 0), values.get("random_seed", 0)
    if search is Search.RANDOM and (not isinstance(samples, int) or samples < 1):
        raise SweepConfigError(f"a random search needs samples >= 1, got {samples!r}")
    if not isinstance(random_seed, int):
        raise SweepConfigError(f"random_seed must be an integer, got {random_seed!r}")
    config = SweepConfig(kind, seeds, search, dict(fixed), {k: list(v) for k, v in grid.items()}, samples, random_seed)
    from sweep.cells import check_cell  # the cells' own checks name a bad field

    for cell in config.cells():
        try:
            check_cell(cell)
        except (TypeError, ValueError) as exc:
            raise SweepConfigError(f"cell {cell.fields}: {exc}") from None
    return config


def _seeds(value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return tuple(range(value))
    if isinstance(value, list) and value and all(isinstance(s, int) and not isinstance(s, bool) for s in value):
        if len(set(value)) != len(value):
            raise SweepConfigError(f"seeds repeat: {value}")
        return tuple(value)
    raise SweepConfigError(f"seeds must be a count >= 1 or a non-empty list of integers, got {value!r}")
