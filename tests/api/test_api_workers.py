"""`aigc-market serve --workers 2` on PostgreSQL: a worker SIGKILLed in the middle of writes loses no acknowledged
write, and the surviving worker takes the indexer over; SQLite refuses several workers (docs/api.md#several-workers)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text

from api.advisory import CHAIN_WRITES, advisory_key, namespace
from api.launcher import ServerProcess
from cli.main import main
from market.chain.anvil import AnvilNode
from market.chain.connection import Chain
from market.chain.contracts import LockState
from market.chain.deploy import Deployment, attach_market
from market.terms import ETHER

#: What api.launcher.HARNESS_ENV's faucet gives every new account.
FAUCET = 10 * ETHER


def labelled(engine: Engine, role: str, schema: str) -> set[int]:
    """Pids of the server processes whose connections to this schema carry the label `aigc-market <role> <pid>`."""
    with engine.connect() as connection:
        names: Sequence[str] = (
            connection.execute(
                text("SELECT application_name FROM pg_stat_activity WHERE application_name LIKE :pattern"),
                {"pattern": f"aigc-market {role} % {schema}"},
            )
            .scalars()
            .all()
        )
        return {int(name.split()[2]) for name in names}


def in_flight(pid: int, port: int) -> int:
    """Connections to `port` that process `pid` has accepted and not closed: requests it is serving (/proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    served = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "01" and fields[9] in inodes:  # 01: ESTABLISHED
            served += 1
    return served


def running_claims(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM idempotent_replies WHERE state = 'running'")).scalar_one())


@contextlib.contextmanager
def chain_writes_held(engine: Engine) -> Iterator[None]:
    """Hold the server's chain lock from outside (its advisory lock): every write of every worker waits in flight."""
    with engine.connect() as connection:
        key = advisory_key(namespace(connection), CHAIN_WRITES)
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})


def wait_for(what: str, check: Callable[[], object], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def iter_polls(seconds: float) -> Iterator[None]:
    """Yield every 50 ms for `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        yield
        time.sleep(0.05)


@pytest.fixture
def two_workers(tmp_path: Path, anvil_node: AnvilNode, pg_url: str) -> Iterator[tuple[ServerProcess, Engine, str]]:
    schema = re.search(r"search_path%3D(\w+)", pg_url)
    assert schema is not None
    server = ServerProcess(
        tmp_path / "data",
        rpc_url=anvil_node.url,
        db_url=pg_url,
        extra_args=["--workers", "2"],
        env={"AIGC_MARKET_INDEXER_POLL_S": "0.1"},
        startup_timeout=120,
    )
    engine = create_engine(pg_url)
    server.start()
    try:
        wait_for(
            "two workers and a leader",
            lambda: len(labelled(engine, "worker", schema[1])) == 2 and labelled(engine, "leader", schema[1]),
        )
        yield server, engine, schema[1]
    finally:
        server.stop()
        engine.dispose()


def test_a_killed_worker_loses_no_acknowledged_write_and_a_survivor_takes_the_indexer_over(
    two_workers: tuple[ServerProcess, Engine, str], anvil_node: AnvilNode
) -> None:
    server, engine, schema = two_workers
    workers = labelled(engine, "worker", schema)
    (leader,) = labelled(engine, "leader", schema)
    (survivor,) = workers - {leader}
    with httpx.Client(base_url=server.url, timeout=60) as http:
        esp = http.post("/accounts").json()
        assert http.post("/esps", json={"name": "esp"}, headers={"Authorization": f"Bearer {esp['api_key']}"}).status_code == 201
        producer = http.post("/accounts").json()
    producer_headers = {"Authorization": f"Bearer {producer['api_key']}"}

    accounts: list[str] = []
    tasks: list[int] = []
    after_kill = {"account": 0, "task": 0}
    cut_off = [0]
    killed = threading.Event()
    stop = threading.Event()

    retried: list[int] = []

    def send(kind: str, n: int) -> httpx.Response | None:
        """One write (a task's with an Idempotency-Key); None if the connection was cut off (not acknowledged)."""
        try:  # a new connection each time, so that the kernel spreads the writes over both workers
            with httpx.Client(base_url=server.url, timeout=60) as client:
                if kind == "account":
                    return client.post("/accounts")
                body = {"prompt": f"{kind} {n}", "esp": esp["address"]}
                return client.post(
                    "/tasks", json=body, headers=producer_headers | {"Idempotency-Key": f"{kind.replace(' ', '-')}-{n}"}
                )
        except httpx.HTTPError:
            return None

    def retry(kind: str, n: int) -> httpx.Response | None:
        """The same keyed write again, until the dead worker's claim of its key is released (by the supervisor)."""
        for _ in iter_polls(30.0):
            reply = send(kind, n)
            if reply is not None and reply.status_code != 409:
                return reply
        return None

    def write(kind: str) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            reply = send(kind, n)
            if reply is None:  # cut off by the kill: not acknowledged
                cut_off[0] += 1
                if kind == "account":
                    continue
                reply = retry(kind, n)
                retried.append(reply.status_code if reply is not None else 0)
                if reply is None:
                    continue
            if reply.is_success:
                if kind == "account":
                    accounts.append(reply.json()["address"])
                else:
                    tasks.append(reply.json()["id"])
                if killed.is_set():
                    after_kill[kind.split()[0]] += 1

    kinds = ("account", "account", "task a", "task b", "task c", "task d")
    writers = [threading.Thread(target=write, args=(kind,)) for kind in kinds]
    for thread in writers:
        thread.start()
    try:
        wait_for("acknowledged writes", lambda: len(accounts) >= 4 and len(tasks) >= 2)
        # Kill the leader while it serves writes: held at the chain lock, so that some are surely in flight there.
        port = int(server.url.rsplit(":", 1)[1])
        for _ in range(10):
            with chain_writes_held(engine):
                # Each worker runs one keyed write of an account at a time: two claims running, one on each worker.
                if any(in_flight(leader, port) and running_claims(engine) == 2 for _ in iter_polls(3.0)):
                    os.kill(leader, signal.SIGKILL)
                    killed.set()
            if killed.is_set():
                break
        assert killed.is_set(), "no write reached the leader"
        # The survivor leads the indexer: PostgreSQL released the dead worker's lock with its connection.
        wait_for("the survivor's leadership", lambda: labelled(engine, "leader", schema) == {survivor})
        wait_for("writes after the kill", lambda: after_kill["account"] >= 4 and after_kill["task"] >= 2)
    finally:
        stop.set()
        for thread in writers:
            thread.join(timeout=120)

    assert cut_off[0] >= 1  # the writes in flight on the killed worker were cut off, unacknowledged
    # A keyed write cut off with its worker runs when retried (its claim released), and once: one task per reply.
    assert all(status == 201 for status in retried)
    assert len(set(tasks)) == len(tasks)
    # Every write that was acknowledged is in the database, and its ether or its tasks' generations on chain.
    chain = Chain.connect(anvil_node.url)
    with engine.connect() as connection:
        stored: set[str] = set(connection.execute(text("SELECT address FROM accounts")).scalars().all())
        delivered: dict[int, str] = dict(
            connection.execute(text("SELECT id, lock_id FROM tasks WHERE state = 'delivered' AND content_sha256 IS NOT NULL")).all()
        )
        meta = connection.execute(
            text("SELECT chain_id, deploy_block, registry_address, exchange_address, ledger_address FROM chain_meta")
        ).one()
    assert set(accounts) <= stored and all(chain.balance(address) == FAUCET for address in accounts)
    assert set(tasks) <= set(delivered)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM tasks")).scalar_one() == len(tasks)
    market = attach_market(
        chain,
        Deployment(meta[0], meta[1], {"AIGCRegistry": meta[2], "AIGCExchange": meta[3], "ReputationLedger": meta[4]}),
    )
    assert all(market.exchange.get_lock(bytes.fromhex(delivered[t][2:])).state == LockState.WITHDRAWN for t in tasks)

    # Events that no write of the server caused keep being indexed, by the survivor's loop (no request is in flight).
    outsider = chain.new_account(ETHER, "outsider")
    market.exchange.register_esp(outsider, market.exchange.min_stake())

    def indexed() -> bool:
        with engine.connect() as connection:
            rows: Sequence[dict[str, str]] = (
                connection.execute(text("SELECT args FROM chain_events WHERE name = 'EspRegistered'")).scalars().all()
            )
            return any(args["esp"] == outsider.address for args in rows)

    wait_for("the outsider's EspRegistered in chain_events", indexed)
    assert labelled(engine, "leader", schema) == {survivor}


def test_several_workers_on_sqlite_are_refused_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--workers", "2", "--data", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--workers 2 needs PostgreSQL" in err
    assert not (tmp_path / "data").exists()  # refused before anything started: no database, no node
