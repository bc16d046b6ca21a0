"""benchmarks/simulate_scale.py runs on its own anvil node and ends with its JSON figures."""

from __future__ import annotations

import json
import subprocess
import sys

from market.chain.paths import REPO_ROOT


def test_the_scale_benchmark_prints_rates_beside_the_nodes_ceiling_and_ends_with_json():
    proc = subprocess.run(
        [sys.executable, "benchmarks/simulate_scale.py", "--sizes", "2", "--periods", "2", "--transfers", "200", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert figures["ceiling_transfers_per_s"] > 0
    (run,) = figures["runs"]
    # 2 producers over 2 periods: 4 tasks; each settled task is at least a lock and a rating.
    assert (run["producers"], run["periods"], run["tasks"]) == (2, 2, 4)
    assert run["transactions"] >= 2 * run["tasks"] and run["invariants_hold"]
    assert run["tx_per_s"] == run["transactions"] / run["seconds"]
    assert "tx/s / ceiling" in proc.stdout
