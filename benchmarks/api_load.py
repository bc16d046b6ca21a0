"""Sustained load on the REST API against anvil: reads, product registration, raw web3 transactions, and
generations end to end through ESP node processes.

Starts its own anvil node and `aigc-market serve --rpc` (both on 127.0.0.1, fresh ports, a temporary
data directory, the default SQLite database) and stops both at the end. The figures, same run:

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
  it is several times faster than web3.py, so it is the stricter yardstick;
- end to end (issue 17), last, against the same server and anvil: `--end-to-end` tasks (default 40; 0
  skips it) from request to registered product, through `--nodes` ESP node processes (default 2:
  `aigc-market esp run --wait 1`, the default deterministic generator, each with a key of its own funded
  by anvil's funder; started after the other phases so that their polls cost those nothing, and timed only
  once every node has staked and registered) and `--producers` API-key producers (default 8). Each producer
  is one thread with the package's own client (`MarketClient`, sync httpx): the client a producer really
  uses, and its threads sleep most of the time, so the client's CPU stays small beside the server's (it is
  shown). Each producer takes the next task and loops: POST /tasks naming one of the nodes (alternating by
  task), polls GET /tasks/{id} until `offered`, locks the fee, polls until `delivered`, registers the
  product. A task's latency runs from its POST /tasks to its registered product; the rate is tasks over
  the phase's wall time. Polling is part of the figure: the producer sleeps 0.05 s between polls, and the
  node learns of its work by long-poll (the server looks for work every 0.2 s while one waits). Each task
  is three transactions (the producer's lock, the node's reveal, the registration) plus the node's two
  round trips to the market (the offer with its ciphertext; the delivery of the key and opening), each
  after a long-poll brought the job. The CPU of the client, server and anvil is shown per task, and the nodes' summed.
  Baseline, measured in the same run: the same lifecycle by the server-run simulated ESP (the POST /tasks
  and POST /products rows above, taken as a sequential pipeline, 1 / (1/tasks_per_s + 1/registrations_per_s));
  `end_to_end_to_simulated_ratio` = end-to-end tasks/s over it, no target. The two are not peers: there
  the server plays the ESP inside one request (no offer round trip, no node long-poll, no producer poll, no
  separate lock request), with `--concurrency` requests in flight rather than `--producers`, so the ratio
  says what real, separate parties cost the market's throughput, not a defect of the node path.

Targets (issue 7): reads >= 1,000 requests/s; registration >= 0.5x the raw web3 rate.

    python benchmarks/api_load.py [--read-seconds 10] [--registrations 100] [--transfers 100] [--concurrency 16]
        [--end-to-end 40] [--producers 8] [--nodes 2] [--json]

With `--workers N` (N > 1) the server's three phases (reads, registration, the tasks made for it)
run twice on PostgreSQL (`--db`, default the `test` database on 127.0.0.1:5432; each server gets a
fresh schema, dropped afterwards) against one anvil node: `aigc-market serve --workers 1`, then
`--workers N` (docs/api.md#several-workers); it prints reads/s, registrations/s and tasks/s of N
workers against 1 worker, measured in the same run. The transfers and the end-to-end phase are not run then. On a machine
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
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import create_engine, text
from web3 import HTTPProvider, Web3
from web3.exceptions import TransactionNotFound
from web3.types import RPCEndpoint

from api.launcher import NodeProcess, ServerProcess
from client.market_client import MarketClient
from market.chain.anvil import AnvilNode, free_port
from market.chain.connection import Chain
from market.chain.paths import NODE_MODULES
from market.terms import ETHER

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
READ_TARGET_RPS = 1000.0
REGISTRATION_TARGET_RATIO = 0.5
AUTOCANNON = NODE_MODULES / ".bin" / "autocannon"
#: How long a producer of the end-to-end phase sleeps between two GET /tasks/{id} (part of the measured latency).
E2E_POLL_S = 0.05
#: The longest a producer waits for one state of one task (an offer, a delivery) before it counts an error.
E2E_STAGE_TIMEOUT_S = 120.0
#: The longest the ESP nodes may take to start, stake and register.
NODE_START_TIMEOUT_S = 120.0
#: What the anvil funder sends each ESP node's key: its stake (0.1 ether) and the gas of its reveals.
NODE_FUNDS_WEI = 10 * ETHER


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


def start_nodes(api_url: str, rpc_url: str, directory: Path, count: int) -> list[NodeProcess]:
    """`count` ESP node processes (`aigc-market esp run --wait 1`, the default deterministic generator), each with a
    key of its own that the anvil funder funds; started, not yet registered (see `wait_for_nodes`)."""
    chain = Chain.connect(rpc_url)
    keys: list[LocalAccount] = [Account.create() for _ in range(count)]
    chain.fund([(key.address, NODE_FUNDS_WEI) for key in keys])
    directory.mkdir(parents=True, exist_ok=True)
    nodes = []
    for i, key in enumerate(keys):
        key_file = directory / f"esp-{i}.key"
        with open(os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:  # as `esp keygen` writes it
            out.write(bytes(key.key).hex() + "\n")
        nodes.append(NodeProcess(api_url, key_file, directory / f"esp-{i}.sqlite", ["--name", f"bench-node-{i}", "--wait", "1"]))
    try:
        for node in nodes:
            node.start()
    except BaseException:
        stop_nodes(nodes)
        raise
    return nodes


def stop_nodes(nodes: list[NodeProcess]) -> None:
    """SIGTERM every node at once (each drains and exits), then wait for each (`NodeProcess.stop`: SIGKILL after 30 s)."""
    for node in nodes:
        if node.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.process.pid, signal.SIGTERM)
    for node in nodes:
        node.stop()


def wait_for_nodes(api_url: str, nodes: list[NodeProcess]) -> list[str]:
    """The ESP addresses of `nodes` once the market lists every one of them (each staked and registered itself)."""
    addresses = []
    for node in nodes:
        key = Account.from_key(bytes.fromhex(node.key_file.read_text().strip()))
        addresses.append(key.address)
    deadline = time.monotonic() + NODE_START_TIMEOUT_S
    with MarketClient(api_url) as anonymous:
        while time.monotonic() < deadline:
            listed = {esp.address.lower() for esp in anonymous.esps(limit=100).items}
            if all(address.lower() in listed for address in addresses):
                return addresses
            for node in nodes:
                if node.process is not None and node.process.poll() is not None:
                    raise RuntimeError(f"an ESP node exited with code {node.process.returncode}: {node.log.read_text()[-2000:]}")
            time.sleep(0.2)
    raise RuntimeError(f"the ESP nodes did not register within {NODE_START_TIMEOUT_S:.0f} s")


def wait_for_state(client: MarketClient, task_id: int, state: str) -> None:
    """Poll GET /tasks/{id} every `E2E_POLL_S` until the task is in `state`; an error if it ends elsewhere or times out."""
    deadline = time.monotonic() + E2E_STAGE_TIMEOUT_S
    while True:
        now = client.task(task_id).state
        if now == state:
            return
        if now in ("refunded", "abandoned", "registered"):
            raise RuntimeError(f"task {task_id} is {now}, waiting for {state}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"task {task_id} is still {now} after {E2E_STAGE_TIMEOUT_S:.0f} s, waiting for {state}")
        time.sleep(E2E_POLL_S)


def end_to_end(
    api_url: str, rpc_url: str, directory: Path, pids: dict[str, int], tasks: int, producers: int, nodes: int
) -> dict[str, Any]:
    """`tasks` generations from request to registered product: `nodes` ESP node processes, `producers` API-key
    producers in one thread each (the module docstring says what the figure holds)."""
    processes = start_nodes(api_url, rpc_url, directory, nodes)
    try:
        esps = wait_for_nodes(api_url, processes)
        clients = [MarketClient.with_new_account(api_url)[0] for _ in range(producers)]
        latencies: list[float] = []
        failures: list[str] = []
        counter = iter(range(tasks))
        guard = threading.Lock()
        run_id = time.time_ns()

        def produce(client: MarketClient) -> None:
            while True:
                with guard:
                    k = next(counter, None)
                if k is None:
                    return
                started = time.perf_counter()
                try:
                    task = client.create_task(f"end to end {k} {run_id}", esp=esps[k % len(esps)])
                    wait_for_state(client, task.id, "offered")
                    client.lock(task.id)
                    wait_for_state(client, task.id, "delivered")
                    client.register_product(task.id)
                except Exception as exc:  # an error reply, a timeout, anything else: counted, and the producer goes on
                    with guard:
                        failures.append(f"task {k}: {exc.__class__.__name__}: {exc}")
                    continue
                elapsed = time.perf_counter() - started
                with guard:
                    latencies.append(elapsed)

        node_pids = {f"node{i}": node.process.pid for i, node in enumerate(processes) if node.process is not None}
        threads = [threading.Thread(target=produce, args=(client,), name=f"producer-{i}") for i, client in enumerate(clients)]
        with CpuMeter(pids | node_pids) as meter:
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
        for client in clients:
            client.close()
    finally:
        stop_nodes(processes)
    row = summarise(f"end to end ({nodes} nodes, {producers} producers)", latencies, elapsed, len(failures))
    cpu = meter.per_request_ms(len(latencies))
    nodes_cpu = sum(cpu.pop(f"{name}_cpu_ms") for name in node_pids)
    ordered = sorted(latencies)

    def quantile(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3) if ordered else float("nan")

    return (
        row
        | cpu
        | {
            "tasks": len(latencies),
            "per_s": round(len(latencies) / elapsed, 3) if elapsed > 0 else 0.0,
            "p50_s": quantile(0.50),
            "p99_s": quantile(0.99),
            "nodes_cpu_ms": round(nodes_cpu, 3),
            "nodes": nodes,
            "producers": producers,
            "poll_s": E2E_POLL_S,
            "first_errors": failures[:3],
        }
    )


def simulated_pipeline_per_s(tasks_per_s: float, registrations_per_s: float) -> float:
    """The server-run simulated ESP's lifecycle as a sequential pipeline: POST /tasks, then POST /products."""
    if tasks_per_s <= 0 or registrations_per_s <= 0:
        return 0.0
    return 1 / (1 / tasks_per_s + 1 / registrations_per_s)


def run(
    read_seconds: int,
    registrations: int,
    transfers: int,
    concurrency: int,
    e2e_tasks: int = 0,
    producers: int = 8,
    nodes: int = 2,
) -> dict[str, Any]:
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
            e2e = None
            if e2e_tasks > 0:
                e2e = end_to_end(server.url, node.url, Path(tmp) / "nodes", pids, e2e_tasks, producers, nodes)
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
    simulated = simulated_pipeline_per_s(tasks["per_s"], registration["per_s"])
    e2e_ratio = e2e["per_s"] / simulated if e2e is not None and simulated else None
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
        "end_to_end": e2e,
        "simulated_pipeline_per_s": round(simulated, 3),
        "end_to_end_to_simulated_ratio": None if e2e_ratio is None else round(e2e_ratio, 4),
        "targets": {"read_per_s": READ_TARGET_RPS, "registration_to_raw_ratio": REGISTRATION_TARGET_RATIO},
        "met": {"read": read["per_s"] >= READ_TARGET_RPS, "registration": ratio >= REGISTRATION_TARGET_RATIO},
        "concurrency": concurrency,
        "server": "aigc-market serve (uvicorn, 1 process) on 127.0.0.1, SQLite, anvil via --rpc",
        "clients": {
            "read": "autocannon (npm)",
            "writes": "httpx.AsyncClient",
            "raw_web3": "web3.py (HTTPProvider)",
            "lean_rpc": "market.chain.node.RpcChain",
            "end_to_end": "client.market_client.MarketClient (sync httpx), one thread per producer",
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
    parser.add_argument(
        "--end-to-end", type=int, default=40, help="tasks from request to registered product through ESP nodes (0: skip)"
    )
    parser.add_argument("--producers", type=int, default=8, help="concurrent producers of the end-to-end phase")
    parser.add_argument("--nodes", type=int, default=2, help="ESP node processes of the end-to-end phase")
    args = parser.parse_args(argv)
    if args.workers > 1:
        return main_workers(args)
    result = run(
        args.read_seconds, args.registrations, args.transfers, args.concurrency, args.end_to_end, args.producers, args.nodes
    )
    keys = ("read", "registration", "tasks", "raw_web3_before", "raw_web3_after", "lean_rpc_before", "lean_rpc_after")
    print_rows([result[key] for key in keys] + ([result["end_to_end"]] if result["end_to_end"] else []))
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
    e2e = result["end_to_end"]
    if e2e:
        print(
            f"end to end: {e2e['tasks']} tasks, {e2e['errors']} errors, {e2e['per_s']:.3f} tasks/s, p50 {e2e['p50_s']:.2f} s, "
            f"p99 {e2e['p99_s']:.2f} s (polls every {e2e['poll_s']} s); CPU ms per task: client {e2e['client_cpu_ms']:.1f}, "
            f"server {e2e['server_cpu_ms']:.1f}, anvil {e2e['anvil_cpu_ms']:.1f}, nodes {e2e['nodes_cpu_ms']:.1f}"
        )
        print(
            f"end to end / simulated ESP pipeline (1 / (1/tasks + 1/registrations) = {result['simulated_pipeline_per_s']:.2f}/s, "
            f"no target): {result['end_to_end_to_simulated_ratio']:.3f}x"
        )
        for error in e2e["first_errors"]:
            print(f"end-to-end error: {error}")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
