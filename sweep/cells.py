"""One cell of a sweep, run: its kind's command on its fields and seed, to one row of plain figures.

Every cell runs on its own: a simulate cell deploys the market on its own embedded chain, or on its
own anvil node (`node = "anvil"`, started on a free port and stopped at the end); an offload cell
builds its own engines; a reproduce cell runs its target. The row holds the cell's figures only
(numbers, booleans and short strings); the runner adds the config and the hash.
"""

from __future__ import annotations

import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from sweep.config import Cell, CellKind

SIMULATE_EXTRA = {"node"}
"""Fields of a simulate cell that are not `SimulationConfig` fields: node = "embedded" (default) or "anvil"."""
COMPARE_FIELDS = {"preset", "envs", "steps", "seed"}
TRAIN_FIELDS = {"preset", "algo", "envs", "updates", "episodes", "steps", "policy", "seed"}
REPRODUCE_FIELDS = {"target", "level", "seeds", "seed"}


def check_cell(cell: Cell) -> None:
    """Raise ValueError naming a bad field of `cell` (before anything runs)."""
    fields = dict(cell.fields)
    if cell.kind is CellKind.SIMULATE:
        from market.simulation import SimulationConfig

        node = fields.pop("node", "embedded")
        if node not in ("embedded", "anvil"):
            raise ValueError(f"node must be embedded or anvil, got {node!r}")
        SimulationConfig.from_mapping(fields)
        return
    allowed = {CellKind.OFFLOAD_COMPARE: COMPARE_FIELDS, CellKind.OFFLOAD_TRAIN: TRAIN_FIELDS, CellKind.REPRODUCE: REPRODUCE_FIELDS}
    unknown = sorted(set(fields) - allowed[cell.kind])
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)} for {cell.kind}; allowed: {', '.join(sorted(allowed[cell.kind]))}")
    if cell.kind is CellKind.OFFLOAD_COMPARE:
        from offload_core.compare import CompareSettings

        CompareSettings(**fields)
    elif cell.kind is CellKind.OFFLOAD_TRAIN:
        from offload_core.config import preset
        from offload_core.training import TrainSettings

        preset(fields.pop("preset", "mato"))
        TrainSettings(**fields)
    else:
        from reproduce import Level, TargetName

        TargetName(fields.get("target", ""))
        Level(fields.get("level", "tiny"))


def run_cell(cell: Cell) -> dict[str, Any]:
    """Run `cell` and return its figures (plus `seconds`, its wall time)."""
    import torch

    torch.set_num_threads(1)  # cells run side by side: one thread each
    started = time.perf_counter()
    runners = {
        CellKind.SIMULATE: _simulate,
        CellKind.OFFLOAD_COMPARE: _compare,
        CellKind.OFFLOAD_TRAIN: _train,
        CellKind.REPRODUCE: _reproduce,
    }
    figures = runners[cell.kind](dict(cell.fields))
    return {**figures, "seconds": time.perf_counter() - started}


def _simulate(fields: dict[str, Any]) -> dict[str, Any]:
    from market.chain.anvil import AnvilNode, free_port
    from market.chain.connection import Chain
    from market.simulation import SimulationConfig, run_simulation

    node = fields.pop("node", "embedded")
    config = SimulationConfig.from_mapping(fields)
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if node == "anvil":
            anvil = stack.enter_context(AnvilNode(port=free_port(), order="fifo", balance_ether=10**9))
            chain = Chain.connect(anvil.url)
        else:
            chain = Chain.embedded()
        summary = run_simulation(config, chain, workdir).summary
    keys = (
        "tasks",
        "completed",
        "on_time",
        "refunded",
        "products",
        "trades",
        "trades_refunded",
        "challenges_upheld",
        "challenges_rejected",
        "attacks_attempted",
        "attacks_failed",
        "bonds_released",
        "honest_on_time_rate",
        "cheater_below_honest",
        "cheating_tasks_after_exploration",
        "mean_latency_s",
        "mean_energy_j",
    )
    return {key: summary[key] for key in keys} | {"invariants_hold": all(summary["invariants"].values())}


def _compare(fields: dict[str, Any]) -> dict[str, Any]:
    from offload_core.compare import CompareSettings, compare, metric_names
    from offload_core.config import preset

    settings = CompareSettings(**fields)
    chosen = preset(settings.preset)
    rows = compare(chosen, settings.envs, settings.steps or chosen.steps, settings.seed)
    return {f"{label}/{metric}": rows[label][metric].mean for label in rows for metric in metric_names(chosen)}


def _train(fields: dict[str, Any]) -> dict[str, Any]:
    from offload_core.config import preset
    from offload_core.training import TrainSettings, train

    config = preset(fields.pop("preset", "mato")).config
    result = train(config, TrainSettings(**fields))
    return {
        "episodes": len(result.curve),
        "updates": int(result.curve[-1]["updates"]),
        "first_reward": result.curve[0]["reward"],
        "last_reward": result.curve[-1]["reward"],
    }


def _reproduce(fields: dict[str, Any]) -> dict[str, Any]:
    from reproduce import run

    result = run(fields["target"], fields.get("level", "tiny"), int(fields.get("seeds", 2)))
    verdicts = [str(claim.verdict) for claim in result.claims]
    return {f"claim/{claim.key}": str(claim.verdict) for claim in result.claims} | {
        "claims": len(verdicts),
        "reproduced": sum(v == "reproduced" for v in verdicts),
    }


def full_config(cell: Cell) -> dict[str, Any]:
    """Every field of the cell's run, the defaults included (plain JSON values)."""
    import dataclasses
    import json

    fields = dict(cell.fields)
    if cell.kind is CellKind.SIMULATE:
        from market.simulation import SimulationConfig

        node = fields.pop("node", "embedded")
        return SimulationConfig.from_mapping(fields).to_json() | {"node": node}
    if cell.kind is CellKind.OFFLOAD_COMPARE:
        from offload_core.compare import CompareSettings

        values: dict[str, Any] = dataclasses.asdict(CompareSettings(**fields))
    elif cell.kind is CellKind.OFFLOAD_TRAIN:
        from offload_core.training import TrainSettings

        chosen = fields.pop("preset", "mato")
        values = {"preset": chosen} | dataclasses.asdict(TrainSettings(**fields))
    else:
        values = {"level": "tiny", "seeds": 2} | fields
    plain: dict[str, Any] = json.loads(json.dumps(values, default=str))
    return plain
