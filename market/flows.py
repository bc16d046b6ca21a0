"""The lifecycle flows of the simulation, each a function usable on its own.

Every on-chain step goes through `market.protocol.Protocol` (`docs/protocol.md`); these functions
decide who does what and keep the simulation's books. generation: select an ESP by reputation,
place and cost the task on that ESP's servers with the offloading core (a `Placement`: a rule
scheduler of the core or a trained MADDPG policy, which sees every server but may use only the
chosen ESP's), the ESP makes its signed offer
(content encrypted and committed), the producer locks the fee with it, the ESP reveals the key (or
the producer refunds after the timelock), the producer decrypts, checks the content against the
commitment, registers and rates. trade: the buyer locks the price of a final product, the seller
claims (token moves, proceeds and royalty credited) or the buyer refunds. attacks: near-duplicates
(owners scan new registrations by pHash and challenge), and the attacks of the v1 threat table that
v2 defeats: squatting a pending registration (A1), priority theft by pHash (A2), the exit scam (A5).
"""

from __future__ import annotations

import hashlib
import math
import random
import secrets
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, cast

import torch
from eth_account.signers.local import LocalAccount

from market.actors import Attacker, Esp, EspProfile, Producer
from market.chain.connection import TxResult
from market.chain.contracts import ChallengeOutcome, LockState
from market.chain.deploy import Market
from market.chain.errors import ContractRevert
from market.chain.hashlocks import hashlock_of, new_secret
from market.chain.offers import Offer, Opening, Purchase
from market.content import (
    ContentStore,
    DeterministicImageGenerator,
    Generator,
    Perturbation,
    hamming_distance,
    near_duplicate,
)
from market.protocol import ContentMismatch, Job, Protocol
from market.terms import MarketTerms
from offload_core.config import EdgeConfig
from offload_core.engine import Action, EdgeEngine, EngineView
from offload_core.maddpg import MADDPG
from offload_core.names import Backend, SchedulerName
from offload_core.scenario import TaskBatch
from offload_core.schedulers import edge as edge_scheduler
from offload_core.schedulers import scheduler as rule_scheduler
from reputation import Rating
from reputation.selection import Selector

# -- placement: a period's tasks on the chosen ESPs' servers ---------------------------------------------

RULE_SCHEDULERS: tuple[SchedulerName, ...] = (
    SchedulerName.EDGE,
    SchedulerName.GREEDY,
    SchedulerName.LEAST_LOADED,
    SchedulerName.PARALLEL_SPLIT,
)
"""The core's rule schedulers that the market offers: each decides from what one ESP's servers show."""
LEARNED_PREFIX = "maddpg:"
"""`maddpg:PATH`: the policy of a checkpoint written by `aigc-market offload train` (a MADDPG variant)."""


def esp_servers(esp: int, servers_per_esp: int, n_servers: int) -> torch.Tensor:
    """Which servers ESP `esp` runs: the block [esp * k, (esp + 1) * k) of k = servers_per_esp.  [N] bool"""
    index = torch.arange(n_servers)
    return (index >= esp * servers_per_esp) & (index < (esp + 1) * servers_per_esp)


class OwnServersView:
    """The engine as one ESP's rule scheduler sees it: the ESP's own servers only.

    Another ESP's server is infinitely far, holds no model and is busy for ever, so that no rule of
    the core picks it (edge and greedy: nearest; least-loaded: least backlog; parallel-split: model
    holders by free share). Everything else is the engine's own view (`EngineView`), read through.
    """

    def __init__(self, view: EngineView, servers: torch.Tensor) -> None:
        self._view = view
        self._servers = servers.to(view.device)  # [N] bool

    @property
    def view(self) -> OwnServersView:
        """A scheduler reads `engine.view`: this object is both."""
        return self

    @property
    def backend(self) -> Backend:
        """Torch: the compiled greedy kernel would read the unmasked tensors."""
        return Backend.TORCH

    @property
    def distance(self) -> torch.Tensor:
        """[B, M, N] m, inf to the other ESPs' servers."""
        return torch.where(self._servers, self._view.distance, math.inf)

    @property
    def cache(self) -> torch.Tensor:
        """[B, N, I] bool, False on the other ESPs' servers."""
        return self._view.cache & self._servers[None, :, None]

    @property
    def busy_until(self) -> torch.Tensor:
        """[B, N] s, inf on the other ESPs' servers."""
        return torch.where(self._servers, self._view.busy_until, math.inf)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._view, name)


@dataclass(frozen=True)
class Placement:
    """How a period's tasks are placed on the servers of the ESPs chosen for them.

    A rule scheduler of the core (`RULE_SCHEDULERS`) runs once per chosen ESP on `OwnServersView`,
    with the other producers' tasks emptied (size 0, so that least-loaded counts only this ESP's
    work); a learned policy (`agent`, a MADDPG of `offload_core.maddpg`) acts for every producer at
    once with a server mask of its ESP's servers. Either may keep a share on the producer's device
    (greedy's fallback, MADDPG's offload ratio); no share ever goes to another ESP or to the cloud.
    """

    scheduler: SchedulerName = SchedulerName.EDGE
    agent: MADDPG | None = None
    source: str = ""
    """The checkpoint of `agent` (for messages)."""

    @property
    def name(self) -> str:
        return f"{LEARNED_PREFIX}{self.source}" if self.agent is not None else self.scheduler.value

    def action(self, engine: EdgeEngine, tasks: TaskBatch, servers: torch.Tensor, generator: torch.Generator) -> Action:
        """The action of one step (B = 1): device m's task on the servers `servers[m]` ([M, N] bool);
        a device with no server (no request this period) runs its task locally."""
        view = engine.view
        c = view.config
        requests = servers.any(1)  # [M]
        if self.agent is not None:
            mask = torch.where(requests[:, None], servers, True)  # [M, N] (no request: any, overridden below)
            action, _, _ = self.agent.act(engine, tasks, None, mask.unsqueeze(0).to(self.agent.device))
            split, download = action.split.to(view.dtype), action.download
        elif rule_scheduler(self.scheduler) is edge_scheduler:
            # Edge puts each task whole on the nearest server it sees and draws nothing: the nearest of each
            # device's own ESP's servers, for every device at once, is what one call per ESP gives it (one
            # call per ESP made the placement of a 300-ESP market its slowest step).
            nearest = torch.where(servers.to(view.device), view.distance, math.inf).argmin(dim=-1)  # [1, M]
            split = torch.zeros((1, c.n_devices, c.n_servers + 2), dtype=view.dtype, device=view.device)
            split.scatter_(2, (nearest + 1).unsqueeze(-1), 1.0)
            download = torch.ones((1, c.n_devices), dtype=torch.bool, device=view.device)
        else:
            split = torch.zeros((1, c.n_devices, c.n_servers + 2), dtype=view.dtype, device=view.device)
            download = torch.ones((1, c.n_devices), dtype=torch.bool, device=view.device)
            place = rule_scheduler(self.scheduler)
            for own in torch.unique(servers[requests], dim=0):  # one call per chosen ESP
                mine = (servers == own).all(1) & requests  # [M] the devices that chose it
                theirs = replace(tasks, size=torch.where(mine, tasks.size, torch.zeros_like(tasks.size)))
                part = place(cast(EdgeEngine, OwnServersView(view, own)), theirs, generator, None)
                split[:, mine] = part.split.to(view.dtype)[:, mine]
                download[:, mine] = part.download[:, mine]
        split[:, ~requests] = 0.0
        split[:, ~requests, 0] = 1.0
        elsewhere = split[0, :, 1 : c.n_servers + 1] * ~servers  # [M, N] shares on servers not chosen
        if bool((elsewhere > 0).any()) or bool((split[0, :, c.n_servers + 1] > 0).any()):
            raise RuntimeError(f"placement {self.name} sent a share outside the chosen ESP's servers: {split[0].tolist()}")
        return Action(split, download)


def load_placement(name: str, edge: EdgeConfig) -> Placement:
    """The placement called `name` for a market whose system is `edge`; ValueError naming `scheduler`.

    `maddpg:PATH` loads a checkpoint of `aigc-market offload train`: it must exist, hold plain
    values and tensors only (it is read with `weights_only=True` first, so that a file of pickled
    code is refused before the core's loader opens it), be a MADDPG variant and have been trained
    on the market's system (`edge`, whatever its deadlines).
    """
    if not name.startswith(LEARNED_PREFIX):
        allowed = [s.value for s in RULE_SCHEDULERS] + [f"{LEARNED_PREFIX}PATH"]
        if name not in allowed[:-1]:
            raise ValueError(f"scheduler must be one of {allowed}, got {name!r}")
        return Placement(SchedulerName(name))
    from offload_core.training import load_checkpoint

    source = name[len(LEARNED_PREFIX) :]
    path = Path(source).expanduser()
    if not source or not path.is_file():
        raise ValueError(f"scheduler: no checkpoint file at {source!r}")
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any reason a plain load fails: not a checkpoint of ours
        raise ValueError(f"scheduler: {source} is not a checkpoint of `aigc-market offload train` ({type(exc).__name__})") from None
    try:
        agent, trained, settings = load_checkpoint(path)
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ValueError(f"scheduler: {source} is not a usable checkpoint: {exc}") from None
    if not isinstance(agent, MADDPG):
        raise ValueError(f"scheduler: {source} holds a {settings.algo} policy; maddpg:PATH needs a MADDPG variant")
    shape = ("n_devices", "n_servers", "n_models")
    if any(getattr(trained, f) != getattr(edge, f) for f in shape):
        raise ValueError(
            f"scheduler: {source} was trained on {trained.n_devices} devices, {trained.n_servers} servers and "
            f"{trained.n_models} models; this market has {edge.n_devices} producers, {edge.n_servers} servers "
            f"(ESPs x servers per ESP) and {edge.n_models} models"
        )
    names = [f.name for f in fields(edge) if f.name not in ("deadline_s", *shape)]
    differ = [name for name in names if getattr(trained, name) != getattr(edge, name)]
    if differ:
        raise ValueError(f"scheduler: {source} was trained on another system than the market's (differs in {', '.join(differ)})")
    return Placement(agent=agent, source=source)


@dataclass
class MarketContext:
    """What every flow needs: the contracts, the offloading core, reputation and the content store."""

    market: Market
    engine: EdgeEngine
    selector: Selector
    store: ContentStore
    generator: Generator = field(default_factory=DeterministicImageGenerator)
    terms: MarketTerms = field(default_factory=MarketTerms)
    esps: list[Esp] = field(default_factory=list)
    gas: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    contents: dict[int, bytes] = field(default_factory=dict)
    """Plaintext of every registered product (public once its key is revealed on chain)."""
    selection_strategy: str | None = None
    temperature: float = 1.0
    """Softmax temperature of reputation-based selection."""
    placement: Placement = field(default_factory=Placement)
    """How the tasks are placed on the chosen ESPs' servers."""
    servers_per_esp: int = 1
    """Each ESP runs this many servers of the engine: ESP e the block [e * k, (e + 1) * k)."""
    generator_rng: torch.Generator = field(default_factory=lambda: torch.Generator().manual_seed(0))
    seeds: random.Random = field(default_factory=lambda: random.Random(0))
    """Draws each job's generation seed (secret to the ESP), so that runs with one seed repeat."""
    owners: dict[int, str] = field(default_factory=dict)
    """Current owner of every live product, kept from the ERC-721 Transfer events of our receipts."""
    phashes: dict[int, int] = field(default_factory=dict)
    """Perceptual hash of every registered product (revoked ones included)."""
    final_at: dict[int, int] = field(default_factory=dict)
    """Chain time from which each registered product is final (past its challenge window)."""
    generation_seq: dict[int, int] = field(default_factory=dict)
    """Priority of each registered product: the `seq` of its generation lock (smaller is earlier)."""
    protocol: Protocol = field(init=False)
    """The protocol's steps on `market`, booking the gas of every transaction here (honest parties)."""
    attacking: Protocol = field(init=False)
    """The same steps for the attackers' own Sybil ESPs, which keep no guard against selling copies."""

    _block_time: tuple[int, int] = field(default=(-1, 0), init=False, repr=False)
    """(number, timestamp) of the last block whose time `record` read."""

    def __post_init__(self) -> None:
        self.protocol = Protocol(self.market, self.terms, on_tx=self.record)
        self.attacking = Protocol(self.market, self.terms, on_tx=self.record)

    def _registered_at(self, tx: TxResult) -> int:
        """The chain time of `tx`'s block (the registry's `registeredAt`), read once per block: a phase of
        a hundred registrations is mined in a few blocks."""
        number, timestamp = self._block_time
        if number != tx.block_number:
            timestamp = self.market.chain.block_timestamp(tx.block_number)
            self._block_time = (tx.block_number, timestamp)
        return timestamp

    def record(self, operation: str, tx: TxResult) -> TxResult:
        """Book the gas of `tx` and follow the token transfers it made (mint, sale, burn)."""
        self.gas[operation].append(tx.gas_used)
        registry = self.market.registry.address
        for event in tx.events:
            if event.name == "Transfer" and event.address == registry:
                token_id, to = int(event.args["tokenId"]), str(event.args["to"])
                if int(to, 16) == 0:
                    self.owners.pop(token_id, None)
                else:
                    self.owners[token_id] = to
            elif event.name == "ProductRegistered":
                token_id = int(event.args["tokenId"])
                self.phashes[token_id] = int(event.args["perceptualHash"])
                self.generation_seq[token_id] = int(event.args["generationSeq"])
                self.final_at[token_id] = self._registered_at(tx) + self.market.registry.challenge_window()
        return tx

    def live_products(self) -> list[int]:
        return sorted(self.owners)

    def final_products(self) -> list[int]:
        """Live products past their challenge window: the only ones the exchange sells."""
        now = self.market.chain.now()
        return [t for t in sorted(self.owners) if self.final_at[t] <= now]

    def esp_by_address(self, address: str) -> Esp:
        return next(esp for esp in self.esps if esp.address == address)


@dataclass(frozen=True)
class TaskCost:
    """The offloading core's verdict on one task placed on an ESP's servers."""

    latency_s: float
    energy_j: float
    completed: bool
    """The task met its deadline (every part, the producer's own included) and no part failed."""
    quality: float
    breakdown: dict[str, float]
    deadline_s: float = math.inf
    esp_on_time: bool = True
    """The ESP's part met the deadline and did not fail: what the producer rates it on (a share kept on
    the producer's device is not the ESP's doing). True when the ESP got no share."""


@dataclass
class GenerationOutcome:
    producer: Producer
    esp: Esp
    lock_id: bytes
    offer: Offer
    cost: TaskCost
    delivered: bool
    """The ESP revealed the key and the content decrypted to what was promised."""
    on_time: bool
    positive: bool
    score: int
    token_id: int | None = None
    refunded: bool = False
    rating_tx: TxResult | None = None


# -- generation -------------------------------------------------------------------------------------


def choose_esps(
    selector: Selector, producers: list[int], now: float, strategy: str | None, temperature: float, generator: torch.Generator
) -> list[int]:
    """The index of one ESP per producer, chosen by `selector` (reputation or a baseline)."""
    chosen = selector.select(torch.tensor(producers), now, strategy=strategy, temperature=temperature, generator=generator)
    assert isinstance(chosen, torch.Tensor)  # a tensor of producers gives a tensor of ESPs
    return [int(i) for i in chosen.tolist()]


def select_esps(ctx: MarketContext, producers: list[Producer], now: float) -> list[Esp]:
    """One ESP per producer, chosen by the context's selector (reputation or a baseline)."""
    chosen = choose_esps(
        ctx.selector, [p.index for p in producers], now, ctx.selection_strategy, ctx.temperature, ctx.generator_rng
    )
    return [ctx.esps[i] for i in chosen]


def cost_tasks(
    engine: EdgeEngine, placement: Placement, servers_per_esp: int, chosen: dict[int, int], generator: torch.Generator
) -> dict[int, TaskCost]:
    """One step of the offloading core: the task of each producer m in `chosen` (m -> its ESP) placed
    by `placement` on that ESP's servers; the other devices run a (costed, ignored) local task."""
    config = engine.config
    tasks = engine.sample_tasks()
    servers = torch.zeros((config.n_devices, config.n_servers), dtype=torch.bool)  # [M, N]
    if chosen:  # row m: esp_servers(chosen[m]), every row at once
        devices = torch.tensor(list(chosen))
        first = torch.tensor(list(chosen.values()))[:, None] * servers_per_esp  # [K, 1]
        index = torch.arange(config.n_servers)[None, :]  # [1, N]
        servers[devices] = (index >= first) & (index < first + servers_per_esp)
    out = engine.step(tasks, placement.action(engine, tasks, servers, generator))  # every term [1, M]
    terms = out.as_dict()
    edge_latency = out.T_up + out.T_wait + out.T_sw + out.T_es + out.T_down  # [1, M] the slowest ESP part's
    esp_on_time = ~out.offloaded | ((edge_latency <= tasks.deadline) & ~out.failed & ~out.crashed)  # [1, M]
    # Each term as a list once (the same Python floats and bools as indexing the tensor for each task).
    rows = {key: value[0].tolist() for key, value in terms.items()}
    latency, energy, completed, quality = (row[0].tolist() for row in (out.T, out.E, out.completed, out.quality))
    deadline, on_time = tasks.deadline[0].tolist(), esp_on_time[0].tolist()
    costs = {}
    for m in chosen:
        breakdown = {key: float(row[m]) for key, row in rows.items()}  # flags as 0.0 or 1.0
        costs[m] = TaskCost(
            float(latency[m]),
            float(energy[m]),
            bool(completed[m]),
            float(quality[m]),
            breakdown,
            deadline_s=float(deadline[m]),
            esp_on_time=bool(on_time[m]),
        )
    return costs


def place_tasks(ctx: MarketContext, producers: list[Producer], esps: list[Esp]) -> dict[int, TaskCost]:
    """One step of the offloading core: each producer's task on its ESP's servers, placed by `ctx.placement`."""
    chosen = {p.index: e.index for p, e in zip(producers, esps, strict=True)}
    return cost_tasks(ctx.engine, ctx.placement, ctx.servers_per_esp, chosen, ctx.generator_rng)


def rated_positive(profile: EspProfile, cost: TaskCost) -> bool:
    """How the producer rates a generation, as `settle_generation` decides it on chain: positive when the
    ESP delivered (honest and slow ones do; a cheating one never reveals) and its part was on time (a
    delaying one reveals after the deadline)."""
    return profile in (EspProfile.HONEST, EspProfile.SLOW) and cost.esp_on_time


def settle_generation(
    ctx: MarketContext,
    producer: Producer,
    esp: Esp,
    prompt: str,
    cost: TaskCost,
    defer_refund: bool = False,
    before_register: Callable[[Job], None] | None = None,
) -> GenerationOutcome:
    """The on-chain part of a generation: offer, lock, reveal or refund, open, register, rate.

    With `defer_refund`, a lock that the ESP never claims is left for `refund_and_rate` (after the
    timelock); otherwise this function waits for the timelock itself. `before_register` runs after
    the reveal and before the producer's registration is sent (where a front-runner would act).
    """
    protocol, terms = ctx.protocol, ctx.terms
    content = ctx.generator.generate(prompt, seed=ctx.seeds.randbytes(32))  # the ESP's secret seed for this job
    prompt_hash = hashlib.sha256(prompt.encode()).digest()
    job = protocol.make_offer(esp.account, producer.address, content, prompt_hash)
    digest = ctx.store.put(job.ciphertext)  # the ciphertext the ESP hands over with its offer
    lock = protocol.lock(producer.account, job.signed)
    outcome = GenerationOutcome(
        producer, esp, lock.lock_id, job.offer, cost, delivered=False, on_time=False, positive=False, score=0
    )
    if esp.profile == "cheating":  # took the job, never reveals the key
        if not defer_refund:
            refund_and_rate(ctx, outcome)
        return outcome

    key = protocol.revealed_key(protocol.reveal(esp.account, job.offer, job.key))
    try:
        delivery = protocol.open_content(key, ctx.store.get(digest), job.opening, job.offer)
    except ContentMismatch:
        outcome.rating_tx = protocol.rate(producer.account, job.offer, False, 0)
        return outcome
    outcome.delivered = True
    outcome.on_time = cost.esp_on_time and esp.profile != "delaying"
    if before_register is not None:
        before_register(job)
    registered = protocol.register(producer.account, job.offer, delivery.opening, uri=f"sha256://{digest}")
    outcome.token_id = registered.token_id
    ctx.contents[registered.token_id] = delivery.content
    outcome.positive = outcome.on_time
    outcome.score = round(cost.quality * terms.score_scale) if outcome.positive else 0
    outcome.rating_tx = protocol.rate(producer.account, job.offer, outcome.positive, outcome.score)
    return outcome


def refund_and_rate(ctx: MarketContext, outcome: GenerationOutcome) -> GenerationOutcome:
    """After the timelock: the producer takes the fee back and rates the ESP negative."""
    ctx.protocol.refund(outcome.producer.account, outcome.offer, wait=True)
    outcome.refunded = True
    outcome.rating_tx = ctx.protocol.rate(outcome.producer.account, outcome.offer, False, 0)
    return outcome


def observe_ratings(ctx: MarketContext, outcomes: list[GenerationOutcome], period: float) -> None:
    """Feed the on-chain `Rated` events of these outcomes to the reputation module."""
    records = []
    for outcome in outcomes:
        if outcome.rating_tx is None:
            continue
        rated = outcome.rating_tx.event("Rated").args
        esp = ctx.esp_by_address(rated["esp"])
        records.append(Rating(outcome.producer.index, esp.index, bool(rated["positive"]), period, float(rated["score"])))
    ctx.selector.observe_records(records)


def generation_flow(ctx: MarketContext, producer: Producer, prompt: str, period: float) -> GenerationOutcome:
    """The whole generation lifecycle for one producer: select, place and cost, settle, rate, observe."""
    (esp,) = select_esps(ctx, [producer], period)
    cost = place_tasks(ctx, [producer], [esp])[producer.index]
    outcome = settle_generation(ctx, producer, esp, prompt, cost)
    observe_ratings(ctx, [outcome], period)
    return outcome


# -- trade ------------------------------------------------------------------------------------------


@dataclass
class TradeOutcome:
    token_id: int
    lock_id: bytes
    terms: Purchase
    completed: bool
    royalty: int = 0

    @property
    def price(self) -> int:
        return self.terms.price


def trade_flow(
    ctx: MarketContext,
    seller: LocalAccount,
    buyer: LocalAccount,
    token_id: int,
    price: int | None = None,
    seller_claims: bool = True,
) -> TradeOutcome:
    """The seller draws a secret and publishes sha256(secret); the buyer locks the price; the seller claims.

    The product must be final. If the seller never claims (`seller_claims=False`), the lock stays
    open for the buyer's refund after the timelock (`refund_trade`).
    """
    market, protocol = ctx.market, ctx.protocol
    secret = new_secret()
    opened = protocol.lock_purchase(buyer, token_id, hashlock_of(secret), price)
    outcome = TradeOutcome(token_id, opened.lock_id, opened.terms, completed=False)
    if seller_claims:
        producer, royalty = market.registry.royalty_info(token_id, opened.terms.price)
        protocol.claim_sale(seller, opened.terms, secret)
        outcome.completed = True
        outcome.royalty = 0 if producer == seller.address else royalty
    return outcome


def refund_trade(ctx: MarketContext, buyer: LocalAccount, outcome: TradeOutcome) -> None:
    """After the timelock (or at once if the token moved away): the buyer takes the price back."""
    if ctx.market.exchange.get_lock(outcome.lock_id).state is LockState.LOCKED:
        ctx.protocol.refund_purchase(buyer, outcome.terms, wait=True)


# -- attacks ----------------------------------------------------------------------------------------


def _sybil_generation(ctx: MarketContext, attacker: Attacker, content: bytes, prompt_hash: bytes, phash: int | None = None) -> Job:
    """The attacker pays its own staked accomplice ESP for an offer committing to `content` and withdraws it."""
    protocol = ctx.attacking
    job = protocol.make_offer(
        attacker.accomplice, attacker.address, content, prompt_hash, fee=ctx.market.exchange.fee_floor(), phash=phash
    )
    protocol.lock(attacker.account, job.signed)
    protocol.reveal(attacker.accomplice, job.offer, job.key)
    return job


def plagiarize(ctx: MarketContext, attacker: Attacker, victim_token_id: int, how: Perturbation, seed: int = 0) -> int | None:
    """The attacker registers a near-duplicate of a product, generated "by" its accomplice; returns its token.

    None when the copy's bytes are registered already (the registry would refuse them).
    """
    copy = near_duplicate(ctx.contents[victim_token_id], how, seed)
    job = _sybil_generation(ctx, attacker, copy, hashlib.sha256(f"copy of {victim_token_id}".encode()).digest())
    if ctx.market.registry.token_of_content(job.opening.content_hash):
        return None
    registered = ctx.attacking.register(
        attacker.account, job.offer, job.opening, uri="sha256://copy", operation="register (duplicate)"
    )
    ctx.contents[registered.token_id] = copy
    return registered.token_id


def scan_and_challenge(ctx: MarketContext, owners: list[LocalAccount], new_token_id: int) -> list[ChallengeOutcome]:
    """Every owner compares a new registration's pHash with the products it owns and challenges copies.

    Only products generated earlier than the new one can win (priority is the generation lock's
    order, not registration order); each owner tries its earliest-generated match first.
    """
    registry = ctx.market.registry
    new_phash, accused, new_seq = ctx.phashes[new_token_id], ctx.owners[new_token_id], ctx.generation_seq[new_token_id]
    threshold = registry.similarity_threshold()
    outcomes = []
    for owner in owners:
        if owner.address == accused:
            continue
        mine = [t for t, holder in ctx.owners.items() if holder == owner.address and ctx.generation_seq[t] < new_seq]
        for token_id in sorted(mine, key=ctx.generation_seq.__getitem__):
            if hamming_distance(ctx.phashes[token_id], new_phash) <= threshold:
                outcome = ctx.protocol.challenge(owner, token_id, new_token_id)
                outcomes.append(outcome)
                if outcome.upheld:
                    return outcomes
    return outcomes


@dataclass
class AttackTally:
    """How often each attack was tried and how often it failed (the attacker gained nothing)."""

    attempts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    failed: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def count(self, attack: str, failed: bool) -> None:
        self.attempts[attack] += 1
        self.failed[attack] += failed

    def summary(self) -> dict[str, dict[str, int]]:
        return {name: {"attempts": self.attempts[name], "failed": self.failed[name]} for name in sorted(self.attempts)}


def squat_pending_registration(ctx: MarketContext, attacker: Attacker, job: Job) -> int:
    """A1: seeing the victim's pending registration (its opening), the attacker registers the same content first.

    Returns the squatter's token. The victim's registration, sent next, displaces it (the earlier
    generation lock wins), so the squatter loses its token and its bond.
    """
    opening = job.opening
    # The squatter cannot reuse the victim's offer (it is not its producer): its own ESP commits to the
    # victim's content hash and pHash under a fresh salt, and the squatter pays that ESP.
    copied = Opening.of(opening.content_hash, opening.perceptual_hash, opening.prompt_hash)
    key = new_secret()
    signed = ctx.attacking.commit_offer(
        attacker.accomplice, attacker.address, copied, hashlock_of(key), fee=ctx.market.exchange.fee_floor()
    )
    ctx.attacking.lock(attacker.account, signed)
    ctx.attacking.reveal(attacker.accomplice, signed.offer, key)
    return ctx.attacking.register(
        attacker.account, signed.offer, copied, uri="sha256://squat", operation="register (squat)"
    ).token_id


def steal_priority(ctx: MarketContext, attacker: Attacker, job: Job) -> int:
    """A2, first half: from the victim's pending registration the attacker takes only the pHash and registers
    other bytes with it first; returns its token, from which it challenges the victim's product later."""
    decoy = secrets.token_bytes(64)
    decoy_job = _sybil_generation(ctx, attacker, decoy, job.opening.prompt_hash, phash=job.opening.perceptual_hash)
    return ctx.attacking.register(
        attacker.account, decoy_job.offer, decoy_job.opening, uri="sha256://decoy", operation="register (decoy)"
    ).token_id


def try_challenge(ctx: MarketContext, challenger: LocalAccount, original_id: int, duplicate_id: int) -> bool:
    """Whether an attacker's challenge was upheld (a refused or rejected challenge gains it nothing)."""
    try:
        return ctx.protocol.challenge(challenger, original_id, duplicate_id).upheld
    except ContractRevert:
        return False


def exit_scam(
    ctx: MarketContext, attacker: Attacker, buyer: LocalAccount, victim_token_id: int, how: Perturbation, seed: int = 0
) -> bool:
    """A5: own an original O, register a near-copy D, sell D, then challenge D with O. Returns whether it paid off.

    v2: D cannot be sold before it is final, and a final D can no longer be challenged; the buyer keeps D.
    """
    protocol, chain = ctx.attacking, ctx.market.chain
    base = near_duplicate(ctx.contents[victim_token_id], how, seed)
    original_job = _sybil_generation(ctx, attacker, base, hashlib.sha256(b"original").digest())
    if ctx.market.registry.token_of_content(original_job.opening.content_hash):
        return False
    original = protocol.register(
        attacker.account, original_job.offer, original_job.opening, operation="register (scam original)"
    ).token_id
    ctx.contents[original] = base
    copy = near_duplicate(base, how, seed + 1)
    copy_job = _sybil_generation(ctx, attacker, copy, hashlib.sha256(b"copy").digest())
    if ctx.market.registry.token_of_content(copy_job.opening.content_hash):
        return False
    duplicate = protocol.register(attacker.account, copy_job.offer, copy_job.opening, operation="register (scam copy)").token_id
    ctx.contents[duplicate] = copy
    try:  # sell D at once, inside its challenge window: refused
        trade_flow(ctx, attacker.account, buyer, duplicate)
        sold_early = True
    except ContractRevert:
        sold_early = False
    if not sold_early:
        chain.set_next_block_timestamp(max(chain.now() + 1, ctx.final_at[duplicate]))
        trade_flow(ctx, attacker.account, buyer, duplicate)
    upheld = try_challenge(ctx, attacker.account, original, duplicate)
    return upheld and ctx.owners.get(duplicate) != buyer.address
