"""The ESP node: holds its key, takes the market's jobs, and claims its fees on chain itself.

The coordinator (the market API) only routes jobs: it asks for an offer (`offer`), says a producer
locked one (`reveal`) or that it still lacks an opening (`deliver`). The node never takes its word
for a lock: before every reveal it reads the lock from the chain (a generation lock, `Locked`, before
the timelock), and every loop it also checks its own offered jobs against the chain, so that a lying
or absent coordinator cannot make it lose a fee. Every job is committed to SQLite (`esp.jobs`) before
the step that depends on it, so that a restart resumes where the last run stopped: never two reveals
of one lock, never a lock left unrevealed before its timelock while the node runs (docs/esp-node.md).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Protocol as Interface

from eth_account.signers.local import LocalAccount

from client.market_client import ApiClientError, ChainInfo, EspJob, JobAction, MarketClient
from esp.jobs import SETTLED_STATES, JobCost, JobState, JobStore, StoredJob
from esp.placement import NodeEngine
from market.chain.connection import Chain
from market.chain.contracts import EspState, LockKind, LockState
from market.chain.deploy import Deployment, Market, attach_market
from market.chain.errors import ChainError, ContractRevert
from market.chain.offers import Offer, Opening, SignedOffer, offer_id
from market.content import Generator
from market.generators import DEFAULT_GENERATOR, make_generator, timed_generate
from market.protocol import DuplicateCommitment, Protocol
from market.terms import ETHER, MarketTerms
from offload_core.names import CachingPolicy

log = logging.getLogger("esp.node")

GENERATION_ATTEMPTS = 3
"""Fresh seeds tried when the content comes out a near-copy of an earlier commitment (the guard refuses it)."""
BACKOFF_S = (1.0, 30.0)
"""First and longest wait before the node asks an unreachable coordinator again (doubling in between)."""


class NodeError(Exception):
    """Why the node cannot start (or the market refuses it for good), in one line: the command prints it, exit 2."""


class PollInterrupted(BaseException):
    """Raised by the signal handler into a long-poll in progress: the node stops waiting for jobs.

    A BaseException, so that no `except Exception` inside the client swallows it."""


class Coordinator(Interface):
    """What the node asks of the market API (`client.market_client.MarketClient` is one)."""

    def chain_info(self) -> ChainInfo: ...

    def register_esp(self, name: str) -> object: ...

    def esp_jobs(self, wait_s: float = 20.0) -> list[EspJob]: ...

    def submit_offer(
        self,
        task_id: int,
        signed: SignedOffer,
        ciphertext: bytes,
        *,
        latency_s: float,
        energy_j: float,
        completed: bool,
        quality: float,
        breakdown: dict[str, float],
        generation_s: float,
    ) -> object: ...

    def submit_delivery(self, task_id: int, opening: Opening, key: bytes) -> object: ...

    def close(self) -> None: ...


@dataclass
class NodeConfig:
    """How to run one node (the options of `aigc-market esp run`)."""

    api_url: str
    account: LocalAccount
    db_path: Path
    name: str = "esp"
    generator: str = DEFAULT_GENERATOR
    servers: int = 1
    caching: CachingPolicy = CachingPolicy.LFU
    seed: int = 0
    """Seed of the node's engine (its servers' topology and task stream)."""
    wait_s: float = 20.0
    """How long one long-poll for jobs waits."""
    retry_s: float = 5.0
    """How soon the node acts again on a job the market repeats (a lock it withholds, an offer refused):
    the market answers a long-poll at once while it has work, so without this a repeated job is a busy loop."""
    rpc_url: str | None = None
    """The chain's JSON-RPC URL; default: the one the coordinator publishes."""
    withhold_key: bool = False
    """Fault injection: take jobs, never reveal (the test of refunds)."""
    protocol: Protocol | None = None
    """An already attached market (tests: the embedded chain); then no RPC connection is made."""


def is_transient(exc: BaseException) -> bool:
    """A failure that asking again later may cure: no connection, a timeout, a 5xx or 429, an unreachable chain."""
    if isinstance(exc, ApiClientError):
        return exc.status == 0 or exc.status == 429 or exc.status >= 500
    return isinstance(exc, OSError | TimeoutError | ChainError) and not isinstance(exc, ContractRevert)


class EspNode:
    """One ESP node: `start()` once, then `run()` (or `step()` at a time) until `stop()`."""

    def __init__(self, config: NodeConfig, connect: Callable[[], Coordinator] | None = None) -> None:
        self.config = config
        self.account = config.account
        self._connect = connect or (lambda: MarketClient.sign_in(config.api_url, config.account))
        self._client: Coordinator | None = None
        self._stopping = threading.Event()
        self._polling = False
        self._backoff = BACKOFF_S[0]
        self._acted: dict[tuple[int, str], float] = {}
        self.generator: Generator
        self.protocol: Protocol
        self.store: JobStore
        self.engine: NodeEngine

    @property
    def market(self) -> Market:
        return self.protocol.market

    # -- start ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Check the options, sign in, attach the chain, stake if needed, register, reload the jobs.

        Raises `NodeError` with a one-line reason when any of it fails."""
        try:
            self.generator = make_generator(self.config.generator)
            self.engine = NodeEngine(self.config.servers, self.config.caching, self.config.seed)
        except ValueError as exc:
            raise NodeError(str(exc)) from exc
        client = self._sign_in()
        try:
            info = client.chain_info()
        except Exception as exc:  # as in `_sign_in`
            raise NodeError(f"cannot read the market's chain from {self.config.api_url}: {exc}") from exc
        self.protocol = self.config.protocol or self._attach(info)
        self._ensure_staked()
        self._register(client)
        self.store = JobStore(self.config.db_path)
        stored = self.store.in_states()
        for job in stored:  # the duplicate guard must know every commitment signed before a restart
            self.protocol.remember(self.account.address, job.offer.producer, job.opening)
        log.info(
            "ESP %s (%s) ready: %d stored jobs, %d servers, caching %s, generator %s%s",
            self.config.name,
            self.account.address,
            len(stored),
            self.config.servers,
            self.config.caching,
            self.config.generator,
            ", WITHHOLDING KEYS (fault injection)" if self.config.withhold_key else "",
        )
        self.check_own_jobs()
        for job in self.store.in_states(JobState.REVEALED):  # delivered to nobody before the restart
            self._guarded(job.task_id, "deliver", partial(self._deliver, job))

    def _sign_in(self) -> Coordinator:
        try:
            self._client = self._connect()
        except Exception as exc:  # whatever the transport raises: the node cannot start without a session
            raise NodeError(f"cannot sign in to {self.config.api_url}: {exc}") from exc
        return self._client

    def _attach(self, info: ChainInfo) -> Protocol:
        rpc_url = self.config.rpc_url or info.rpc_url
        if rpc_url is None:
            raise NodeError(
                "the market's chain has no public JSON-RPC endpoint (an embedded chain): "
                "serve the market on a node (serve --rpc) or give the node --rpc"
            )
        try:
            chain = Chain.connect(rpc_url, private_key=self.account.key.hex())
            market = attach_market(chain, Deployment(**info.deployment))
            return Protocol(market, MarketTerms(**info.terms))
        except (ChainError, ValueError, TypeError, KeyError) as exc:
            raise NodeError(f"cannot attach the market's chain at {rpc_url}: {exc}") from exc

    def _ensure_staked(self) -> None:
        """Stake the terms' stake unless the exchange already knows this ESP (protocol v2, docs/protocol.md 2.1)."""
        exchange, address = self.market.exchange, self.account.address
        state = exchange.esp_info(address).state
        if state == EspState.ACTIVE:
            return
        if state != EspState.NONE:
            raise NodeError(f"ESP {address} is {state.name.lower()} on chain: it cannot take jobs")
        stake = self.protocol.terms.esp_stake
        held = self.market.chain.balance(address)
        if held <= stake:
            raise NodeError(f"{address} holds {held / ETHER:g} ether; staking needs {stake / ETHER:g} ether and gas: fund it first")
        try:
            self.protocol.stake(self.account)
        except ChainError as exc:
            raise NodeError(f"staking failed: {exc}") from exc
        log.info("staked %g ether on chain", stake / ETHER)

    def _register(self, client: Coordinator) -> None:
        try:
            client.register_esp(self.config.name)
        except ApiClientError as exc:
            if exc.status == 409 and exc.code == "already_registered":
                return
            raise NodeError(f"the market refused to register this ESP: {exc.code}: {exc.detail}") from exc
        except Exception as exc:  # as in `_sign_in`
            raise NodeError(f"cannot register with {self.config.api_url}: {exc}") from exc
        log.info("registered with the market as %r", self.config.name)

    # -- the loop ---------------------------------------------------------------------------------

    def run(self) -> None:
        """Serve jobs until `stop()` (or a signal, see `install_signal_handlers`); then close."""
        try:
            while not self._stopping.is_set():
                self.step()
        finally:
            self.close()
        log.info("stopped")

    def step(self) -> None:
        """One long-poll and the jobs it brought, then the node's own check of its offered jobs."""
        jobs = self._poll()
        due = self._due(jobs)
        for job in due:
            self.handle(job)
            if self._stopping.is_set():  # drain: the job in hand is finished, the others wait for a restart
                return
        if not self._stopping.is_set():
            self.check_own_jobs()
        if jobs and not due:  # only jobs acted on moments ago: pause rather than poll again at once
            self._stopping.wait(self.config.retry_s)

    def _due(self, jobs: list[EspJob]) -> list[EspJob]:
        """The jobs not acted on within the last `retry_s` seconds (and remember these as acted on now)."""
        now = time.monotonic()
        self._acted = {key: at for key, at in self._acted.items() if now - at < self.config.retry_s}
        due = [job for job in jobs if (job.task_id, job.action) not in self._acted]
        self._acted.update({(job.task_id, job.action): now for job in due})
        return due

    def stop(self) -> None:
        """Drain: finish the job in hand, start no new long-poll."""
        self._stopping.set()

    def install_signal_handlers(self) -> None:
        """Ctrl-C and SIGTERM drain the node (a long-poll in progress is abandoned at once)."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("%s: draining", signal.Signals(signum).name)
        self.stop()
        if self._polling:
            raise PollInterrupted

    def close(self) -> None:
        """Close the job store and the session (safe to call twice)."""
        if hasattr(self, "store"):
            self.store.close()
        self._drop_client()

    def _poll(self) -> list[EspJob]:
        """The coordinator's next jobs ([] after a failure, which is logged and waited out).

        Raises `NodeError` when the market refuses the node for good (a 4xx other than 401 and 429)."""
        if self._stopping.is_set():
            return []
        try:
            if self._client is None:
                self._client = self._connect()
            self._polling = True
            try:
                jobs = self._client.esp_jobs(self.config.wait_s)
            finally:
                self._polling = False
        except PollInterrupted:
            return []
        except Exception as exc:
            if isinstance(exc, ApiClientError) and exc.status != 401 and not is_transient(exc):
                raise NodeError(f"the market refuses this node's long-poll: {exc.status} {exc.code}: {exc.detail}") from exc
            if not (is_transient(exc) or isinstance(exc, ApiClientError)):
                raise
            log.warning("jobs: %s; asking again in %gs", exc, self._backoff)
            self._drop_client()
            self._stopping.wait(self._backoff)
            self._backoff = min(self._backoff * 2, BACKOFF_S[1])
            return []
        self._backoff = BACKOFF_S[0]
        return jobs

    def _drop_client(self) -> None:
        """Forget the session (it signs in again before the next poll)."""
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception as exc:  # closing a broken connection must not stop the node
                log.debug("closing the client: %s", exc)

    @property
    def client(self) -> Coordinator:
        if self._client is None:
            self._client = self._connect()
        return self._client

    # -- jobs -------------------------------------------------------------------------------------

    def handle(self, job: EspJob) -> None:
        """One job from the coordinator; a failure is logged (the job comes back, or the own check finds it)."""
        action = JobAction(job.action)
        if action == JobAction.OFFER:
            self._guarded(job.task_id, action, partial(self._offer, job))
        elif action == JobAction.REVEAL:
            self._guarded(job.task_id, action, partial(self._reveal, job))
        else:
            self._guarded(job.task_id, action, partial(self._deliver_requested, job))

    def _guarded(self, task_id: int, action: str, step: Callable[[], None]) -> None:
        try:
            step()
        except ApiClientError as exc:
            if exc.status == 401:
                self._drop_client()
            log.warning("task %d %s: the market answered %s %s: %s", task_id, action, exc.status, exc.code, exc.detail)
        except Exception as exc:  # one job's failure must not stop the others; SQLite says where it stands
            if is_transient(exc):
                log.warning("task %d %s: %s (tried again later)", task_id, action, exc)
            else:
                log.exception("task %d %s: failed", task_id, action)

    def _offer(self, job: EspJob) -> None:
        """Make (or resend) the offer of `job`: stored and committed before it leaves the node."""
        stored = self.store.get(job.task_id)
        if stored is not None and (stored.offer.producer.lower() != job.producer.lower() or stored.offer.fee != job.fee_wei):
            log.error("task %d offer: refused: the stored offer is for another producer or fee", job.task_id)
            return
        if stored is not None and self._expired_unlocked(stored):
            log.info("task %d offer: the stored offer expired unlocked; making a new one", job.task_id)
            stored = None
        if stored is None:
            stored = self._make_offer(job)
            outcome = "submitted"
        else:
            outcome = "resubmitted"
        cost = stored.cost
        self.client.submit_offer(
            stored.task_id,
            stored.signed,
            stored.ciphertext,
            latency_s=cost.latency_s,
            energy_j=cost.energy_j,
            completed=cost.completed,
            quality=cost.quality,
            breakdown=cost.breakdown,
            generation_s=cost.generation_s,
        )
        log.info("task %d offer: %s (lock id 0x%s)", stored.task_id, outcome, stored.lock_id.hex())

    def _make_offer(self, job: EspJob) -> StoredJob:
        """Place the job on this node's servers, generate with a fresh secret seed, sign the offer, store it."""
        cost = self.engine.place()
        prompt_hash = hashlib.sha256(job.prompt.encode()).digest()
        for _ in range(GENERATION_ATTEMPTS):
            content, generation_s = timed_generate(self.generator, job.prompt, seed=secrets.token_bytes(32))
            try:
                made = self.protocol.make_offer(self.account, job.producer, content, prompt_hash, fee=job.fee_wei)
                break
            except DuplicateCommitment as exc:
                log.warning("task %d offer: %s; generating again with a new seed", job.task_id, exc)
        else:
            raise DuplicateCommitment(f"{GENERATION_ATTEMPTS} generations came out near-copies of earlier commitments")
        lock_id = offer_id(made.offer, chain_id=self.protocol.chain_id, exchange=self.market.exchange.address)
        job_cost = JobCost(cost.latency_s, cost.energy_j, cost.completed, cost.quality, cost.breakdown, generation_s)
        return self.store.add(job.task_id, made, lock_id, job_cost)

    def _expired_unlocked(self, stored: StoredJob) -> bool:
        """The offer can never be locked any more: past its expiry with no lock."""
        if self.market.chain.now() <= stored.offer.expiry:
            return False
        return self.market.exchange.get_lock(stored.lock_id).state == LockState.NONE

    def _reveal(self, job: EspJob) -> None:
        stored = self.store.get(job.task_id)
        if stored is None:
            log.warning("task %d reveal: skipped: no offer of this node for it", job.task_id)
            return
        if job.offer is not None and Offer.from_json(job.offer) != stored.offer:
            log.warning("task %d reveal: the market names another offer; the stored one is checked on chain", job.task_id)
        self.settle(stored)

    def _deliver_requested(self, job: EspJob) -> None:
        stored = self.store.get(job.task_id)
        if stored is None:
            log.warning("task %d deliver: skipped: no offer of this node for it", job.task_id)
        elif stored.state in (JobState.REVEALED, JobState.DELIVERED):
            self._deliver(stored)
        else:  # the market says the key is on chain: the chain says whether it is
            self.settle(stored)

    def check_own_jobs(self) -> None:
        """Settle, from the chain alone, every job whose reveal is not known to have landed."""
        for stored in self.store.in_states(JobState.OFFERED, JobState.REVEALING):
            self._guarded(stored.task_id, "check", partial(self.settle, stored))

    def settle(self, stored: StoredJob) -> None:
        """Act on what the chain says of the job's lock: reveal (once), deliver, or close the job."""
        task_id, offer = stored.task_id, stored.offer
        if stored.state in SETTLED_STATES:
            log.info("task %d settle: nothing to do: %s already", task_id, stored.state)
            return
        lock = self.market.exchange.get_lock(stored.lock_id)
        if lock.state == LockState.WITHDRAWN:  # revealed already (before a crash, say): never again
            if stored.state != JobState.REVEALED:
                self.store.set_state(task_id, JobState.REVEALED)
            self._deliver(stored)
        elif lock.state == LockState.REFUNDED:
            self.store.set_state(task_id, JobState.REFUNDED)
            log.info("task %d settle: refunded to the producer", task_id)
        elif lock.state == LockState.NONE:
            if self.market.chain.now() > offer.expiry:
                self.store.set_state(task_id, JobState.EXPIRED)
                log.info("task %d settle: the offer expired unlocked", task_id)
        elif lock.kind != LockKind.GENERATION:
            log.error("task %d settle: lock 0x%s is not a generation lock", task_id, stored.lock_id.hex())
        elif self.market.chain.now() >= offer.timelock:
            log.warning("task %d settle: locked, but the timelock passed: the producer may refund", task_id)
        elif self.config.withhold_key:
            log.info("task %d settle: locked; withholding the key (fault injection)", task_id)
        else:
            self._reveal_on_chain(stored)

    def _reveal_on_chain(self, stored: StoredJob) -> None:
        """The one place a reveal is sent: marked `revealing` first, then `revealed` once mined."""
        task_id = stored.task_id
        self.store.set_state(task_id, JobState.REVEALING)
        try:
            self.protocol.reveal(self.account, stored.offer, stored.key)
        except ContractRevert as exc:
            state = self.market.exchange.get_lock(stored.lock_id).state
            if state != LockState.WITHDRAWN:
                self.store.set_state(task_id, JobState.REFUNDED if state == LockState.REFUNDED else JobState.OFFERED)
                log.warning("task %d reveal: reverted: %s", task_id, exc)
                return
        self.store.set_state(task_id, JobState.REVEALED)
        log.info("task %d reveal: the key is on chain, the fee withdrawn", task_id)
        self._deliver(stored)

    def _deliver(self, stored: StoredJob) -> None:
        self.client.submit_delivery(stored.task_id, stored.opening, stored.key)
        self.store.set_state(stored.task_id, JobState.DELIVERED)
        log.info("task %d deliver: the opening and key handed to the market", stored.task_id)
