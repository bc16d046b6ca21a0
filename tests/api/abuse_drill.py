"""Abuse drills against a real server (issue 18): `aigc-market serve` on an anvil node, the faucet on and the
server's default rate limits and quotas, then three hostile clients:

1. account creations from one client (by default 1,000), some with made-up X-Forwarded-For headers: how many
   were created, throttled, funded, and how much the funder paid out (bounded by the faucet's budgets);
2. a flood of reads from one client (by default 10,000, 16 at a time) while a second client (another
   loopback address, 127.0.0.2) reads at a calm pace: the flood's statuses and the second client's p50/p99;
3. simulation requests from one account (a third address, 127.0.0.3; by default 20 at once), then runs one after the other until its
   quota refuses: statuses and codes.

    .venv/bin/python tests/api/abuse_drill.py [--accounts 1000] [--reads 10000] [--simulations 20] [--json]

Figures go to stdout (with --json, one JSON object last). Traffic goes only to the loopback addresses 127.0.0.1 to 127.0.0.3.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from api.launcher import ServerProcess  # noqa: E402
from market.chain.anvil import AnvilNode, free_port  # noqa: E402
from market.chain.connection import Chain  # noqa: E402
from market.terms import ETHER  # noqa: E402

FAUCET_WEI = 10 * ETHER

#: The server's settings for the drill: the faucet on (10 ether an account, the default budgets: 100 ether per
#: client, 1,000 in all), every rate limit and quota at its default except runs per account (kept small so
#: that the quota is reached in a short drill).
DRILL_ENV = {
    "AIGC_MARKET_FAUCET_WEI": str(FAUCET_WEI),
    "AIGC_MARKET_FAUCET_CLIENT_BUDGET_WEI": str(100 * ETHER),
    "AIGC_MARKET_FAUCET_BUDGET_WEI": str(1000 * ETHER),
    "AIGC_MARKET_RATE_LIMIT_PER_S": "50",
    "AIGC_MARKET_RATE_LIMIT_BURST": "200",
    "AIGC_MARKET_ACCOUNT_RATE_LIMIT_PER_S": "20",
    "AIGC_MARKET_ACCOUNT_CREATIONS_PER_HOUR": "30",
    "AIGC_MARKET_ACCOUNT_CREATION_BURST": "10",
    "AIGC_MARKET_SIMULATIONS_PER_ACCOUNT": "3",
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def account_drill(url: str, chain: Chain, count: int) -> dict[str, Any]:
    funder = chain.balance(chain.funder.address)
    statuses: Counter[int] = Counter()
    funding: Counter[str] = Counter()
    started = time.monotonic()
    with httpx.Client(base_url=url, timeout=30) as http:
        for i in range(count):
            # Every tenth request claims to come from elsewhere: no trusted proxy, so the header is ignored.
            headers = {"X-Forwarded-For": f"10.{i % 250}.{i // 250}.1"} if i % 10 == 0 else {}
            reply = http.post("/accounts", headers=headers)
            statuses[reply.status_code] += 1
            if reply.status_code == 201:
                funding[reply.json()["funding"]] += 1
    spent = funder - chain.balance(chain.funder.address)
    return {
        "requests": count,
        "created": statuses[201],
        "throttled_429": statuses[429],
        "other_statuses": {str(k): v for k, v in statuses.items() if k not in (201, 429)},
        "funding": dict(funding),
        "funder_paid_wei": spent,
        "funder_paid_ether": round(spent / ETHER, 4),
        "faucet_client_budget_ether": 100,
        "seconds": round(time.monotonic() - started, 2),
    }


def read_drill(url: str, reads: int, concurrency: int = 16) -> dict[str, Any]:
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    left = [reads]
    done = threading.Event()

    def flood() -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while True:
                with lock:
                    if left[0] <= 0:
                        return
                    left[0] -= 1
                status = http.get("/products?limit=10").status_code
                with lock:
                    statuses[status] += 1

    calm: list[float] = []
    calm_statuses: Counter[int] = Counter()

    def second_client() -> None:
        transport = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(base_url=url, timeout=30, transport=transport) as http:
            while not done.is_set():
                start = time.perf_counter()
                status = http.get("/products?limit=10").status_code
                calm.append(time.perf_counter() - start)
                calm_statuses[status] += 1
                time.sleep(0.1)

    with httpx.Client(base_url=url, timeout=30, transport=httpx.HTTPTransport(local_address="127.0.0.2")) as http:
        baseline = []
        for _ in range(30):
            start = time.perf_counter()
            http.get("/products?limit=10")
            baseline.append(time.perf_counter() - start)
            time.sleep(0.02)
    started = time.monotonic()
    watcher = threading.Thread(target=second_client)
    watcher.start()
    workers = [threading.Thread(target=flood) for _ in range(concurrency)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    done.set()
    watcher.join()
    return {
        "flood_requests": reads,
        "flood_concurrency": concurrency,
        "flood_statuses": {str(k): v for k, v in sorted(statuses.items())},
        "flood_seconds": round(elapsed, 2),
        "flood_per_s": round(reads / elapsed, 1),
        "second_client_requests": len(calm),
        "second_client_statuses": {str(k): v for k, v in sorted(calm_statuses.items())},
        "second_client_p50_ms": round(statistics.median(calm) * 1000, 1),
        "second_client_p99_ms": round(percentile(calm, 0.99) * 1000, 1),
        "second_client_max_ms": round(max(calm) * 1000, 1),
        "second_client_p50_ms_before_the_flood": round(statistics.median(baseline) * 1000, 1),
    }


def simulation_drill(url: str, count: int) -> dict[str, Any]:
    config = {"producers": 2, "esps": 2, "consumers": 1, "attackers": 0, "periods": 1, "random_periods": 0}
    # From a third address: the first client spent its account creations in the first drill.
    with httpx.Client(base_url=url, timeout=60, transport=httpx.HTTPTransport(local_address="127.0.0.3")) as http:
        key = http.post("/accounts").json()["api_key"]
        headers = {"Authorization": f"Bearer {key}"}
        burst: Counter[str] = Counter()
        first = None
        for _ in range(count):
            reply = http.post("/simulations", json=config, headers=headers)
            burst[f"{reply.status_code} {reply.json().get('code', 'accepted')}"] += 1
            if reply.status_code == 202 and first is None:
                first = reply.json()["id"]
        sequence: list[str] = []
        if first is not None:
            wait_done(http, first, headers)
        for _ in range(10):  # one after the other until the account's quota says no
            reply = http.post("/simulations", json=config, headers=headers)
            if reply.status_code != 202:
                sequence.append(f"{reply.status_code} {reply.json()['code']} retry-after={reply.headers.get('retry-after')}")
                break
            sequence.append(f"202 {wait_done(http, reply.json()['id'], headers)}")
        runs = http.get("/simulations", headers=headers).json()
    return {
        "burst_requests": count,
        "burst_outcomes": dict(burst),
        "then_one_after_the_other": sequence,
        "runs_recorded_for_the_account": runs["total"],
    }


def wait_done(http: httpx.Client, sim_id: str, headers: dict[str, str], timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = http.get(f"/simulations/{sim_id}", headers=headers)
        if reply.status_code == 200 and reply.json()["status"] != "running":
            return str(reply.json()["status"])
        time.sleep(0.5)
    return "running"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--reads", type=int, default=10_000)
    parser.add_argument("--simulations", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, AnvilNode(port=free_port()) as node:
        server = ServerProcess(Path(tmp) / "data", rpc_url=node.url, env=DRILL_ENV)
        with server:
            chain = Chain.connect(node.url)
            result["accounts"] = account_drill(server.url, chain, args.accounts)
            print(f"accounts: {json.dumps(result['accounts'])}", flush=True)
            time.sleep(5)  # the flood starts with full buckets
            result["reads"] = read_drill(server.url, args.reads)
            print(f"reads: {json.dumps(result['reads'])}", flush=True)
            result["simulations"] = simulation_drill(server.url, args.simulations)
            print(f"simulations: {json.dumps(result['simulations'])}", flush=True)
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
