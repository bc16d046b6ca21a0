"""Write or check contracts/gas-snapshot.json: gas per contract operation (protocol v2) on eth-tester.

    python tools/gas_snapshot.py           # check: exit 1 if an operation costs > 2% above the snapshot
    python tools/gas_snapshot.py --update  # rewrite the snapshot (commit it with the change that moved gas)

Figures come from benchmarks/gas.py's measure() and summarise() (steady state: the median of the
calls after the first; deployments: their one call). tests/contracts/test_gas_snapshot.py runs the
check in `make test`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = REPO_ROOT / "contracts" / "gas-snapshot.json"
TOLERANCE = 0.02
REPEATS = 3


def _benchmark():
    spec = importlib.util.spec_from_file_location("aigc_gas_benchmark", REPO_ROOT / "benchmarks" / "gas.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure_gas() -> dict[str, int]:
    from market.chain.connection import Chain

    benchmark = _benchmark()
    steady, _ = benchmark.summarise(benchmark.measure(Chain.embedded(), REPEATS))
    return dict(sorted(steady.items()))


def compare(snapshot: dict[str, int], measured: dict[str, int], tolerance: float = TOLERANCE) -> list[str]:
    """Problems: operations above snapshot * (1 + tolerance), and operations missing on either side."""
    problems = []
    for op, gas in measured.items():
        if op not in snapshot:
            problems.append(f"{op}: {gas:,} gas, not in the snapshot (run tools/gas_snapshot.py --update)")
        elif gas * 10_000 > snapshot[op] * (10_000 + round(tolerance * 10_000)):  # integers: exact at 2%
            problems.append(f"{op}: {gas:,} gas, {gas / snapshot[op] - 1:+.2%} over the snapshot's {snapshot[op]:,}")
    problems += [f"{op}: in the snapshot but no longer measured" for op in snapshot if op not in measured]
    return problems


def load_snapshot() -> dict[str, int]:
    return {op: int(gas) for op, gas in json.loads(SNAPSHOT.read_text())["gas"].items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--update", action="store_true", help="rewrite the snapshot with the current figures")
    args = parser.parse_args(argv)
    measured = measure_gas()
    if args.update:
        SNAPSHOT.write_text(
            json.dumps(
                {
                    "backend": "eth-tester (py-evm, prague)",
                    "how": "steady-state gas per operation of protocol v2 from benchmarks/gas.py measure(), repeats=3; "
                    "`make test` fails when an operation costs more than 2% above these figures",
                    "tolerance": TOLERANCE,
                    "gas": measured,
                },
                indent=2,
            )
            + "\n"
        )
        print(f"wrote {SNAPSHOT}")
        return 0
    problems = compare(load_snapshot(), measured)
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
