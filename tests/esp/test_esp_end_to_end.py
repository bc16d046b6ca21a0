"""Issue #17 end to end on anvil: the API server, ESP node processes with their own keys, and producers through
the Python client (one API-key account, one self-custodied), every party in a process or key of its own.

The server coordinates only: it holds no ESP key and no self-custodied key (the last assertion scans its
database and every file it wrote). A node SIGKILLed in the middle of a job and restarted reveals once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from api.launcher import NodeProcess, ServerProcess
from client.market_client import ApiClientError, MarketClient
from market.chain.anvil import AnvilNode, free_port
from market.chain.connection import Chain
from market.chain.contracts import LockState
from market.chain.deploy import Deployment, Market, attach_market
from market.invariants import exchange_solvent, live_products_owned, registry_bonds_backed
from market.terms import ETHER

#: Seconds a test waits for a node to move a task (a node's long poll is 1 s here).
NODE_S = 60.0


@pytest.fixture
def anvil() -> Iterator[AnvilNode]:
    with AnvilNode(port=free_port()) as node:
        yield node


@pytest.fixture
def server(tmp_path: Path, anvil: AnvilNode) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path / "data", rpc_url=anvil.url, env={"AIGC_MARKET_SIMULATED_ESPS": "false"}) as process:
        yield process


def funded_key(chain: Chain, path: Path | None = None, ether: int = 1) -> LocalAccount:
    account: LocalAccount = Account.create()
    chain.fund([(account.address, ether * ETHER)])
    if path is not None:
        path.write_text(bytes(account.key).hex() + "\n")
        path.chmod(0o600)
    return account


def start_node(server: ServerProcess, tmp_path: Path, chain: Chain, name: str, *args: str) -> tuple[NodeProcess, LocalAccount]:
    key = funded_key(chain, tmp_path / f"{name}.key")
    node = NodeProcess(server.url, tmp_path / f"{name}.key", tmp_path / f"{name}.sqlite", ["--name", name, "--wait", "1", *args])
    return node.start(), key


def wait_for(client: MarketClient, task_id: int, *states: str, timeout: float = NODE_S) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.task(task_id).state
        if state in states:
            return state
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} is {client.task(task_id).state}, not {states}, after {timeout:.0f} s")


def wait_for_esps(client: MarketClient, count: int) -> list[str]:
    deadline = time.monotonic() + NODE_S
    while time.monotonic() < deadline:
        esps = client.esps().items
        if len(esps) >= count:
            return [e.address for e in esps]
        time.sleep(0.2)
    raise AssertionError(f"{count} ESP nodes did not register within {NODE_S:.0f} s")


def market_of(client: MarketClient, chain: Chain) -> Market:
    info = client.chain_info()
    deployment = info.deployment
    return attach_market(chain, Deployment(int(deployment["chain_id"]), int(deployment["block"]), dict(deployment["contracts"])))


def check_money(market: Market) -> None:
    for name, (held, *_rest) in {
        "exchange solvent": exchange_solvent(market),
        "registry bonds backed": registry_bonds_backed(market),
    }.items():
        assert held, name
    assert live_products_owned(market)


def secrets_in(directory: Path, keys: list[LocalAccount]) -> list[str]:
    """The files under `directory` that hold any of `keys`, as raw bytes or as hex (either case, with or without 0x)."""
    needles = []
    for key in keys:
        raw = bytes(key.key)
        needles += [raw, raw.hex().encode(), raw.hex().upper().encode()]
    return [str(path) for path in directory.rglob("*") if path.is_file() and any(n in path.read_bytes() for n in needles)]


def test_two_nodes_and_two_producers_run_the_whole_lifecycle_and_the_server_holds_no_key_of_theirs(
    tmp_path: Path, anvil: AnvilNode, server: ServerProcess
) -> None:
    chain = Chain.connect(anvil.url)
    honest, honest_key = start_node(server, tmp_path, chain, "honest")
    failing, failing_key = start_node(server, tmp_path, chain, "failing", "--withhold-key")
    try:
        with_key, _ = MarketClient.with_new_account(server.url)
        own_key = funded_key(chain, ether=2)
        self_custodied = MarketClient.sign_in(server.url, own_key)
        registered = set(wait_for_esps(with_key, 2))
        assert registered == {honest_key.address, failing_key.address}
        esps = {"honest": honest_key.address, "failing": failing_key.address}
        market = market_of(with_key, chain)

        # Both producers, each to a registered product, through the honest node.
        products = {}
        for name, producer in (("api key", with_key), ("self-custodied", self_custodied)):
            task = producer.create_task(f"a lighthouse at dusk, for the {name} producer", esp=esps["honest"])
            assert task.state == "requested"
            wait_for(producer, task.id, "offered")
            offered = producer.task(task.id)
            assert offered.cost is not None and offered.cost.latency_s > 0 and offered.generation_s is not None
            assert producer.lock(task.id).state == "locked"
            wait_for(producer, task.id, "delivered")
            product = producer.register_product(task.id)
            assert producer.task(task.id).state == "registered"
            assert producer.rate(task.id, positive=True, score=90).rated
            products[name] = product.token_id
            assert market.registry.owner_of(product.token_id) == producer.me().address
        check_money(market)

        # The failing node takes the job and never reveals: refunded after the timelock, rated negative.
        task = with_key.create_task("a storm over the sea", esp=esps["failing"])
        wait_for(with_key, task.id, "offered")
        assert with_key.lock(task.id).state == "locked"
        time.sleep(3)  # the node has had the job for several polls, and withholds the key
        with pytest.raises(ApiClientError) as early:
            with_key.refund(task.id)
        assert early.value.code == "AIGCExchangeTimelockNotExpired"
        chain.advance_time(with_key.task(task.id).timelock - chain.now() + 1)
        assert with_key.refund(task.id).state == "refunded"
        assert with_key.rate(task.id, positive=False).rated
        assert with_key.reputation(esps["failing"]).negatives == 1
        check_money(market)

        # A sale: the self-custodied producer's product, final, bought by the API-key producer.
        chain.advance_time(market.registry.challenge_window() + 1)
        trade = with_key.open_trade(products["self-custodied"], 10**16)
        assert self_custodied.claim_trade(trade.id).state == "claimed"  # two signatures: approval, claim
        assert market.registry.owner_of(products["self-custodied"]) == with_key.me().address
        check_money(market)
    finally:
        for node in (honest, failing):
            node.stop()
    server.stop()
    leaked = secrets_in(server.data_dir, [honest_key, failing_key, own_key])
    assert leaked == [], f"the server's files hold a key it must never see: {leaked}"


def test_a_node_killed_in_the_middle_of_a_job_reveals_once_after_its_restart(
    tmp_path: Path, anvil: AnvilNode, server: ServerProcess
) -> None:
    chain = Chain.connect(anvil.url)
    node, node_key = start_node(server, tmp_path, chain, "restarted")
    try:
        producer, _ = MarketClient.with_new_account(server.url)
        wait_for_esps(producer, 1)
        market = market_of(producer, chain)
        task = producer.create_task("a kite over the dunes")
        wait_for(producer, task.id, "offered")
        node.kill()  # SIGKILL after its offer: its key for the job is only in its job file
        producer.lock(task.id)
        time.sleep(2)
        assert producer.task(task.id).state == "locked"
        node.start()
        wait_for(producer, task.id, "delivered")
        locked = producer.task(task.id)
        assert locked.lock_id is not None
        lock_id = bytes.fromhex(locked.lock_id[2:])
        assert market.exchange.get_lock(lock_id).state == LockState.WITHDRAWN
        reveals = [e for e in chain.events(market.exchange.contract, "Withdrawn") if bytes(e.args["id"]) == lock_id]
        assert len(reveals) == 1
        node.kill()  # and once more, after the job is done: a restart must not reveal again
        node.start()
        time.sleep(3)
        reveals = [e for e in chain.events(market.exchange.contract, "Withdrawn") if bytes(e.args["id"]) == lock_id]
        assert len(reveals) == 1
        with pytest.raises(ApiClientError) as refused:  # completed, so never refunded as well
            chain.advance_time(locked.timelock - chain.now() + 1)
            producer.refund(task.id)
        assert refused.value.status == 409
        check_money(market)
    finally:
        node.stop()
