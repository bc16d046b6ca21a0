"""Sustained load on the REST API against anvil: reads, product registration, raw web3 transactions.

Starts its own anvil node and `aigc-market serve --rpc` (both on 127.0.0.1, fresh ports, a temporary
data directory, the default SQLite database) and stops both at the end. Three figures, same run:

- reads: GET /products?limit=10 (a real database read: a page of rows and their count) for
  `--read-seconds` from `--concurrency` keep-alive connections of autocannon (npm, pinned in
  package-lock.json), after a one-second warm-up; the rate is the 2xx replies over the run's
  duration (autocannon's --amount mode rounds its duration up to a whole sampling second). The load generator is not Python on
  purpose: an httpx client spends more CPU per request (~1.4 ms) than the server does, on the same
  two cores, so it would measure itself;
- registration: POST /products, the one-transaction write path (one registry transaction that opens
  the commitment of a paid generation, plus the database rows and the indexer run that follow it).
  Protocol v2 registers only from a paid generation, so each product needs a delivered task, made
  first: the ESP (registered, hence staked, by POST /esps) signs an offer, the producer locks the fee
  with it and the ESP withdraws it (POST /tasks: two transactions; its rate is shown too, not a
  target); then `--registrations` POST /products from `--concurrency` concurrent clients;
- raw web3: `--transfers` signed value transfers sent with web3.py's own API, one after the other
  from one sender (estimate_gas, get_block("pending") for the fee, get_transaction_count, a local
  eth_account signature, send_raw_transaction, get_transaction_receipt polled from 0.5 ms with a
  backoff), the client tuned as far as web3.py goes (eth_chainId cached, proxy lookup off);
  measured on the fresh node before the server starts and again at the end, and the faster of the
  two is the baseline of the ratio;
- lean JSON-RPC: the same transfers through `Chain.send_ether` of the node backend (`market.chain.node.RpcChain`), the path the
  server sends its own transactions on (one batched request for estimate, pending block and nonce,
  then eth_sendRawTransactionSync; no web3 formatting). Shown with its own ratio, for information:
  it is several times faster than web3.py, so it is the stricter yardstick.

Targets (issue 7): reads >= 1,000 requests/s; registration >= 0.5x the raw web3 rate.

    python benchmarks/api_load.py [--read-seconds 10] [--registrations 100] [--transfers 100] [--concurrency 16] [--json]

With `--workers N` (N > 1) the server's three phases (reads, registration, the tasks made for it)
run twice on PostgreSQL (`--db`, default the `test` database on 127.0.0.1:5432; each server gets a
fresh schema, dropped afterwards) against one anvil node: `aigc-market serve --workers 1`, then
`--workers N` (docs/api.md#several-workers); it prints reads/s, registrations/s and tasks/s of N
workers against 1 worker, measured in the same run. The transfers are not run then. On a machine
with few cores the load generator, PostgreSQL and anvil share them with the workers: the ratio
says what N workers gain there, not what they gain on a larger machine. Registrations hold the
chain lock (one chain write at a time across the workers), so their ratio is bounded by the part
of a request spent outside it.

    python benchmarks/api_load.py --workers 2 [--db URL] [--read-seconds 10] [--registrations 100] [--json]

Each row also shows the CPU milliseconds per request spent by the load client, the server process
and the anvil node during that phase, which says where the time goes.

With --json the last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import requests
from eth_account.signers.local import LocalAccount
from sqlalchemy import create_engine, text
from web3 import HTTPProvider, Web3
from web3.exceptions import TransactionNotFound
from web3.types import RPCEndpoint

from api.launcher import ServerProcess
from market.chain.anvil import AnvilNode, free_port
from market.chain.connection import Chain
from market.chain.paths import NODE_MODULES

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
READ_TARGET_RPS = 1000.0
REGISTRATION_TARGET_RATIO = 0.5
AUTOCANNON = NODE_MODULES / ".bin" / "autocannon"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (Linux /proc), all its threads, and those of its live
    children (the workers of `serve --workers N`) and of its finished children it waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(value) for value in fields[11:15])
    for child in child_pids(pid):
        with contextlib.suppress(OSError):  # exited meanwhile
            ticks += sum(int(value) for value in Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[11:13])
    return ticks / os.sysconf("SC_CLK_TCK")


def child_pids(pid: int) -> list[int]:
    """The live children of process `pid` (Linux /proc)."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1] == str(pid):
                    children.append(int(entry))
    return children


@dataclass
class CpuMeter:
    """CPU seconds spent by this process (the load client), the server and the node during one phase."""

    pids: dict[str, int]
    children: bool = False
    """Count the CPU of this process's finished children as the client's (a load generator run to its end)."""
    start: dict[str, float] = field(default_factory=dict)
    used: dict[str, float] = field(default_factory=dict)

    def client_seconds(self) -> float:
        if not self.children:
            return time.process_time()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def __enter__(self) -> CpuMeter:
        self.start = {"client": self.client_seconds()} | {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        return self

    def __exit__(self, *exc: object) -> None:
        self.used = {"client": self.client_seconds() - self.start["client"]} | {
            name: cpu_seconds(pid) - self.start[name] for name, pid in self.pids.items()
        }

    def per_request_ms(self, requests: int) -> dict[str, float]:
        return {f"{name}_cpu_ms": round(1000 * used / max(1, requests), 3) for name, used in self.used.items()}


def summarise(name: str, latencies: list[float], elapsed: float, errors: int) -> dict[str, Any]:
    ordered = sorted(latencies)

    def quantile(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")

    return {
        "name": name,
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(elapsed, 3),
        "per_s": round(len(latencies) / elapsed, 1) if elapsed > 0 else 0.0,
        "p50_ms": round(quantile(0.50), 2),
        "p99_ms": round(quantile(0.99), 2),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2) if ordered else float("nan"),
    }


async def drive(url: str, requests: list[tuple[str, str, dict[str, Any]]], concurrency: int) -> tuple[list[float], int, float]:
    """Send `requests` (method, path, httpx kwargs) from `concurrency` workers; latencies of the 2xx ones."""
    latencies: list[float] = []
    errors = 0
    queue = iter(requests)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def worker() -> None:
            nonlocal errors
            for method, path, kwargs in queue:
                started = time.perf_counter()
                try:
                    reply = await client.request(method, path, **kwargs)
                    ok = reply.is_success
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, errors, time.perf_counter() - started


def autocannon(url: str, seconds: int, connections: int) -> dict[str, Any]:
    """GET `url` for `seconds` from `connections` keep-alive connections; rate and latency quantiles."""
    if not AUTOCANNON.is_file():
        raise SystemExit(f"{AUTOCANNON} not found: run `make install`")
    command = [str(AUTOCANNON), "--json", "--connections", str(connections), "--duration", str(seconds), url]
    reply = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120, check=True)
    report = json.loads(reply.stdout)
    errors = int(report["errors"]) + int(report["timeouts"]) + int(report["non2xx"])
    duration = float(report["duration"])
    done = int(report["2xx"])
    return {
        "name": "GET /products?limit=10",
        "requests": done,
        "errors": errors,
        "seconds": round(duration, 3),
        "per_s": round(done / duration, 1) if duration > 0 else 0.0,
        "p50_ms": float(report["latency"]["p50"]),
        "p99_ms": float(report["latency"]["p99"]),
        "mean_ms": float(report["latency"]["mean"]),
    }


def web3_client(rpc_url: str) -> Web3:
    """A web3.py client tuned as far as its public API allows (see the module docstring)."""
    session = requests.Session()
    session.trust_env = False
    return Web3(
        HTTPProvider(rpc_url, session=session, cache_allowed_requests=True, cacheable_requests={RPCEndpoint("eth_chainId")})
    )


def web3_transfer(w3: Web3, sender: LocalAccount, to: str) -> None:
    """One value transfer with web3.py: estimate, fee, nonce, sign, send, wait for the receipt."""
    tx: dict[str, Any] = {"from": sender.address, "to": to, "value": 1, "chainId": w3.eth.chain_id}
    tx["gas"] = int(w3.eth.estimate_gas(tx, "pending") * 1.2)  # type: ignore[arg-type]
    base_fee = w3.eth.get_block("pending")["baseFeePerGas"]
    tx |= {
        "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
        "maxPriorityFeePerGas": 10**9,
        "maxFeePerGas": 2 * base_fee + 10**9,
    }
    tx_hash = w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
    delay = 0.0005
    while True:
        try:
            receipt = w3.eth.get_transaction_receipt(tx_hash)
            break
        except TransactionNotFound:
            time.sleep(delay)
            delay = min(2 * delay, 0.05)
    assert receipt["status"] == 1


def bench_transfers(rpc_url: str, count: int, lean: bool) -> dict[str, Any]:
    """`count` sequential transfers from one fresh sender: web3.py's API, or the server's lean path."""
    chain = Chain.connect(rpc_url)
    sender = chain.new_account(10**20, "bench-sender")
    to = chain.new_account(0, "bench-receiver").address
    if lean:

        def send() -> None:
            chain.send_ether(sender, to, 1)
    else:
        w3 = web3_client(rpc_url)

        def send() -> None:
            web3_transfer(w3, sender, to)

    send()  # warm-up
    latencies = []
    started = time.perf_counter()
    for _ in range(count):
        t = time.perf_counter()
        send()
        latencies.append(time.perf_counter() - t)
    name = "lean JSON-RPC transfer" if lean else "raw web3 value transfer"
    return summarise(name, latencies, time.perf_counter() - started, 0)


def server_phases(
    url: str, pids: dict[str, int], registrations: int, read_seconds: int, concurrency: int
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The server's three phases: POST /tasks (setup), POST /products (registration), GET /products (reads)."""
    with httpx.Client(base_url=url, timeout=60) as http:
        esp = http.post("/accounts").json()
        assert http.post("/esps", json={"name": "bench"}, headers={"Authorization": f"Bearer {esp['api_key']}"}).is_success
        producer = http.post("/accounts").json()
    headers = {"Authorization": f"Bearer {producer['api_key']}"}
    task_requests = [
        ("POST", "/tasks", {"json": {"prompt": f"load {i} {time.time_ns()}", "esp": esp["address"]}, "headers": headers})
        for i in range(registrations)
    ]
    task_ids: list[int] = []

    with CpuMeter(pids) as meter:
        latencies, errors, elapsed = asyncio.run(drive(url, task_requests, concurrency))
    tasks = summarise("POST /tasks (2 tx, setup)", latencies, elapsed, errors) | meter.per_request_ms(len(latencies))
    with httpx.Client(base_url=url, timeout=60) as http:
        offset = 0
        while True:
            page = http.get("/tasks", params={"limit": 100, "offset": offset}, headers=headers).json()
            task_ids += [t["id"] for t in page["items"] if t["state"] == "delivered" and t["token_id"] is None]
            offset += len(page["items"])
            if offset >= page["total"] or not page["items"]:
                break
    reg_requests = [("POST", "/products", {"json": {"task_id": i}, "headers": headers}) for i in task_ids]
    with CpuMeter(pids) as meter:
        latencies, errors, elapsed = asyncio.run(drive(url, reg_requests, concurrency))
    registration = summarise("POST /products (1 tx)", latencies, elapsed, errors) | meter.per_request_ms(len(latencies))

    read_url = f"{url}/products?limit=10"
    autocannon(read_url, 1, concurrency)  # warm-up
    with CpuMeter(pids, children=True) as meter:
        read = autocannon(read_url, read_seconds, concurrency)
    read |= meter.per_request_ms(read["requests"])
    return tasks, registration, read


def run(read_seconds: int, registrations: int, transfers: int, concurrency: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="aigc-api-load-") as tmp, AnvilNode(port=free_port()) as node:
        assert node.process is not None
        with CpuMeter({"anvil": node.process.pid}) as meter:
            raw_before = bench_transfers(node.url, transfers, lean=False)
        raw_before |= meter.per_request_ms(raw_before["requests"]) | {"server_cpu_ms": 0.0}
        with CpuMeter({"anvil": node.process.pid}) as meter:
            lean_before = bench_transfers(node.url, transfers, lean=True)
        lean_before |= meter.per_request_ms(lean_before["requests"]) | {"server_cpu_ms": 0.0}
        server = ServerProcess(Path(tmp) / "data", rpc_url=node.url)
        try:
            server.start()
            assert server.process is not None and node.process is not None
            pids = {"server": server.process.pid, "anvil": node.process.pid}
            tasks, registration, read = server_phases(server.url, pids, registrations, read_seconds, concurrency)

            with CpuMeter(pids) as meter:
                raw_after = bench_transfers(node.url, transfers, lean=False)
            raw_after |= meter.per_request_ms(raw_after["requests"])
            with CpuMeter(pids) as meter:
                lean_after = bench_transfers(node.url, transfers, lean=True)
            lean_after |= meter.per_request_ms(lean_after["requests"])
        finally:
            server.stop()
    for row in (raw_before, lean_before):
        row["name"] += " (before)"
    for row in (raw_after, lean_after):
        row["name"] += " (after)"
    # The faster of the two is the baseline: the node slows down as its state grows, and the ratio
    # must not profit from that.
    raw = max(raw_before, raw_after, key=lambda row: row["per_s"])
    lean = max(lean_before, lean_after, key=lambda row: row["per_s"])
    ratio = registration["per_s"] / raw["per_s"] if raw["per_s"] else 0.0
    lean_ratio = registration["per_s"] / lean["per_s"] if lean["per_s"] else 0.0
    return {
        "read": read,
        "registration": registration,
        "tasks": tasks,
        "raw_web3": raw,
        "raw_web3_before": raw_before,
        "raw_web3_after": raw_after,
        "lean_rpc": lean,
        "lean_rpc_before": lean_before,
        "lean_rpc_after": lean_after,
        "registration_to_raw_ratio": round(ratio, 3),
        "registration_to_lean_ratio": round(lean_ratio, 3),
        "targets": {"read_per_s": READ_TARGET_RPS, "registration_to_raw_ratio": REGISTRATION_TARGET_RATIO},
        "met": {"read": read["per_s"] >= READ_TARGET_RPS, "registration": ratio >= REGISTRATION_TARGET_RATIO},
        "concurrency": concurrency,
        "server": "aigc-market serve (uvicorn, 1 process) on 127.0.0.1, SQLite, anvil via --rpc",
        "clients": {
            "read": "autocannon (npm)",
            "writes": "httpx.AsyncClient",
            "raw_web3": "web3.py (HTTPProvider)",
            "lean_rpc": "market.chain.node.RpcChain",
        },
    }


@contextlib.contextmanager
def fresh_schema(db_url: str) -> Iterator[str]:
    """A URL of `db_url` whose search_path is a new schema, dropped with everything in it afterwards."""
    schema = f"api_load_{uuid.uuid4().hex[:12]}"
    engine = create_engine(db_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            yield f"{db_url}{'&' if '?' in db_url else '?'}options=-csearch_path%3D{schema}"
        finally:
            with engine.connect() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        engine.dispose()


def run_workers(workers: int, db_url: str, read_seconds: int, registrations: int, concurrency: int) -> dict[str, Any]:
    """The server's phases with 1 worker, then with `workers`, each on a fresh PostgreSQL schema and the same anvil."""
    rows: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="aigc-api-load-") as tmp, AnvilNode(port=free_port()) as node:
        assert node.process is not None
        for count in (1, workers):
            with fresh_schema(db_url) as url:
                server = ServerProcess(
                    Path(tmp) / f"data-{count}",
                    rpc_url=node.url,
                    db_url=url,
                    extra_args=["--workers", str(count)],
                    startup_timeout=180,
                )
                try:
                    server.start()
                    assert server.process is not None
                    pids = {"server": server.process.pid, "anvil": node.process.pid}
                    tasks, registration, read = server_phases(server.url, pids, registrations, read_seconds, concurrency)
                finally:
                    server.stop()
            for row in (tasks, registration, read):
                row["name"] += f" [{count} worker{'s' if count > 1 else ''}]"
            rows[count] = {"tasks": tasks, "registration": registration, "read": read}
    one, many = rows[1], rows[workers]

    def ratio(key: str) -> float:
        return round(many[key]["per_s"] / one[key]["per_s"], 3) if one[key]["per_s"] else 0.0

    return {
        "workers": workers,
        "one_worker": one,
        "many_workers": many,
        "read_ratio": ratio("read"),
        "registration_ratio": ratio("registration"),
        "tasks_ratio": ratio("tasks"),
        "concurrency": concurrency,
        "cpus": os.cpu_count(),
        "server": f"aigc-market serve --workers 1 and --workers {workers} on 127.0.0.1, PostgreSQL, anvil via --rpc",
    }


def print_rows(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'measure':<46} {'n':>6} {'err':>4} {'per s':>9} {'p50 ms':>8} {'p99 ms':>8}   CPU ms per request: "
        f"{'client':>7} {'server':>7} {'anvil':>7}"
    )
    for row in rows:
        print(
            f"{row['name']:<46} {row['requests']:>6} {row['errors']:>4} {row['per_s']:>9.1f} {row['p50_ms']:>8.2f} "
            f"{row['p99_ms']:>8.2f}   {'':>20}{row['client_cpu_ms']:>7.2f} {row['server_cpu_ms']:>7.2f} "
            f"{row['anvil_cpu_ms']:>7.2f}"
        )


def main_workers(args: argparse.Namespace) -> int:
    result = run_workers(args.workers, args.db, args.read_seconds, args.registrations, args.concurrency)
    print_rows([result[side][key] for key in ("read", "registration", "tasks") for side in ("one_worker", "many_workers")])
    n = result["workers"]
    print(f"reads: {n} workers / 1 worker: {result['read_ratio']:.2f}x")
    print(f"registrations: {n} workers / 1 worker: {result['registration_ratio']:.2f}x")
    print(f"tasks (2 tx, setup): {n} workers / 1 worker: {result['tasks_ratio']:.2f}x")
    if args.json:
        print(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--read-seconds", type=int, default=10, help="seconds of GET requests timed (autocannon)")
    parser.add_argument("--registrations", type=int, default=100, help="POST /products timed (as many tasks made first)")
    parser.add_argument("--transfers", type=int, default=100, help="raw web3 value transfers timed")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent HTTP clients (connections)")
    parser.add_argument("--json", action="store_true", help="end with one JSON object")
    parser.add_argument(
        "--workers", type=int, default=1, help="> 1: the server's figures with this many workers against 1, on PostgreSQL"
    )
    parser.add_argument("--db", default=PG_URL, help="PostgreSQL database of --workers (a schema per server, dropped after)")
    args = parser.parse_args(argv)
    if args.workers > 1:
        return main_workers(args)
    result = run(args.read_seconds, args.registrations, args.transfers, args.concurrency)
    keys = ("read", "registration", "tasks", "raw_web3_before", "raw_web3_after", "lean_rpc_before", "lean_rpc_after")
    print_rows([result[key] for key in keys])
    print(
        f"reads: {result['read']['per_s']:.0f}/s (target >= {READ_TARGET_RPS:.0f}: {'met' if result['met']['read'] else 'NOT met'})"
    )
    print(
        f"registration / raw web3: {result['registration_to_raw_ratio']:.2f}x (target >= {REGISTRATION_TARGET_RATIO}x: "
        f"{'met' if result['met']['registration'] else 'NOT met'})"
    )
    print(
        f"registration / lean JSON-RPC transfers (the server's own sender, no target): {result['registration_to_lean_ratio']:.2f}x"
    )
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
