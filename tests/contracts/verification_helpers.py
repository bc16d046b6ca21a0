"""The stateful model of the three protocol v2 contracts, a mutant exchange, and fuzzing profiles.

`MarketMachine` is a Hypothesis `RuleBasedStateMachine` that drives registry, exchange and ledger
together on one eth-tester chain. Six actors play every role (ESP, producer, buyer, challenger),
with valid and invalid arguments: ESP staking, exit and stake withdrawal; offers signed by the ESP
(EIP-712) or forged, locked, withdrawn with the key or a wrong one, refunded; registration from
withdrawn locks (displacement of a later-generated product, duplicates, used locks, wrong
openings); challenges inside and outside the challenge window; finality; bond claims; purchases of
final products, sales, refunds (at once when the token moved away); credits of both contracts;
ratings; equivocation proofs and slashing; and time moves onto every boundary (timelocks, the end
of the challenge window, the end of the unbonding delay).

A Python model predicts the outcome of every call (success, or the exact custom error) and every
wei that each account, the exchange and the registry gain or lose, every `Credited` event and every
token `Transfer`. After each step it checks:

- ether is conserved: actors + contracts + gas paid == what there was at the start;
- the exchange holds exactly its open locks + unclaimed credits + ESP stakes + forfeited stakes;
- the registry holds exactly the bonds of live, unreleased products + unclaimed credits;
- every live product has exactly one owner and a revoked one none (every Transfer predicted,
  every token it touched read back), a revoked product never moves again;
- no product is bought (purchase-locked) before it is final;
- a lock settles at most once (a double payout is named as such);
- a rating exists only for a settled generation lock that its ESP accepted (signed), by its producer.

Every example starts from the state `make_setup` builds (staked ESPs, three products, a standing
lock). Rules with random arguments (mostly refused calls) alternate with scenario rules that play
whole flows with valid arguments (generate, the same content twice, trade, exit and unbond...) and
end with the refusals that must follow (a second refund, a late key, a second withdrawal...), so
that every function both succeeds and is refused in every run.

Once per example (teardown) every owner, lock, ESP record, credit and rating that the model knows
is read back from the chain and compared (product records are compared at registration). Any
difference raises `InvariantViolation` naming the invariant. `bind_machine` binds the machine to a
market, so that the same suite runs against a deliberately broken exchange (`compile_mutant_exchange`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import solcx
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from market.chain.artifacts import Artifact, load_artifact
from market.chain.compiler import COMPILER_SETTINGS, solc_binary
from market.chain.connection import Chain, TxResult
from market.chain.contracts import EspState, Exchange, Ledger, LockKind, LockState, Registry
from market.chain.deploy import Deployment, Market, create_address
from market.chain.errors import ContractRevert
from market.chain.offers import Offer, Opening, Purchase, SignedOffer, offer_id, purchase_id, sign_offer
from market.chain.paths import CONTRACTS_DIR, REPO_ROOT
from market.terms import ETHER, MarketParams

FEE = ETHER // 100
ZERO_ADDRESS = "0x" + "00" * 20
ZERO32 = b"\x00" * 32
REPORT_DIR = REPO_ROOT / "out" / "verification"
#: secp256k1 group order: (r, s) and (r, n - s) both verify under plain ecrecover.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

# -- fuzzing profiles ---------------------------------------------------------------------------

#: `ci` runs in `make test`; `deep` behind `make fuzz` (AIGC_FUZZ_PROFILE=deep).
PROFILES: dict[str, dict[str, int]] = {
    "ci": {"max_examples": 30, "stateful_step_count": 30},
    "deep": {"max_examples": 200, "stateful_step_count": 40},
}


def profile_name() -> str:
    name = os.environ.get("AIGC_FUZZ_PROFILE", "ci")
    if name not in PROFILES:
        raise ValueError(f"AIGC_FUZZ_PROFILE={name!r}: expected one of {sorted(PROFILES)}")
    return name


def fuzz_settings(name: str | None = None, **overrides: Any) -> settings:
    """Deterministic (derandomized, no example database) Hypothesis settings of a profile."""
    values: dict[str, Any] = dict(PROFILES[name or profile_name()])
    values.update(overrides)
    return settings(
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        suppress_health_check=list(HealthCheck),
        **values,
    )


NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)


def write_report(name: str, data: dict[str, Any]) -> Any:
    """Write a JSON report under out/verification/ (ignored by git) and return its path."""
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    path = REPORT_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


# -- the mutant exchange ------------------------------------------------------------------------

#: refundGeneration that skips the settled check: it accepts any known lock (`_knownLock`), not
#: only an open one (`_openLock`), so a withdrawn or refunded lock can be refunded (again).
MUTATION = (
    "    function refundGeneration(Offer calldata offer) external nonReentrant {\n"
    "        bytes32 id = offerId(offer);\n"
    "        LockRecord storage lock = _openLock(id);\n",
    "    function refundGeneration(Offer calldata offer) external nonReentrant {\n"
    "        bytes32 id = offerId(offer);\n"
    "        LockRecord storage lock = _knownLock(id);\n",
)


def compile_mutant_exchange() -> Artifact:
    """AIGCExchange with MUTATION applied, compiled now with the project's compiler settings."""
    exchange_source = (CONTRACTS_DIR / "AIGCExchange.sol").read_text()
    original, mutated = MUTATION
    if exchange_source.count(original) != 1:
        raise AssertionError("the mutation no longer applies: refundGeneration() changed; update MUTATION")
    sources = {
        "contracts/AIGCExchange.sol": {"content": exchange_source.replace(original, mutated)},
        "contracts/AIGCRegistry.sol": {"content": (CONTRACTS_DIR / "AIGCRegistry.sol").read_text()},
        "contracts/AIGCTypes.sol": {"content": (CONTRACTS_DIR / "AIGCTypes.sol").read_text()},
    }
    standard_input = {"language": "Solidity", "sources": sources, "settings": COMPILER_SETTINGS}
    output = solcx.compile_standard(standard_input, base_path=str(REPO_ROOT), solc_binary=str(solc_binary()))
    compiled = output["contracts"]["contracts/AIGCExchange.sol"]["AIGCExchange"]
    return Artifact(
        contract_name="AIGCExchange",
        source="contracts/AIGCExchange.sol",
        abi=compiled["abi"],
        bytecode="0x" + compiled["evm"]["bytecode"]["object"],
        deployed_bytecode="0x" + compiled["evm"]["deployedBytecode"]["object"],
    )


def deploy_market_with_exchange(chain: Chain, exchange_artifact: Artifact, params: MarketParams | None = None) -> Market:
    """The three contracts, with `exchange_artifact` in place of the committed exchange.

    As `market.chain.deploy.deploy_market`: the registry is deployed first with the address that
    the exchange will get (the deployer's next CREATE address), whose constructor checks it.
    """
    params = params or MarketParams()
    deployer = chain.funder
    nonce = chain.nonce(deployer.address)
    registry, _ = chain.deploy(
        load_artifact("AIGCRegistry"),
        deployer,
        params.registration_bond,
        params.challenge_deposit,
        params.similarity_threshold,
        params.royalty_bps,
        params.challenge_window,
        create_address(deployer.address, nonce + 1),
    )
    exchange, _ = chain.deploy(
        exchange_artifact,
        deployer,
        registry.address,
        params.min_timelock,
        params.max_timelock,
        params.fee_floor,
        params.min_stake,
        params.unbonding_delay,
    )
    ledger, r3 = chain.deploy(load_artifact("ReputationLedger"), deployer, exchange.address)
    deployment = Deployment(
        chain_id=chain.chain_id,
        block=r3.block_number,
        contracts={"AIGCRegistry": registry.address, "AIGCExchange": exchange.address, "ReputationLedger": ledger.address},
    )
    return Market(chain, Registry(chain, registry), Exchange(chain, exchange), Ledger(chain, ledger), deployment)


# -- signatures ---------------------------------------------------------------------------------


def high_s(signature: bytes) -> bytes:
    """The malleated twin (r, n - s, v ^ 1) of a 65-byte signature: valid for ecrecover, not for OZ ECDSA."""
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    return r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # v 27 <-> 28


# -- the model ----------------------------------------------------------------------------------


class InvariantViolation(AssertionError):
    """The chain disagrees with the model; `invariant` names what broke."""

    def __init__(self, invariant_name: str, detail: str) -> None:
        super().__init__(f"[{invariant_name}] {detail}")
        self.invariant = invariant_name
        self.detail = detail


@dataclass
class FuzzStats:
    """Counts over a whole run (all examples)."""

    calls: int = 0
    reverts: int = 0
    violations: int = 0
    examples: int = 0
    invariant_checks: int = 0
    error_mismatches: int = 0
    calls_at_first_violation: int | None = None
    first_violation: str | None = None
    by_rule: dict[str, list[int]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    #: Counts of the interesting successful paths (displacements, slashes, sales...).
    paths: dict[str, int] = field(default_factory=dict)

    def record(self, rule_name: str, reverted: bool, error: str | None = None) -> None:
        if error is not None:
            self.errors[error] = self.errors.get(error, 0) + 1
        self.calls += 1
        self.reverts += reverted
        counts = self.by_rule.setdefault(rule_name, [0, 0])
        counts[0] += 1
        counts[1] += reverted

    def path(self, name: str) -> None:
        self.paths[name] = self.paths.get(name, 0) + 1

    def summary(self) -> str:
        return f"{self.calls} fuzzed calls, {self.reverts} reverts, {self.violations} invariant violations"

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "reverts": self.reverts,
            "violations": self.violations,
            "examples": self.examples,
            "invariant_checks": self.invariant_checks,
            "error_mismatches": self.error_mismatches,
            "calls_at_first_violation": self.calls_at_first_violation,
            "first_violation": self.first_violation,
            "by_rule": {name: {"calls": c, "reverts": r} for name, (c, r) in sorted(self.by_rule.items())},
            "reverts_by_error": dict(sorted(self.errors.items())),
            "paths": dict(sorted(self.paths.items())),
        }


@dataclass
class EspModel:
    state: EspState = EspState.NONE
    stake: int = 0
    available_at: int = 0


@dataclass
class OfferModel:
    """An offer the fuzzer made (locked or not) and what became of its lock."""

    offer: Offer
    signature: bytes
    sig_valid: bool
    key: bytes  # b"" when the fuzzer does not know the key (the standing lock)
    opening: Opening
    lock_id: bytes
    state: LockState = LockState.NONE
    seq: int = 0
    locked_at: int = 0
    token_id: int = 0
    rated: bool = False
    paid_out: int = 0


@dataclass
class PurchaseModel:
    terms: Purchase
    secret: bytes
    lock_id: bytes
    seq: int
    locked_at: int
    state: LockState = LockState.LOCKED
    paid_out: int = 0


@dataclass
class TokenModel:
    producer: str
    owner: str | None
    esp: str
    content_hash: bytes
    phash: int
    prompt_hash: bytes
    registered_at: int
    generation_seq: int
    generated_at: int
    revoked: bool = False
    bond_released: bool = False
    approved: bool = False


def _content(i: int) -> tuple[bytes, bytes, int]:
    """Content i of the pool: (contentHash, promptHash, pHash). Families of near-duplicate pHashes."""
    content_hash = hashlib.sha256(f"verification content {i}".encode()).digest()
    prompt_hash = hashlib.sha256(f"verification prompt {i}".encode()).digest()
    base = 0x9E3779B97F4A7C15 if i % 2 == 0 else 0x0123456789ABCDEF
    offsets = (0, 0, 0b111, 0b111, (1 << 20) - 1, (1 << 20) - 1, 1 << 63, 1 << 63)  # distances 0, 3, 20, 1
    return content_hash, prompt_hash, base ^ offsets[i % len(offsets)]


#: Eight contents in two families of near-duplicate pHashes, and (last) one with a zero content hash.
CONTENT_POOL = [_content(i) for i in range(8)] + [(ZERO32, ZERO32, 0)]
N_ACTORS = 6
STANDING_FEE = ETHER
PRICES = (0, FEE, 2 * FEE, ETHER // 10)
#: Forged or broken ESP signatures: another key's, the ESP's of another offer or another chain, the
#: malleated (high-s) twin, 64 bytes, none.
SIGNATURE_FAULTS = ("wrong_signer", "other_offer", "other_chain", "high_s", "truncated", "empty")
#: What can be wrong with an offer when it is locked ("none", "fee_floor", "expiry_now", "min_timelock",
#: "max_timelock" are boundaries that must pass).
OFFER_FAULTS = (
    "none",
    "none",
    "none",
    "none",
    "none",
    "caller",
    "esp_self",
    "esp_zero",
    "value",
    "fee_low",
    "fee_floor",
    "expired",
    "expiry_now",
    "too_soon",
    "too_late",
    "min_timelock",
    "max_timelock",
    "inactive_esp",
    "relock",
    *SIGNATURE_FAULTS,
)
STAKE_MODES = ("min", "min", "double", "short")
DEPOSIT_MODES = ("exact", "exact", "more", "short")
ROLE_MODES = ("role", "role", "role", "other")  # act as the lock's own party, or as someone else


@dataclass
class BaseState:
    """What the market holds when every example starts (the model's copy of it)."""

    standing: OfferModel
    esps: dict[str, EspModel]
    offers: list[OfferModel]
    tokens: dict[int, TokenModel]
    last_seq: int


@dataclass
class Setup:
    """A deployed market with funded actors, its base state (see `make_setup`) and its parameters."""

    market: Market
    actors: list[LocalAccount]
    whale: LocalAccount
    standing_esp: LocalAccount
    base: BaseState
    params: MarketParams
    stats: FuzzStats = field(default_factory=FuzzStats)


def make_setup(market: Market) -> Setup:
    """Fund actors and build the state every example starts from (its chain snapshot):

    - a standing ESP stakes, and a whale locks a week-long job with it whose key the fuzzer never
      learns (so the exchange always holds others' money: a stake and an open lock);
    - actors 0, 1, 2 are staked ESPs; each made one product (contents 0, 1, 2 of the pool) for actor
      3, 4, 5 by an honest generation (offer, lock, reveal, register); the first two are final, the
      third is not. Contents 0 and 2 are near-duplicates (pHash distance 3): the third product can be
      challenged, and its ESP slashed. Actor 3's product is approved for the exchange.
    """
    chain, exchange, registry = market.chain, market.exchange, market.registry
    params = market.params()
    actors = [chain.new_account(1_000 * ETHER, f"fuzz-actor-{i}") for i in range(N_ACTORS)]
    whale = chain.new_account(10 * ETHER, "fuzz-whale")
    standing_esp = chain.new_account(10 * ETHER, "fuzz-standing-esp")
    esps = {a.address: EspModel() for a in [*actors, whale, standing_esp]}

    def offer_of(
        esp: LocalAccount, producer: LocalAccount, opening: Opening, key: bytes, fee: int, duration: int, nonce: int
    ) -> tuple[Offer, bytes, OfferModel]:
        now = chain.now()
        offer = Offer(
            esp=esp.address,
            producer=producer.address,
            hashlock=hashlib.sha256(key).digest(),
            fee=fee,
            timelock=now + duration,
            expiry=now + 600,
            nonce=nonce,
            commitment=opening.commitment(),
        )
        signed = sign_offer(esp, offer, chain_id=chain.chain_id, exchange=exchange.address)
        opened = exchange.lock_generation(producer, signed)
        info = exchange.get_lock(opened.lock_id)
        model = OfferModel(offer, signed.signature, True, key, opening, opened.lock_id, LockState.LOCKED, info.seq, info.locked_at)
        return offer, signed.signature, model

    exchange.register_esp(standing_esp, 2 * params.min_stake)
    esps[standing_esp.address] = EspModel(EspState.ACTIVE, 2 * params.min_stake, 0)
    opening = Opening(
        hashlib.sha256(b"standing content").digest(),
        0xDEADBEEF,
        hashlib.sha256(b"p").digest(),
        hashlib.sha256(b"standing salt").digest(),
    )
    _, _, standing = offer_of(
        standing_esp, whale, opening, hashlib.sha256(b"standing lock").digest(), STANDING_FEE, params.max_timelock - 10, 0
    )
    standing = replace(standing, key=b"")  # the fuzzer does not know it
    offers: list[OfferModel] = []
    tokens: dict[int, TokenModel] = {}
    for i in range(3):
        esp, producer = actors[i], actors[3 + i]
        if i == 2:  # the first two products are final when the examples start, the third is not
            chain.set_next_block_timestamp(chain.now() + params.challenge_window)
        exchange.register_esp(esp, params.min_stake)
        esps[esp.address] = EspModel(EspState.ACTIVE, params.min_stake, 0)
        content_hash, prompt_hash, phash = CONTENT_POOL[i]
        opening = Opening(content_hash, phash, prompt_hash, hashlib.sha256(b"base salt %d" % i).digest())
        offer, _, model = offer_of(esp, producer, opening, hashlib.sha256(b"base key %d" % i).digest(), FEE, 3600, 10**6 + i)
        exchange.withdraw_generation(esp, offer, model.key)
        token_id = registry.register(producer, offer, opening, "ipfs://base").token_id
        model.state, model.token_id = LockState.WITHDRAWN, token_id
        offers.append(model)
        r = registry.product(token_id)
        tokens[token_id] = TokenModel(
            producer.address,
            producer.address,
            esp.address,
            content_hash,
            phash,
            prompt_hash,
            r.registered_at,
            r.generation_seq,
            r.generated_at,
        )
    registry.approve(actors[3], exchange.address, 1)
    tokens[1].approved = True
    base = BaseState(standing, esps, offers, tokens, offers[-1].seq)
    return Setup(market, actors, whale, standing_esp, base, params)


def bind_machine(setup: Setup, strict_errors: bool = True) -> type[RuleBasedStateMachine]:
    """A MarketMachine class whose examples all run on `setup`'s market, each from a fresh snapshot.

    With `strict_errors=False` a call that reverts with another custom error than the model's is
    counted (`FuzzStats.error_mismatches`) instead of failing: the mutation check hunts for money
    and ownership violations, not for the mutant's different revert reasons.
    """
    return type("BoundMarketMachine", (MarketMachine,), {"setup": setup, "strict_errors": strict_errors})


indices = st.integers(min_value=0, max_value=15)
#: Mostly True: valid arguments are the common case, invalid ones the exception (shrinks to True).
likely = st.sampled_from((True, True, True, False))
unlikely = st.sampled_from((False, False, False, True))
#: An offset from the acting party to its counterparty: 0..N-2 another actor, N-1 itself, N the zero address.
counterparty = st.integers(min_value=0, max_value=N_ACTORS)
contents = st.integers(min_value=0, max_value=len(CONTENT_POOL) - 1)
offsets = st.sampled_from((-1, 0, 1))


class MarketMachine(RuleBasedStateMachine):
    """Registry, exchange and ledger driven together; see the module docstring."""

    setup: Setup
    strict_errors: bool = True

    def __init__(self) -> None:
        super().__init__()
        s = self.setup
        self.chain = s.market.chain
        self.registry = s.market.registry
        self.exchange = s.market.exchange
        self.ledger = s.market.ledger
        self.p = s.params
        self.stats = s.stats
        self.stats.examples += 1
        self.snapshot = self.chain.snapshot()
        self.actors = s.actors
        self.by_address = {a.address: a for a in [*s.actors, s.whale, s.standing_esp]}
        self.names = {self.exchange.address: "exchange", self.registry.address: "registry", self.ledger.address: "ledger"}
        self.tracked = [*self.by_address, self.exchange.address, self.registry.address, self.ledger.address]
        #: Balances (on eth-tester, `Chain.balance` reads them straight from the backend).
        self._balance: Callable[[str], int] = self.chain.balance
        #: Every tracked balance, read back after each successful transaction (a refused call changes nothing).
        self.balances = {a: self._balance(a) for a in self.tracked}
        self.total0 = sum(self.balances.values())
        self.fees0 = self.chain.fees_paid_wei
        #: Timestamp of the latest block, kept in step with the chain (read once per call, not per precondition).
        self.latest = self.ts = self.chain.now()
        base = copy.deepcopy(s.base)
        self.standing = base.standing
        self.esps = base.esps
        self.offers = base.offers  # every offer made, locked or not (the standing one apart)
        self.purchases: list[PurchaseModel] = []
        self.tokens = base.tokens
        self.token_of_content = {t.content_hash: i for i, t in self.tokens.items()}
        self.approved_all: set[str] = set()
        self.reg_credit: dict[str, int] = {}
        self.ex_credit: dict[str, int] = {}
        self.ratings: dict[tuple[str, str], list[int]] = {}
        self.burned_at: dict[int, int] = {}
        self.last_seq = base.last_seq
        self.compensated: set[bytes] = set()
        self.forfeited = 0
        self.pending_ts = 0
        self.counter = 0
        self.failed = False

    # -- plumbing ------------------------------------------------------------------------------

    def _fail(self, invariant_name: str, detail: str) -> None:
        self.failed = True
        self.stats.violations += 1
        if self.stats.calls_at_first_violation is None:
            self.stats.calls_at_first_violation = self.stats.calls
            self.stats.first_violation = f"[{invariant_name}] {detail}"
        raise InvariantViolation(invariant_name, detail)

    def _now(self) -> int:
        """The time the next transaction will run at (preconditions and targets use it)."""
        return max(self.pending_ts, self.latest + 1)

    def _next_block_time(self) -> int:
        """Pin the next block's time; the model predicts with it (a refused call mines nothing)."""
        ts = self.ts = self._now()
        self.chain.set_next_block_timestamp(ts)
        if ts - 1 > self.latest:  # an empty block at ts - 1 was mined to get there
            self.latest = self.chain.now()
        return ts

    def _move_to(self, target: int) -> None:
        """Let the next transaction run at `target`, if that is not in the past."""
        if target >= self._now():
            self.pending_ts = target

    def _tick(self) -> int:
        self.counter += 1
        return self.counter

    def _attempt(
        self,
        rule_name: str,
        caller: LocalAccount,
        expected_error: str | None,
        send: Callable[[], TxResult],
        deltas: dict[str, int] | None = None,
        credits: list[tuple[str, str, int]] | None = None,
        transfers: list[tuple[int, str, str]] | None = None,
        settles: OfferModel | PurchaseModel | None = None,
        violation: str = "model agreement",
    ) -> TxResult | None:
        """Run `send()`; compare the outcome, ether movements, credits and transfers with the model.

        `violation` names the invariant that a success is evidence against when an error was
        expected (e.g. a purchase of a product that is not final).
        """
        try:
            result: TxResult | None = send()
            outcome, detail = None, ""
        except ContractRevert as exc:
            result, outcome, detail = None, exc.error, str(exc)
        self.stats.record(rule_name, outcome is not None, outcome)
        before = self._refresh_balances() if outcome is None else self.balances
        if outcome == expected_error:
            if result is not None:
                self._check_effects(rule_name, caller, before, result, deltas or {}, credits or [], transfers or [])
            return result
        if outcome is None and settles is not None and expected_error == "AIGCExchangeLockSettled":
            amount = settles.offer.fee if isinstance(settles, OfferModel) else settles.terms.price
            self._fail(
                "lock settles at most once",
                f"{rule_name} paid lock 0x{settles.lock_id.hex()} again "
                f"(state was {settles.state.name}): double payout of {amount} wei",
            )
        if outcome is None:
            self._fail(violation, f"{rule_name} succeeded, expected {expected_error}")
        if expected_error is not None and not self.strict_errors:
            self.stats.error_mismatches += 1
            return None
        self._fail("model agreement", f"{rule_name} reverted with {outcome}, expected {expected_error or 'success'} ({detail})")
        return None

    def _refresh_balances(self) -> dict[str, int]:
        """Read every tracked balance after a mined transaction; returns the ones before it."""
        before, self.balances = self.balances, {a: self._balance(a) for a in self.tracked}
        self.latest = self.ts
        return before

    def _check_effects(
        self,
        rule_name: str,
        caller: LocalAccount,
        before: dict[str, int],
        result: TxResult,
        deltas: dict[str, int],
        credits: list[tuple[str, str, int]],
        transfers: list[tuple[int, str, str]],
    ) -> None:
        for address in self.tracked:
            actual = self.balances[address] - before[address] + (result.fee_wei if address == caller.address else 0)
            expected = deltas.get(address, 0)
            if actual != expected:
                name = self.names.get(address, address)
                invariant_name = (
                    "exchange balance == open locks + credits + stakes"
                    if address == self.exchange.address
                    else "registry balance == live bonds + credits"
                    if address == self.registry.address
                    else "payouts"
                )
                self._fail(invariant_name, f"{rule_name}: {name} changed by {actual} wei, expected {expected}")
        credited = sorted(
            (e.contract, str(e.args["account"]), int(e.args["amount"]))
            for e in result.events
            if e.name == "Credited" and int(e.args["amount"]) != 0
        )
        if credited != sorted(c for c in credits if c[2] != 0):
            self._fail("payouts", f"{rule_name} credited {credited}, expected {sorted(credits)}")
        moved = sorted(
            (int(e.args["tokenId"]), str(e.args["from"]), str(e.args["to"]))
            for e in result.events
            if e.name == "Transfer" and e.contract == "AIGCRegistry"
        )
        for token_id, _, _ in moved:
            if token_id in self.burned_at and result.block_number > self.burned_at[token_id]:
                self._fail("a revoked product never moves", f"{rule_name} moved revoked token {token_id}")
        if moved != sorted(transfers):
            self._fail("one owner per live product", f"{rule_name} transferred {moved}, expected {sorted(transfers)}")

    def _check_owners(self, token_ids: list[int]) -> None:
        """The chain's owner of each token against the model's (None: burned)."""
        for token_id in token_ids:
            try:
                owner: str | None = self.registry.owner_of(token_id)
            except ContractRevert:
                owner = None
            model = self.tokens.get(token_id)
            if model is None or owner != model.owner:
                self._fail(
                    "one owner per live product",
                    f"token {token_id}: chain owner {owner}, model {model.owner if model else 'no token'}",
                )

    def _credit(self, book: dict[str, int], account: str, amount: int) -> None:
        book[account] = book.get(account, 0) + amount

    # -- choosing arguments --------------------------------------------------------------------

    def _actor(self, choice: int) -> LocalAccount:
        return self.actors[choice % N_ACTORS]

    def _counterparty(self, actor: LocalAccount, offset: int) -> str:
        if offset >= N_ACTORS:
            return ZERO_ADDRESS
        return self.actors[(self.actors.index(actor) + 1 + offset) % N_ACTORS].address

    def _party(self, mode: str, role_address: str, other: int) -> LocalAccount:
        if mode == "role" and role_address in self.by_address:
            return self.by_address[role_address]
        return self._actor(other)

    def _pick_token(self, choice: int) -> int:
        """Mostly a registered id; for choices 14 and 15 the next id and 0 (unknown ids)."""
        n = len(self.tokens)
        if n == 0 or choice >= 14:
            return 0 if choice == 15 else n + 1
        return 1 + choice % n

    def _locked_offers(self) -> list[OfferModel]:
        return [m for m in self.offers if m.state is not LockState.NONE]

    def _pick_offer(self, choice: int) -> tuple[Offer, OfferModel | None]:
        """A locked offer (mostly), the standing one, an offer never locked, or a tampered copy of a
        locked one (another fee: its digest names no lock)."""
        locked = self._locked_offers()
        unlocked = [m for m in self.offers if m.state is LockState.NONE]
        if choice < 12 and locked:
            m = locked[choice % len(locked)]
            return m.offer, m
        if choice == 12:
            return self.standing.offer, self.standing
        if choice == 13 and unlocked:
            m = unlocked[choice % len(unlocked)]
            return m.offer, m
        base = locked[choice % len(locked)] if locked else self.standing
        return replace(base.offer, fee=base.offer.fee + 1), None

    def _pick_purchase(self, choice: int) -> tuple[Purchase | None, PurchaseModel | None]:
        if self.purchases and choice < 14:
            m = self.purchases[choice % len(self.purchases)]
            return m.terms, m
        if self.purchases:
            base = self.purchases[choice % len(self.purchases)].terms
            return replace(base, price=base.price + 1), None
        return None, None

    def _is_final(self, token: TokenModel, now: int) -> bool:
        return not token.revoked and now >= token.registered_at + self.p.challenge_window

    def _lock_id(self, offer: Offer) -> bytes:
        return offer_id(offer, chain_id=self.chain.chain_id, exchange=self.exchange.address)

    # -- ESPs ----------------------------------------------------------------------------------

    def register_esp(self, actor: int, stake: str) -> None:
        who = self._actor(actor)
        value = {"min": self.p.min_stake, "double": 2 * self.p.min_stake, "short": self.p.min_stake - 1}[stake]
        esp = self.esps[who.address]
        if esp.state is not EspState.NONE:
            expected: str | None = "AIGCExchangeEspRegistered"
        elif value < self.p.min_stake:
            expected = "AIGCExchangeStakeTooSmall"
        else:
            expected = None
        self._next_block_time()
        result = self._attempt(
            "registerEsp",
            who,
            expected,
            lambda: self.exchange.register_esp(who, value),
            deltas={who.address: -value, self.exchange.address: value},
        )
        if result is not None:
            self.esps[who.address] = EspModel(EspState.ACTIVE, value, 0)

    def announce_exit(self, actor: int) -> None:
        who = self._actor(actor)
        esp = self.esps[who.address]
        expected = "AIGCExchangeEspNotActive" if esp.state is not EspState.ACTIVE else None
        now = self._next_block_time()
        result = self._attempt("announceExit", who, expected, lambda: self.exchange.announce_exit(who))
        if result is not None:
            esp.state, esp.available_at = EspState.EXITING, now + self.p.unbonding_delay

    def withdraw_stake(self, actor: int) -> None:
        who = self._actor(actor)
        esp = self.esps[who.address]
        now = self._next_block_time()
        deltas: dict[str, int] = {}
        if esp.state is not EspState.EXITING:
            expected: str | None = "AIGCExchangeEspNotExiting"
        elif now < esp.available_at:
            expected = "AIGCExchangeUnbonding"
        else:
            expected = None
            deltas = {who.address: esp.stake, self.exchange.address: -esp.stake}
        result = self._attempt("withdrawStake", who, expected, lambda: self.exchange.withdraw_stake(who), deltas)
        if result is not None:
            self.esps[who.address] = EspModel()
            self.stats.path("stake withdrawn after unbonding")

    # -- offers and generation locks -----------------------------------------------------------

    def _durations(self) -> tuple[int, ...]:
        m, x = self.p.min_timelock, self.p.max_timelock
        return (m, m + 1, 600, 3600, x, m - 1, x + 1)  # the last two: too soon, too late

    def _sign(self, mode: str, signer: LocalAccount, offer: Offer) -> bytes:
        chain_id, exchange = self.chain.chain_id, self.exchange.address
        if mode == "other_offer":  # the ESP's genuine signature, of another offer
            return sign_offer(signer, replace(offer, nonce=offer.nonce + 1), chain_id=chain_id, exchange=exchange).signature
        if mode == "other_chain":
            return sign_offer(signer, offer, chain_id=chain_id + 1, exchange=exchange).signature
        signature = sign_offer(signer, offer, chain_id=chain_id, exchange=exchange).signature
        return {"high_s": high_s(signature), "truncated": signature[:64], "empty": b""}.get(mode, signature)

    @rule(
        producer=indices, esp=indices, content=contents, fault=st.sampled_from(OFFER_FAULTS), fault2=st.sampled_from(OFFER_FAULTS)
    )
    def lock_generation(self, producer: int, esp: int, content: int, fault: str, fault2: str) -> None:
        """A producer locks an ESP's offer, with up to two faults of OFFER_FAULTS (a forged signature,
        another caller, a wrong fee or value, an expired offer, a timelock out of range, an inactive
        ESP...; "relock": an offer made before, locked again)."""
        faults = {fault, fault2}
        if "relock" in faults and self.offers:
            self.relock_offer(producer, "value" not in faults)
            return
        who = self._actor(producer)
        active = [i for i in self._active_esps() if self.actors[i] != who]
        inactive = [a for a in self.actors if a != who and self.esps[a.address].state is not EspState.ACTIVE]
        if "esp_self" in faults:
            esp_address = who.address
        elif "esp_zero" in faults:
            esp_address = ZERO_ADDRESS
        elif ("inactive_esp" in faults and inactive) or not active:
            esp_address = (inactive or [self._actor(producer + 1)])[esp % max(len(inactive), 1)].address
        else:
            esp_address = self.actors[active[esp % len(active)]].address
        model = self._new_offer(who, esp_address, content, faults)
        caller = self._actor(producer + 1) if "caller" in faults else who
        self._lock_generation(model, caller, model.offer.fee + (1 if "value" in faults else 0))

    def _new_offer(self, who: LocalAccount, esp_address: str, content: int, faults: set[str]) -> OfferModel:
        """An offer of `esp_address` to `who` for content `content` of the pool, signed as `faults` say."""
        esp_account = self.by_address.get(esp_address)
        signer = esp_account if esp_account is not None else self._actor(self.actors.index(who) + 1)
        signature = next((f for f in SIGNATURE_FAULTS if f in faults), "valid")
        if signature == "wrong_signer":
            signer = self.actors[(self.actors.index(signer) + 1) % N_ACTORS if signer in self.actors else 0]
        m, x = self.p.min_timelock, self.p.max_timelock
        duration = (
            m - 1
            if "too_soon" in faults
            else x + 1
            if "too_late" in faults
            else m
            if "min_timelock" in faults
            else x
            if "max_timelock" in faults
            else 3600
        )
        amount = self.p.fee_floor - 1 if "fee_low" in faults else self.p.fee_floor if "fee_floor" in faults else FEE
        now = self._now()
        expiry = now - 1 if "expired" in faults else now if "expiry_now" in faults else now + 300
        content_hash, prompt_hash, phash = CONTENT_POOL[content]
        salt = hashlib.sha256(b"salt %d" % self._tick()).digest()
        opening = Opening(content_hash, phash, prompt_hash, salt)
        key = hashlib.sha256(b"key %d" % self.counter).digest()
        offer = Offer(
            esp=esp_address,
            producer=who.address,
            hashlock=hashlib.sha256(key).digest(),
            fee=amount,
            timelock=now + duration,
            expiry=expiry,
            nonce=self.counter,
            commitment=opening.commitment(),
        )
        model = OfferModel(
            offer,
            self._sign(signature, signer, offer),
            signature == "valid" and signer.address == esp_address,
            key,
            opening,
            self._lock_id(offer),
        )
        self.offers.append(model)
        return model

    def relock_offer(self, pick: int, value_ok: bool) -> None:
        """Lock an offer again (LockExists), or one that failed before (it may pass now, or expire)."""
        if not self.offers:
            return
        model = self.offers[pick % len(self.offers)]
        caller = self.by_address.get(model.offer.producer, self._actor(pick))
        self._lock_generation(model, caller, model.offer.fee if value_ok else model.offer.fee + 1)

    def _lock_generation(self, model: OfferModel, caller: LocalAccount, value: int) -> None:
        offer = model.offer
        now = self._next_block_time()
        if caller.address != offer.producer:
            expected: str | None = "AIGCExchangeOfferNotForCaller"
        elif offer.esp in (caller.address, ZERO_ADDRESS):
            expected = "AIGCExchangeInvalidReceiver"
        elif value != offer.fee:
            expected = "AIGCExchangeWrongFee"
        elif offer.fee < self.p.fee_floor:
            expected = "AIGCExchangeFeeBelowFloor"
        elif now > offer.expiry:
            expected = "AIGCExchangeOfferExpired"
        elif offer.timelock < now + self.p.min_timelock:
            expected = "AIGCExchangeTimelockTooSoon"
        elif offer.timelock > now + self.p.max_timelock:
            expected = "AIGCExchangeTimelockTooLate"
        elif self.esps.get(offer.esp, EspModel()).state is not EspState.ACTIVE:
            expected = "AIGCExchangeEspNotActive"
        elif not model.sig_valid:
            expected = "AIGCExchangeInvalidOfferSignature"
        elif model.state is not LockState.NONE:
            expected = "AIGCExchangeLockExists"
        else:
            expected = None
        result = self._attempt(
            "lockGeneration",
            caller,
            expected,
            lambda: self.exchange.lock_generation(caller, SignedOffer(offer, model.signature), value).tx,
            deltas={caller.address: -value, self.exchange.address: value},
        )
        if result is not None:
            self.last_seq += 1
            event = result.event("GenerationLocked").args
            if (bytes(event["id"]), int(event["seq"])) != (model.lock_id, self.last_seq):
                self._fail(
                    "model agreement",
                    f"lock id/seq {bytes(event['id']).hex()}/{event['seq']}, expected {model.lock_id.hex()}/{self.last_seq}",
                )
            model.state, model.seq, model.locked_at = LockState.LOCKED, self.last_seq, now

    def withdraw_generation(self, pick: int, caller: str, other: int, right: bool) -> None:
        offer, model = self._pick_offer(pick)
        who = self._party(caller, offer.esp, other)
        key = model.key if (model is not None and right and model.key) else hashlib.sha256(b"wrong %d" % other).digest()
        self._withdraw_generation(offer, model, who, key)

    def _withdraw_generation(self, offer: Offer, model: OfferModel | None, who: LocalAccount, key: bytes) -> None:
        state = model.state if model is not None else LockState.NONE
        now = self._next_block_time()
        deltas: dict[str, int] = {}
        if state is LockState.NONE:
            expected: str | None = "AIGCExchangeUnknownLock"
        elif state is not LockState.LOCKED:
            expected = "AIGCExchangeLockSettled"
        elif who.address != offer.esp:
            expected = "AIGCExchangeNotReceiver"
        elif now >= offer.timelock:
            expected = "AIGCExchangeTimelockExpired"
        elif hashlib.sha256(key).digest() != offer.hashlock:
            expected = "AIGCExchangeWrongPreimage"
        else:
            expected = None
            deltas = {offer.esp: offer.fee, self.exchange.address: -offer.fee}
        result = self._attempt(
            "withdrawGeneration", who, expected, lambda: self.exchange.withdraw_generation(who, offer, key), deltas, settles=model
        )
        if result is not None:
            assert model is not None
            model.state = LockState.WITHDRAWN
            model.paid_out += offer.fee

    def refund_generation(self, pick: int, caller: str, other: int) -> None:
        offer, model = self._pick_offer(pick)
        self._refund_generation(offer, model, self._party(caller, offer.producer, other))

    def _refund_generation(self, offer: Offer, model: OfferModel | None, who: LocalAccount) -> None:
        state = model.state if model is not None else LockState.NONE
        now = self._next_block_time()
        deltas: dict[str, int] = {}
        if state is LockState.NONE:
            expected: str | None = "AIGCExchangeUnknownLock"
        elif state is not LockState.LOCKED:
            expected = "AIGCExchangeLockSettled"
        elif who.address != offer.producer:
            expected = "AIGCExchangeNotSender"
        elif now < offer.timelock:
            expected = "AIGCExchangeTimelockNotExpired"
        else:
            expected = None
            deltas = {offer.producer: offer.fee, self.exchange.address: -offer.fee}
        result = self._attempt(
            "refundGeneration", who, expected, lambda: self.exchange.refund_generation(who, offer), deltas, settles=model
        )
        if result is not None:
            assert model is not None
            model.state = LockState.REFUNDED
            model.paid_out += offer.fee

    # -- registry ------------------------------------------------------------------------------

    @rule(pick=indices, caller=st.sampled_from(ROLE_MODES), other=indices, opening_ok=likely, bond_ok=likely)
    def register(self, pick: int, caller: str, other: int, opening_ok: bool, bond_ok: bool) -> None:
        offer, model = self._pick_offer(pick)
        who = self._party(caller, offer.producer, other)
        opening = model.opening if model is not None else self.standing.opening
        if not opening_ok:  # the content of another family member: another pHash than committed
            opening = replace(opening, perceptual_hash=opening.perceptual_hash ^ 1)
        bond = self.p.registration_bond if bond_ok else self.p.registration_bond + (1 if other % 2 else -1)
        self._register(offer, model, who, opening, bond)

    def _register(self, offer: Offer, model: OfferModel | None, who: LocalAccount, opening: Opening, bond: int) -> None:
        state = model.state if model is not None else LockState.NONE
        now = self._next_block_time()
        holder_id = self.token_of_content.get(opening.content_hash, 0)
        holder = self.tokens.get(holder_id)
        new_id = len(self.tokens) + 1
        deltas: dict[str, int] = {}
        credits: list[tuple[str, str, int]] = []
        transfers: list[tuple[int, str, str]] = []
        displaced = False
        if bond != self.p.registration_bond:
            expected: str | None = "AIGCRegistryWrongBond"
        elif state is LockState.NONE:
            expected = "AIGCRegistryUnknownGeneration"
        elif state is not LockState.WITHDRAWN:
            expected = "AIGCRegistryGenerationNotPaid"
        elif offer.producer != who.address:
            expected = "AIGCRegistryNotGenerationSender"
        elif opening.commitment() != offer.commitment:
            expected = "AIGCRegistryCommitmentMismatch"
        elif model is not None and model.token_id:
            expected = "AIGCRegistryGenerationUsed"
        elif opening.content_hash == ZERO32:
            expected = "AIGCRegistryInvalidContentHash"
        elif (
            holder is not None
            and not holder.revoked
            and (holder.generation_seq < (model.seq if model else 0) or self._is_final(holder, now))
        ):
            expected = "AIGCRegistryDuplicateContent"
        else:
            expected = None
            deltas = {who.address: -bond, self.registry.address: bond}
            transfers = [(new_id, ZERO_ADDRESS, who.address)]
            if holder is not None and not holder.revoked:
                displaced = True
                assert holder.owner is not None
                credits = [("AIGCRegistry", who.address, self.p.registration_bond)]
                transfers.append((holder_id, holder.owner, ZERO_ADDRESS))
        result = self._attempt(
            "register",
            who,
            expected,
            lambda: self.registry.register(who, offer, opening, "ipfs://fuzz", bond).tx,
            deltas,
            credits,
            transfers,
        )
        if result is None:
            return
        assert model is not None
        event = result.event("ProductRegistered").args
        recorded = (
            event["tokenId"],
            event["producer"],
            event["esp"],
            bytes(event["contentHash"]),
            event["perceptualHash"],
            bytes(event["lockId"]),
            event["generationSeq"],
        )
        if recorded != (new_id, who.address, offer.esp, opening.content_hash, opening.perceptual_hash, model.lock_id, model.seq):
            self._fail(
                "model agreement",
                f"register recorded {recorded}, expected token {new_id} of lock 0x{model.lock_id.hex()} (seq {model.seq})",
            )
        if displaced:
            assert holder is not None
            holder.revoked, holder.owner, holder.approved = True, None, False
            self.burned_at[holder_id] = result.block_number
            self._credit(self.reg_credit, who.address, self.p.registration_bond)
            self.stats.path("later generation displaced at registration")
        self.tokens[new_id] = TokenModel(
            who.address,
            who.address,
            offer.esp,
            opening.content_hash,
            opening.perceptual_hash,
            opening.prompt_hash,
            now,
            model.seq,
            model.locked_at,
        )
        self.token_of_content[opening.content_hash] = new_id
        model.token_id = new_id
        self._check_owners([new_id, holder_id] if displaced else [new_id])

    @rule(challenger=indices, original=indices, duplicate=indices, as_owner=likely, deposit=st.sampled_from(DEPOSIT_MODES))
    def challenge(self, challenger: int, original: int, duplicate: int, as_owner: bool, deposit: str) -> None:
        orig_id = self._pick_token(original)
        dup_id = self._pick_token(original + 1 + duplicate)  # mostly another token than the original
        orig = self.tokens.get(orig_id)
        who = self._actor(challenger)
        if as_owner and orig is not None and orig.owner is not None:
            who = self.by_address[orig.owner]
        value = {"exact": self.p.challenge_deposit, "more": self.p.challenge_deposit + FEE, "short": self.p.challenge_deposit - 1}[
            deposit
        ]
        self._challenge(who, orig_id, dup_id, value)

    def _challenge(self, who: LocalAccount, orig_id: int, dup_id: int, value: int) -> None:
        orig, dup = self.tokens.get(orig_id), self.tokens.get(dup_id)
        now = self._next_block_time()
        deltas: dict[str, int] = {}
        credits: list[tuple[str, str, int]] = []
        transfers: list[tuple[int, str, str]] = []
        upheld = False
        if value < self.p.challenge_deposit:
            expected: str | None = "AIGCRegistryDepositTooSmall"
        elif orig is None or dup is None:
            expected = "AIGCRegistryUnknownProduct"
        elif orig_id == dup_id:
            expected = "AIGCRegistrySameProduct"
        elif orig.owner != who.address:
            expected = "AIGCRegistryNotOwner"
        elif dup.revoked:
            expected = "AIGCRegistryAlreadyRevoked"
        elif dup.owner == who.address:
            expected = "AIGCRegistrySelfChallenge"
        elif self._is_final(dup, now):
            expected = "AIGCRegistryChallengeWindowClosed"
        else:
            expected = None
            assert dup.owner is not None
            distance = bin(orig.phash ^ dup.phash).count("1")
            upheld = orig.generation_seq < dup.generation_seq and distance <= self.p.similarity_threshold
            deltas = {who.address: -value, self.registry.address: value}
            if upheld:
                credits = [("AIGCRegistry", who.address, value + self.p.registration_bond)]
                transfers = [(dup_id, dup.owner, ZERO_ADDRESS)]
            else:
                credits = [("AIGCRegistry", dup.owner, value)]
        result = self._attempt(
            "challenge", who, expected, lambda: self.registry.challenge(who, orig_id, dup_id, value).tx, deltas, credits, transfers
        )
        if result is None:
            return
        assert dup is not None
        if result.event("ChallengeResolved").args["upheld"] != upheld:
            self._fail("model agreement", f"challenge({orig_id}, {dup_id}) upheld differs from the model ({upheld})")
        if upheld:
            self._credit(self.reg_credit, who.address, value + self.p.registration_bond)
            dup.revoked, dup.owner, dup.approved = True, None, False
            self.burned_at[dup_id] = result.block_number
            self._check_owners([dup_id])
            self.stats.path("challenge upheld")
        else:
            assert dup.owner is not None
            self._credit(self.reg_credit, dup.owner, value)
            self.stats.path("challenge rejected")

    def claim_bond(self, sender: int, token: int, as_owner: bool) -> None:
        token_id = self._pick_token(token)
        model = self.tokens.get(token_id)
        who = self._actor(sender)
        if as_owner and model is not None and model.owner is not None:
            who = self.by_address[model.owner]
        self._claim_bond(who, token_id)

    def _claim_bond(self, who: LocalAccount, token_id: int) -> None:
        model = self.tokens.get(token_id)
        now = self._next_block_time()
        if model is None:
            expected: str | None = "AIGCRegistryUnknownProduct"
        elif model.owner != who.address:
            expected = "AIGCRegistryNotOwner"
        elif not self._is_final(model, now):
            expected = "AIGCRegistryNotFinal"
        elif model.bond_released:
            expected = "AIGCRegistryBondReleased"
        else:
            expected = None
        result = self._attempt(
            "claimBond",
            who,
            expected,
            lambda: self.registry.claim_bond(who, token_id),
            credits=[("AIGCRegistry", who.address, self.p.registration_bond)],
        )
        if result is not None:
            assert model is not None
            model.bond_released = True
            self._credit(self.reg_credit, who.address, self.p.registration_bond)
            self.stats.path("bond claimed")

    def transfer(self, sender: int, token: int, to: int, as_owner: bool) -> None:
        token_id = self._pick_token(token)
        model = self.tokens.get(token_id)
        who = self._actor(sender)
        if as_owner and model is not None and model.owner is not None:
            who = self.by_address[model.owner]
        self._transfer(who, token_id, self._counterparty(who, to))

    def _transfer(self, who: LocalAccount, token_id: int, to_address: str) -> None:
        model = self.tokens.get(token_id)
        if to_address == ZERO_ADDRESS:
            expected: str | None = "ERC721InvalidReceiver"
        elif model is None or model.owner is None:
            expected = "ERC721NonexistentToken"
        elif model.owner != who.address:
            expected = "ERC721InsufficientApproval"
        else:
            expected = None
        self._next_block_time()
        result = self._attempt(
            "transfer",
            who,
            expected,
            lambda: self.registry.transfer(who, to_address, token_id),
            transfers=[(token_id, who.address, to_address)],
        )
        if result is not None:
            assert model is not None
            model.owner, model.approved = to_address, False
            self._check_owners([token_id])

    def approve(self, sender: int, token: int, as_owner: bool, mode: str) -> None:
        """Approve the exchange for one token, for all the caller's tokens, or withdraw the latter."""
        token_id = self._pick_token(token)
        model = self.tokens.get(token_id)
        who = self._actor(sender)
        if as_owner and model is not None and model.owner is not None:
            who = self.by_address[model.owner]
        self._approve(who, token_id, mode)

    def _approve(self, who: LocalAccount, token_id: int, mode: str) -> None:
        self._next_block_time()
        if mode != "single":
            fn = self.registry.contract.functions.setApprovalForAll(self.exchange.address, mode == "all")
            if self._attempt("approve", who, None, lambda: self.chain.transact(fn, who)) is not None:
                (self.approved_all.add if mode == "all" else self.approved_all.discard)(who.address)
            return
        model = self.tokens.get(token_id)
        if model is None or model.owner is None:
            expected: str | None = "ERC721NonexistentToken"
        elif model.owner != who.address:  # actors make only the exchange their operator
            expected = "ERC721InvalidApprover"
        else:
            expected = None
        result = self._attempt("approve", who, expected, lambda: self.registry.approve(who, self.exchange.address, token_id))
        if result is not None:
            assert model is not None
            model.approved = True

    # -- trading -------------------------------------------------------------------------------

    @rule(buyer=indices, token=indices, price=st.integers(0, 3), duration=st.integers(0, 6), not_owner=likely, again=unlikely)
    def lock_purchase(self, buyer: int, token: int, price: int, duration: int, not_owner: bool, again: bool) -> None:
        """A purchase lock on any token (unknown, revoked, not final, the caller's own...); with
        `again`, the terms of an earlier purchase lock once more."""
        if again and self.purchases:
            self.relock_purchase(buyer)
            return
        who = self._actor(buyer)
        token_id = self._pick_token(token)
        model = self.tokens.get(token_id)
        if not_owner and model is not None and model.owner == who.address:
            who = self._actor(buyer + 1)
        secret = hashlib.sha256(b"secret %d" % self._tick()).digest()
        value = PRICES[(price + 1) % 4]  # 0 (invalid) one time in four, and never the simplest choice
        now = self._now()
        self._lock_purchase(who, token_id, hashlib.sha256(secret).digest(), now + self._durations()[duration], value, secret)

    def relock_purchase(self, pick: int) -> None:
        """The same terms again: LockExists while the seller is unchanged, else a new lock (new seller)."""
        if not self.purchases:
            return
        m = self.purchases[pick % len(self.purchases)]
        self._lock_purchase(
            self.by_address[m.terms.buyer], m.terms.token_id, m.terms.hashlock, m.terms.timelock, m.terms.price, m.secret
        )

    def _lock_purchase(self, who: LocalAccount, token_id: int, hashlock: bytes, timelock: int, value: int, secret: bytes) -> None:
        model = self.tokens.get(token_id)
        now = self._next_block_time()
        terms: Purchase | None = None
        if model is not None and model.owner is not None:
            terms = Purchase(who.address, model.owner, token_id, value, hashlock, timelock)
        lock_id = purchase_id(terms, chain_id=self.chain.chain_id, exchange=self.exchange.address) if terms else b""
        if value == 0:
            expected: str | None = "AIGCExchangeZeroAmount"
        elif model is None:
            expected = "AIGCRegistryUnknownProduct"
        elif model.revoked:
            expected = "AIGCExchangeTokenRevoked"
        elif not self._is_final(model, now):
            expected = "AIGCExchangeNotFinal"
        elif model.owner == who.address:
            expected = "AIGCExchangeInvalidReceiver"
        elif timelock < now + self.p.min_timelock:
            expected = "AIGCExchangeTimelockTooSoon"
        elif timelock > now + self.p.max_timelock:
            expected = "AIGCExchangeTimelockTooLate"
        elif any(p.lock_id == lock_id for p in self.purchases):
            expected = "AIGCExchangeLockExists"
        else:
            expected = None
        result = self._attempt(
            "lockPurchase",
            who,
            expected,
            lambda: self.exchange.lock_purchase(who, token_id, hashlock, timelock, value).tx,
            deltas={who.address: -value, self.exchange.address: value},
            violation="no product bought before final" if expected == "AIGCExchangeNotFinal" else "model agreement",
        )
        if result is None:
            return
        assert terms is not None and model is not None
        self.last_seq += 1
        event = result.event("PurchaseLocked").args
        if (bytes(event["id"]), int(event["seq"])) != (lock_id, self.last_seq):
            self._fail("model agreement", f"purchase id/seq {bytes(event['id']).hex()}/{event['seq']}")
        if now < model.registered_at + self.p.challenge_window:  # the chain's lockedAt is this block's time
            self._fail(
                "no product bought before final",
                f"token {token_id} purchase-locked at {now}, final at {model.registered_at + self.p.challenge_window}",
            )
        self.purchases.append(PurchaseModel(terms, secret, lock_id, self.last_seq, now))

    def withdraw_purchase(self, pick: int, caller: str, other: int, right: bool) -> None:
        terms, model = self._pick_purchase(pick)
        if terms is None:
            return
        who = self._party(caller, terms.seller, other)
        secret = model.secret if (model is not None and right) else hashlib.sha256(b"wrong %d" % other).digest()
        self._withdraw_purchase(terms, model, who, secret)

    def _withdraw_purchase(self, terms: Purchase, model: PurchaseModel | None, who: LocalAccount, secret: bytes) -> None:
        state = model.state if model is not None else LockState.NONE
        token = self.tokens[terms.token_id]
        now = self._next_block_time()
        credits: list[tuple[str, str, int]] = []
        if state is LockState.NONE:
            expected: str | None = "AIGCExchangeUnknownLock"
        elif state is not LockState.LOCKED:
            expected = "AIGCExchangeLockSettled"
        elif who.address != terms.seller:
            expected = "AIGCExchangeNotReceiver"
        elif now >= terms.timelock:
            expected = "AIGCExchangeTimelockExpired"
        elif hashlib.sha256(secret).digest() != terms.hashlock:
            expected = "AIGCExchangeWrongPreimage"
        elif token.revoked:
            expected = "AIGCExchangeTokenRevoked"
        elif token.owner != who.address:
            expected = "AIGCExchangeSellerNotOwner"
        elif not token.approved and who.address not in self.approved_all:
            expected = "AIGCExchangeNotApproved"
        else:
            expected = None
            royalty = 0 if token.producer == who.address else terms.price * self.p.royalty_bps // 10_000
            credits = [("AIGCExchange", who.address, terms.price - royalty), ("AIGCExchange", token.producer, royalty)]
        result = self._attempt(
            "withdrawPurchase",
            who,
            expected,
            lambda: self.exchange.withdraw_purchase(who, terms, secret),
            credits=credits,
            transfers=[(terms.token_id, terms.seller, terms.buyer)],
            settles=model,
        )
        if result is None:
            return
        assert model is not None
        model.state = LockState.WITHDRAWN
        model.paid_out += terms.price
        for _, account, amount in credits:
            self._credit(self.ex_credit, account, amount)
        token.owner, token.approved = terms.buyer, False
        self._check_owners([terms.token_id])
        self.stats.path("product sold")

    def refund_purchase(self, pick: int, caller: str, other: int) -> None:
        terms, model = self._pick_purchase(pick)
        if terms is None:
            return
        self._refund_purchase(terms, model, self._party(caller, terms.buyer, other))

    def _refund_purchase(self, terms: Purchase, model: PurchaseModel | None, who: LocalAccount) -> None:
        state = model.state if model is not None else LockState.NONE
        token = self.tokens[terms.token_id]
        now = self._next_block_time()
        deliverable = not token.revoked and token.owner == terms.seller
        deltas: dict[str, int] = {}
        if state is LockState.NONE:
            expected: str | None = "AIGCExchangeUnknownLock"
        elif state is not LockState.LOCKED:
            expected = "AIGCExchangeLockSettled"
        elif who.address != terms.buyer:
            expected = "AIGCExchangeNotSender"
        elif now < terms.timelock and deliverable:
            expected = "AIGCExchangeTimelockNotExpired"
        else:
            expected = None
            deltas = {terms.buyer: terms.price, self.exchange.address: -terms.price}
        result = self._attempt(
            "refundPurchase", who, expected, lambda: self.exchange.refund_purchase(who, terms), deltas, settles=model
        )
        if result is not None:
            assert model is not None
            model.state = LockState.REFUNDED
            model.paid_out += terms.price
            if now < terms.timelock:
                self.stats.path("purchase refunded at once (token moved away)")

    # -- credits -------------------------------------------------------------------------------

    @rule(actor=indices, contract=st.sampled_from(("registry", "exchange")))
    def withdraw_credit(self, actor: int, contract: str) -> None:
        self._withdraw_credit(self._actor(actor), contract)

    def _withdraw_credit(self, who: LocalAccount, contract: str) -> None:
        wrapper: Registry | Exchange = self.registry if contract == "registry" else self.exchange
        book = self.reg_credit if contract == "registry" else self.ex_credit
        amount = book.get(who.address, 0)
        error = "AIGCRegistryNoCredit" if contract == "registry" else "AIGCExchangeNoCredit"
        self._next_block_time()
        result = self._attempt(
            f"withdrawCredit({contract})",
            who,
            error if amount == 0 else None,
            lambda: wrapper.withdraw_credit(who),
            deltas={who.address: amount, wrapper.address: -amount},
        )
        if result is not None:
            book[who.address] = 0

    # -- ledger --------------------------------------------------------------------------------

    @rule(pick=indices, caller=st.sampled_from(ROLE_MODES), other=indices, positive=st.booleans(), score=st.integers(0, 2**16 - 1))
    def rate(self, pick: int, caller: str, other: int, positive: bool, score: int) -> None:
        offer, model = self._pick_offer(pick)
        self._rate(offer, model, self._party(caller, offer.producer, other), positive, score)

    def _rate(self, offer: Offer, model: OfferModel | None, who: LocalAccount, positive: bool, score: int) -> None:
        state = model.state if model is not None else LockState.NONE
        if state is LockState.NONE:
            expected: str | None = "ReputationLedgerNotGenerationLock"
        elif who.address != offer.producer:
            expected = "ReputationLedgerNotSender"
        elif state is LockState.LOCKED:
            expected = "ReputationLedgerLockNotSettled"
        elif positive and state is LockState.REFUNDED:
            expected = "ReputationLedgerPositiveRatingOfRefund"
        elif model is not None and model.rated:
            expected = "ReputationLedgerAlreadyRated"
        else:
            expected = None
        self._next_block_time()
        result = self._attempt(
            "rate",
            who,
            expected,
            lambda: self.ledger.rate(who, offer, positive, score),
            violation="a rating only for a settled accepted lock",
        )
        if result is None:
            return
        assert model is not None
        info = self.exchange.get_lock(model.lock_id)
        if info.state not in (LockState.WITHDRAWN, LockState.REFUNDED) or info.kind is not LockKind.GENERATION:
            self._fail("a rating only for a settled accepted lock", f"lock 0x{model.lock_id.hex()} rated in {info}")
        model.rated = True
        counts = self.ratings.setdefault((offer.producer, offer.esp), [0, 0])
        counts[0 if positive else 1] += 1

    # -- equivocation --------------------------------------------------------------------------

    @rule(a=indices, b=indices, caller=indices, opening_a_ok=likely, opening_b_ok=likely)
    def prove_equivocation(self, a: int, b: int, caller: int, opening_a_ok: bool, opening_b_ok: bool) -> None:
        offer_a, model_a = self._pick_offer(a)
        offer_b, model_b = self._pick_offer(b)
        opening_a = model_a.opening if model_a is not None else self.standing.opening
        opening_b = model_b.opening if model_b is not None else self.standing.opening
        if not opening_a_ok:
            opening_a = replace(opening_a, salt=hashlib.sha256(opening_a.salt).digest())
        if not opening_b_ok:
            opening_b = replace(opening_b, salt=hashlib.sha256(opening_b.salt).digest())
        self._prove_equivocation(self._actor(caller), offer_a, model_a, opening_a, offer_b, model_b, opening_b)

    def _duplicates(self, a: Opening, b: Opening) -> bool:
        """The registry's notion of a duplicate: one content hash, or pHashes within the threshold."""
        return (
            a.content_hash == b.content_hash or bin(a.perceptual_hash ^ b.perceptual_hash).count("1") <= self.p.similarity_threshold
        )

    def _prove_equivocation(
        self,
        who: LocalAccount,
        offer_a: Offer,
        model_a: OfferModel | None,
        opening_a: Opening,
        offer_b: Offer,
        model_b: OfferModel | None,
        opening_b: Opening,
    ) -> None:
        """The ESP of the later lock sold a duplicate of the earlier lock's content: its producer gets
        min(fee + bond, stake / 2), as much is forfeited, the ESP is slashed for good."""
        credits: list[tuple[str, str, int]] = []
        later: OfferModel | None = None
        compensation = 0
        if model_a is None or model_a.state is LockState.NONE or model_b is None or model_b.state is LockState.NONE:
            expected: str | None = "AIGCExchangeUnknownLock"
        elif opening_a.commitment() != offer_a.commitment or opening_b.commitment() != offer_b.commitment:
            expected = "AIGCExchangeOpeningMismatch"
        elif offer_a.producer == offer_b.producer or not self._duplicates(opening_a, opening_b):
            expected = "AIGCExchangeNotEquivocation"
        else:
            later = model_b if model_a.seq < model_b.seq else model_a
            stake = self.esps.get(later.offer.esp, EspModel()).stake
            compensation = min(later.offer.fee + self.p.registration_bond, stake // 2)
            if later.lock_id in self.compensated:
                expected = "AIGCExchangeAlreadyCompensated"
            elif compensation == 0:
                expected = "AIGCExchangeNothingToSlash"
            else:
                expected = None
                credits = [("AIGCExchange", later.offer.producer, compensation)]
        self._next_block_time()
        result = self._attempt(
            "proveEquivocation",
            who,
            expected,
            lambda: self.exchange.prove_equivocation(who, offer_a, opening_a, offer_b, opening_b),
            credits=credits,
        )
        if result is not None:
            assert later is not None
            esp = self.esps[later.offer.esp]
            self._credit(self.ex_credit, later.offer.producer, compensation)
            self.compensated.add(later.lock_id)
            self.forfeited += compensation
            self.esps[later.offer.esp] = EspModel(EspState.SLASHED, esp.stake - 2 * compensation, 0)
            self.stats.path("ESP slashed for a duplicate")

    # -- time ----------------------------------------------------------------------------------

    def advance_time(self, seconds: int) -> None:
        self.pending_ts = self._now() + seconds - 1

    def jump_to_timelock(self, pick: int, offset: int) -> None:
        """The next block at an open lock's timelock - 1, timelock or timelock + 1 (if not past)."""
        timelocks = [m.offer.timelock for m in self._locked_offers() if m.state is LockState.LOCKED]
        timelocks += [m.terms.timelock for m in self.purchases if m.state is LockState.LOCKED]
        if timelocks:
            self._move_to(timelocks[pick % len(timelocks)] + offset)

    def jump_to_final(self, token: int, offset: int) -> None:
        """The next block at the end of a live product's challenge window - 1, 0 or + 1."""
        live = [t for t in self.tokens.values() if not t.revoked]
        if live:
            self._move_to(live[token % len(live)].registered_at + self.p.challenge_window + offset)

    def jump_to_unbonded(self, actor: int, offset: int) -> None:
        """The next block at an exiting ESP's end of unbonding - 1, 0 or + 1."""
        exiting = [e for e in self.esps.values() if e.state is EspState.EXITING]
        if exiting:
            self._move_to(exiting[actor % len(exiting)].available_at + offset)

    # -- valid moves, so that every success path is exercised in every run --------------------

    def _active_esps(self) -> list[int]:
        return [i for i, a in enumerate(self.actors) if self.esps[a.address].state is EspState.ACTIVE]

    def _lock_valid_offer(self, producer: int, esp: int, content: int) -> OfferModel | None:
        """A valid offer by actor `esp` to actor `producer`, locked by the producer; None if refused."""
        who = self.actors[producer]
        model = self._new_offer(who, self.actors[esp].address, content, set())
        self._lock_generation(model, who, model.offer.fee)
        return model if model.state is LockState.LOCKED else None

    def _revealable(self) -> list[OfferModel]:
        now = self._now()
        return [m for m in self.offers if m.state is LockState.LOCKED and now < m.offer.timelock and m.key]

    @precondition(lambda self: bool(self._revealable()))
    @rule(pick=indices)
    def reveal_a_key(self, pick: int) -> None:
        """The ESP withdraws an open lock with the right key before its timelock."""
        models = self._revealable()
        m = models[pick % len(models)]
        self._withdraw_generation(m.offer, m, self.by_address[m.offer.esp], m.key)

    def _registrable(self) -> list[OfferModel]:
        return [m for m in self.offers if m.state is LockState.WITHDRAWN and not m.token_id]

    @precondition(lambda self: bool(self._registrable()))
    @rule(pick=indices)
    def register_a_paid_generation(self, pick: int) -> None:
        """The producer registers a withdrawn lock's content (success, displacement or duplicate)."""
        models = self._registrable()
        m = models[pick % len(models)]
        self._register(m.offer, m, self.by_address[m.offer.producer], m.opening, self.p.registration_bond)

    def _open_locks(self) -> list[tuple[int, Callable[[], None]]]:
        moves: list[tuple[int, Callable[[], None]]] = []
        for m in self._locked_offers():
            if m.state is LockState.LOCKED:
                moves.append((m.offer.timelock, lambda m=m: self._refund_generation(m.offer, m, self.by_address[m.offer.producer])))
        for p in self.purchases:
            if p.state is LockState.LOCKED:
                moves.append((p.terms.timelock, lambda p=p: self._refund_purchase(p.terms, p, self.by_address[p.terms.buyer])))
        return moves

    @precondition(lambda self: bool(self._open_locks()))
    @rule(pick=indices, wait=likely)
    def refund_an_open_lock(self, pick: int, wait: bool) -> None:
        """The sender refunds an open lock, at its timelock (or at once: refused unless deliverable)."""
        moves = self._open_locks()
        timelock, refund = moves[pick % len(moves)]
        if wait:
            self._move_to(timelock)
        refund()

    def _settled_unrated(self) -> list[OfferModel]:
        return [m for m in self.offers if m.state in (LockState.WITHDRAWN, LockState.REFUNDED) and not m.rated]

    @precondition(lambda self: bool(self._settled_unrated()))
    @rule(pick=indices, score=st.integers(0, 2**16 - 1), honest=likely)
    def rate_a_settled_lock(self, pick: int, score: int, honest: bool) -> None:
        """The producer rates a settled lock: positive if withdrawn, negative if refunded; unless
        `honest`, positive whatever the state (refused for a refund)."""
        models = self._settled_unrated()
        m = models[pick % len(models)]
        self._rate(m.offer, m, self.by_address[m.offer.producer], m.state is LockState.WITHDRAWN or not honest, score)

    def _live(self) -> list[int]:
        return [i for i, t in self.tokens.items() if not t.revoked]

    def wait_until_final(self, token: int, offset: int, claim: bool) -> None:
        """Time moves to a live product's finality (-1, 0, +1); with `claim` its owner claims the bond."""
        live = self._live()
        t = self.tokens[live[token % len(live)]]
        self._move_to(t.registered_at + self.p.challenge_window + offset)
        if claim and t.owner is not None:
            self._claim_bond(self.by_address[t.owner], live[token % len(live)])

    def _for_sale(self) -> list[int]:
        now = self._now()
        return [i for i, t in self.tokens.items() if self._is_final(t, now)]

    def buy_a_final_product(self, token: int, buyer: int, price: int, duration: int) -> None:
        """Someone other than the owner purchase-locks a final product."""
        token_ids = self._for_sale()
        token_id = token_ids[token % len(token_ids)]
        owner = self.tokens[token_id].owner
        assert owner is not None
        who = self._actor(self.actors.index(self.by_address[owner]) + 1 + buyer) if owner in self.by_address else self._actor(buyer)
        secret = hashlib.sha256(b"secret %d" % self._tick()).digest()
        now = self._now()
        self._lock_purchase(
            who, token_id, hashlib.sha256(secret).digest(), now + self._durations()[duration], PRICES[price], secret
        )

    def _sellable(self) -> list[PurchaseModel]:
        now = self._now()
        return [p for p in self.purchases if p.state is LockState.LOCKED and now < p.terms.timelock]

    @precondition(lambda self: bool(self._sellable()))
    @rule(pick=indices, approve=likely, move_away=st.sampled_from((False, False, False, True)))
    def sell_a_locked_purchase(self, pick: int, approve: bool, move_away: bool) -> None:
        """The seller approves the exchange and claims a purchase with its secret; with `move_away` it
        gives the token to someone else instead, and the buyer refunds at once."""
        p = self._sellable()[pick % len(self._sellable())]
        seller = self.by_address[p.terms.seller]
        token = self.tokens[p.terms.token_id]
        if move_away and token.owner == seller.address:
            self._transfer(seller, p.terms.token_id, self._counterparty(seller, pick % (N_ACTORS - 1)))
            self._approve(seller, p.terms.token_id, "single")  # refused: no longer the owner
            self._withdraw_purchase(p.terms, p, seller, p.secret)  # refused: no longer the owner
            self._refund_purchase(p.terms, p, self.by_address[p.terms.buyer])
            return
        if approve and not token.approved and token.owner == seller.address:
            self._approve(seller, p.terms.token_id, "single")
        self._withdraw_purchase(p.terms, p, seller, p.secret)

    def _creditors(self) -> list[tuple[LocalAccount, str]]:
        return [
            (self.by_address[a], c)
            for c, book in (("registry", self.reg_credit), ("exchange", self.ex_credit))
            for a, amount in book.items()
            if amount and a in self.by_address
        ]

    @precondition(lambda self: bool(self._creditors()))
    @rule(pick=indices)
    def withdraw_a_credit(self, pick: int) -> None:
        """An account withdraws its credit; a second withdrawal finds none."""
        creditors = self._creditors()
        who, contract = creditors[pick % len(creditors)]
        self._withdraw_credit(who, contract)
        self._withdraw_credit(who, contract)

    def _equivocations(self, slashable: bool) -> list[tuple[OfferModel, OfferModel]]:
        """Pairs of locks of duplicate content (any ESPs) for two producers, the earlier one first;
        with `slashable`, only those whose later lock is not compensated yet and whose ESP has stake."""
        locked = self._locked_offers()
        pairs = [
            (a, b)
            for a in locked
            for b in locked
            if a.seq < b.seq and a.offer.producer != b.offer.producer and self._duplicates(a.opening, b.opening)
        ]
        if slashable:
            pairs = [(a, b) for a, b in pairs if b.lock_id not in self.compensated and self.esps[b.offer.esp].stake >= 2]
        return pairs

    @precondition(lambda self: bool(self._equivocations(True)))
    @rule(pick=indices, caller=indices, slashable=likely, swap=st.booleans())
    def prove_an_equivocation(self, pick: int, caller: int, slashable: bool, swap: bool) -> None:
        """Anyone proves that the ESP of a later lock sold a duplicate of an earlier lock's content
        (the pair in either order); unless `slashable`, any such pair (compensated already, or no stake left)."""
        pairs = self._equivocations(slashable) or self._equivocations(False)
        a, b = pairs[pick % len(pairs)]
        if swap:
            a, b = b, a
        self._prove_equivocation(self._actor(caller), a.offer, a, a.opening, b.offer, b, b.opening)
        self._prove_equivocation(self._actor(caller + 1), b.offer, b, b.opening, a.offer, a, a.opening)  # again

    def unbond_an_esp(self, pick: int, offset: int) -> None:
        """An exiting ESP withdraws its stake at the end of unbonding - 1, 0 or + 1."""
        exiting = [a for a, e in self.esps.items() if e.state is EspState.EXITING and a in self.by_address]
        if not exiting:
            return
        address = exiting[pick % len(exiting)]
        index = self.actors.index(self.by_address[address])
        self._move_to(self.esps[address].available_at + offset)
        self.withdraw_stake(index)
        self.announce_exit(index)  # refused: it is not active (any more)
        self.withdraw_stake(index)  # refused at once after a withdrawal, else at the next second (+1)

    # -- the rules that combine the actions above -----------------------------------------------
    # Hypothesis draws among the rules uniformly: a few rules with an `action` argument rather than
    # one per function, so that the scenario rules below (whole flows) get most of the steps.

    @rule(actor=indices, action=st.sampled_from(("register", "register", "exit", "withdraw")), stake=st.sampled_from(STAKE_MODES))
    def esp_action(self, actor: int, action: str, stake: str) -> None:
        """registerEsp (with a stake of STAKE_MODES), announceExit or withdrawStake, by an actor in the
        state the action needs (three times in four, when there is one) or any actor."""
        wanted = {"register": EspState.NONE, "exit": EspState.ACTIVE, "withdraw": EspState.EXITING}[action]
        fitting = [i for i, a in enumerate(self.actors) if self.esps[a.address].state is wanted]
        if fitting and actor % 4 != 3:
            actor = fitting[actor % len(fitting)]
        if action == "register":
            self.register_esp(actor, stake)
        elif action == "exit":
            self.announce_exit(actor)
        else:
            self.withdraw_stake(actor)

    @rule(pick=indices, withdraw=st.booleans(), caller=st.sampled_from(ROLE_MODES), other=indices, right=likely)
    def settle_generation(self, pick: int, withdraw: bool, caller: str, other: int, right: bool) -> None:
        """withdrawGeneration (right or wrong key) or refundGeneration of any lock, known or not, by its
        party or someone else, at whatever time it is."""
        if withdraw:
            self.withdraw_generation(pick, caller, other, right)
        else:
            self.refund_generation(pick, caller, other)

    @rule(
        sender=indices,
        token=indices,
        to=counterparty,
        as_owner=likely,
        action=st.sampled_from(("claim", "claim", "transfer", "approve", "approve_all", "revoke_all")),
    )
    def token_action(self, sender: int, token: int, to: int, as_owner: bool, action: str) -> None:
        """claimBond, transferFrom, or an approval of the exchange, on any token by its owner or not."""
        if action == "claim":
            self.claim_bond(sender, token, as_owner)
        elif action == "transfer":
            self.transfer(sender, token, to, as_owner)
        else:
            self.approve(sender, token, as_owner, {"approve": "single", "approve_all": "all"}.get(action, "none"))

    @rule(pick=indices, withdraw=st.booleans(), caller=st.sampled_from(ROLE_MODES), other=indices, right=likely)
    def settle_purchase(self, pick: int, withdraw: bool, caller: str, other: int, right: bool) -> None:
        """withdrawPurchase (right or wrong secret) or refundPurchase of any purchase lock."""
        if withdraw:
            self.withdraw_purchase(pick, caller, other, right)
        else:
            self.refund_purchase(pick, caller, other)

    @rule(
        kind=st.sampled_from(("seconds", "seconds", "timelock", "final", "unbonded")),
        pick=indices,
        offset=offsets,
        seconds=st.sampled_from((1, 2, 59, 60, 61, 300, 1799, 1800, 3600, 7 * 24 * 3600 + 1800)),
    )
    def move_time(self, kind: str, pick: int, offset: int, seconds: int) -> None:
        """Time moves by some seconds, or onto a boundary - 1, 0, + 1: an open lock's timelock, a
        product's end of challenge window, an exiting ESP's end of unbonding."""
        if kind == "seconds":
            self.advance_time(seconds)
        elif kind == "timelock":
            self.jump_to_timelock(pick, offset)
        elif kind == "final":
            self.jump_to_final(pick, offset)
        else:
            self.jump_to_unbonded(pick, offset)

    # -- scenarios: whole flows with valid arguments, so that every success path is reached ----

    @precondition(lambda self: bool(self._active_esps()))
    @rule(
        esp=indices,
        producer=st.integers(0, N_ACTORS - 2),
        content=st.integers(0, 7),
        then=st.sampled_from(("register", "register", "reveal", "lock", "refund")),
        slip=unlikely,
        forgery=st.sampled_from(("none", "none", *SIGNATURE_FAULTS)),
    )
    def generate(self, esp: int, producer: int, content: int, then: str, slip: bool, forgery: str) -> None:
        """An active ESP's valid offer, locked by its producer; then the key revealed (after a wrong
        one, with `slip`), and the content registered; or the lock left open; or ("refund") the
        producer asks for a refund too early, time moves to the timelock, the ESP's key comes too
        late, the producer refunds (a second refund is refused) and rates (positive, refused, then
        negative). With a `forgery`, the
        producer first tries the offer with a forged signature (refused); a registered product's bond
        cannot be claimed at once."""
        esps = self._active_esps()
        esp_index = esps[esp % len(esps)]
        producer_index = (esp_index + 1 + producer) % N_ACTORS
        if forgery != "none":
            forged = self._new_offer(self.actors[producer_index], self.actors[esp_index].address, content, {forgery})
            self._lock_generation(forged, self.actors[producer_index], forged.offer.fee)
        model = self._lock_valid_offer(producer_index, esp_index, content)
        if model is None or then == "lock":
            return
        esp_account, producer_account = self.by_address[model.offer.esp], self.by_address[model.offer.producer]
        if then == "refund":
            self._refund_generation(model.offer, model, producer_account)
            self._move_to(model.offer.timelock)
            self._withdraw_generation(model.offer, model, esp_account, model.key)
            self._refund_generation(model.offer, model, producer_account)
            self._refund_generation(model.offer, model, producer_account)  # refused: settled
            self._rate(model.offer, model, producer_account, True, 1)
            self._rate(model.offer, model, producer_account, False, 0)
            return
        if slip:
            self._withdraw_generation(model.offer, model, esp_account, hashlib.sha256(model.key).digest())
        self._withdraw_generation(model.offer, model, esp_account, model.key)
        if then == "register":
            self._register(model.offer, model, producer_account, model.opening, self.p.registration_bond)
            if model.token_id:
                self._claim_bond(producer_account, model.token_id)  # refused: not final

    @precondition(lambda self: bool(self._active_esps()))
    @rule(
        esp=indices,
        other_esp=st.booleans(),
        first=st.integers(0, N_ACTORS - 2),
        second=st.integers(0, N_ACTORS - 3),
        content=st.integers(0, 8),
        later_first=st.booleans(),
    )
    def same_content_twice(self, esp: int, other_esp: bool, first: int, second: int, content: int, later_first: bool) -> None:
        """One content generated for two producers, by one ESP (an equivocation) or by two; both keys
        revealed; both registered, the later generation first (it is displaced) or the earlier first
        (the later one is a duplicate)."""
        esps = self._active_esps()
        esp_a = esps[esp % len(esps)]
        esp_b = esps[(esp + 1) % len(esps)] if other_esp else esp_a
        producers = [i for i in range(N_ACTORS) if i not in (esp_a, esp_b)]
        p1 = producers[first % len(producers)]
        p2 = [i for i in producers if i != p1][second % (len(producers) - 1)]
        a = self._lock_valid_offer(p1, esp_a, content)
        b = self._lock_valid_offer(p2, esp_b, content)
        for model in (a, b):
            if model is not None:
                self._withdraw_generation(model.offer, model, self.by_address[model.offer.esp], model.key)
        for model in (b, a) if later_first else (a, b):
            if model is not None:
                self._register(model.offer, model, self.by_address[model.offer.producer], model.opening, self.p.registration_bond)

    def _challengeable(self, near: bool) -> list[tuple[int, int]]:
        """(original, duplicate) pairs of a well-formed challenge: the original owned, the duplicate
        live, not final, owned by someone else; with `near`, only those that will be upheld."""
        now = self._now()
        pairs = [
            (o, d)
            for o, orig in self.tokens.items()
            for d, dup in self.tokens.items()
            if o != d
            and orig.owner is not None
            and dup.owner is not None
            and dup.owner != orig.owner
            and not self._is_final(dup, now)
        ]
        if near:
            pairs = [
                (o, d)
                for o, d in pairs
                if self.tokens[o].generation_seq < self.tokens[d].generation_seq
                and bin(self.tokens[o].phash ^ self.tokens[d].phash).count("1") <= self.p.similarity_threshold
            ]
        return pairs

    @precondition(lambda self: bool(self._challengeable(False)))
    @rule(pick=indices, near=likely, deposit=st.sampled_from(("exact", "more")))
    def challenge_a_product(self, pick: int, near: bool, deposit: str) -> None:
        """A well-formed challenge by the original's owner: of a near-duplicate generated later (upheld)
        if there is one and `near`, else of any other owner's product (mostly rejected)."""
        pairs = self._challengeable(near) or self._challengeable(False)
        orig_id, dup_id = pairs[pick % len(pairs)]
        owner = self.tokens[orig_id].owner
        assert owner is not None
        value = self.p.challenge_deposit + (FEE if deposit == "more" else 0)
        self._challenge(self.by_address[owner], orig_id, dup_id, value)

    @precondition(lambda self: bool(self._live()))
    @rule(token=indices, offset=offsets, claim=st.booleans())
    def finalize(self, token: int, offset: int, claim: bool) -> None:
        """Time moves to a live product's finality (-1, 0, +1); with `claim` its owner claims the bond."""
        self.wait_until_final(token, offset, claim)

    @precondition(lambda self: bool(self._for_sale()))
    @rule(
        token=indices,
        buyer=st.integers(0, N_ACTORS - 2),
        price=st.integers(1, 3),
        duration=st.integers(0, 4),
        outcome=st.sampled_from(("sell", "move_away", "unapproved", "expire", "open")),
    )
    def trade(self, token: int, buyer: int, price: int, duration: int, outcome: str) -> None:
        """Someone buys a final product: the seller approves and claims ("sell"; the buyer's refund
        then comes too late), claims without the exchange's approval ("unapproved"), or gives the
        token to a third party, cannot claim, and the buyer refunds at once ("move_away"); the
        seller's claim comes at the timelock and the buyer refunds ("expire"); or the lock stays open
        (the buyer's refund is refused)."""
        token_ids = self._for_sale()
        owner = self.tokens[token_ids[token % len(token_ids)]].owner
        assert owner is not None
        self._lock_purchase(
            self.by_address[owner], token_ids[token % len(token_ids)], ZERO32, self._now() + 3600, PRICES[price], b""
        )  # refused: one's own product
        before = len(self.purchases)
        self.buy_a_final_product(token, buyer, price, duration)
        if len(self.purchases) == before:
            return
        p = self.purchases[-1]
        seller, buyer_account = self.by_address[p.terms.seller], self.by_address[p.terms.buyer]
        token_model = self.tokens[p.terms.token_id]
        if outcome == "open":
            self._refund_purchase(p.terms, p, buyer_account)
            self._transfer(buyer_account, p.terms.token_id, buyer_account.address)  # refused: not the owner
        elif outcome == "move_away":  # the seller can no longer deliver; the buyer need not wait
            self._transfer(seller, p.terms.token_id, self._counterparty(seller, buyer % (N_ACTORS - 1)))
            self._approve(seller, p.terms.token_id, "single")  # refused: no longer the owner
            self._withdraw_purchase(p.terms, p, seller, p.secret)
            self._refund_purchase(p.terms, p, buyer_account)
        elif outcome == "expire":
            self._move_to(p.terms.timelock)
            self._withdraw_purchase(p.terms, p, seller, p.secret)
            self._refund_purchase(p.terms, p, buyer_account)
        else:
            if outcome == "sell" and not token_model.approved and seller.address not in self.approved_all:
                self._approve(seller, p.terms.token_id, "single")
            self._withdraw_purchase(p.terms, p, seller, p.secret)
            self._refund_purchase(p.terms, p, buyer_account)

    @precondition(lambda self: any(self.esps[a.address].state in (EspState.ACTIVE, EspState.EXITING) for a in self.actors))
    @rule(pick=indices, offset=offsets, rejoin=likely)
    def exit_and_unbond(self, pick: int, offset: int, rejoin: bool) -> None:
        """An ESP announces its exit (if active; a second announcement and a new registration are
        refused), withdraws its stake at the end of unbonding -1, 0, +1 (a week's jump; refused at -1,
        paid a second later), cannot withdraw twice, and (with `rejoin`) stakes again."""
        candidates = [i for i, a in enumerate(self.actors) if self.esps[a.address].state in (EspState.ACTIVE, EspState.EXITING)]
        index = candidates[pick % len(candidates)]
        address = self.actors[index].address
        if self.esps[address].state is EspState.ACTIVE:
            self.announce_exit(index)
            self.announce_exit(index)
            self.register_esp(index, "min")
        available_at = self.esps[address].available_at
        self._move_to(available_at + offset)
        self.withdraw_stake(index)  # refused at available_at - 1
        if self.esps[address].state is EspState.EXITING:
            self._move_to(available_at)
            self.withdraw_stake(index)
        self.withdraw_stake(index)  # refused: withdrawn already
        if rejoin:
            self.register_esp(index, "min")

    # -- invariants ----------------------------------------------------------------------------

    def _open_sum(self) -> int:
        generation = sum(m.offer.fee for m in [*self.offers, self.standing] if m.state is LockState.LOCKED)
        return generation + sum(p.terms.price for p in self.purchases if p.state is LockState.LOCKED)

    @invariant()
    def ether_conserved(self) -> None:
        self.stats.invariant_checks += 1
        total = sum(self.balances.values())
        fees = self.chain.fees_paid_wei - self.fees0
        if total + fees != self.total0:
            self._fail("ether conserved", f"accounts and contracts hold {total} wei + {fees} gas, had {self.total0}")

    @invariant()
    def exchange_holds_open_locks_credits_and_stakes(self) -> None:
        owed = self._open_sum() + sum(self.ex_credit.values()) + sum(e.stake for e in self.esps.values()) + self.forfeited
        held = self.balances[self.exchange.address]
        if held != owed:
            self._fail("exchange balance == open locks + credits + stakes", f"exchange holds {held} wei, owes {owed}")

    @invariant()
    def registry_holds_live_bonds_and_credits(self) -> None:
        bonds = sum(1 for t in self.tokens.values() if not t.revoked and not t.bond_released)
        owed = bonds * self.p.registration_bond + sum(self.reg_credit.values())
        held = self.balances[self.registry.address]
        if held != owed:
            self._fail("registry balance == live bonds + credits", f"registry holds {held} wei, owes {owed}")

    @invariant()
    def model_is_consistent(self) -> None:
        """One owner per live product (none when revoked), one live product per content hash, no
        purchase lock before finality, a rating only for a settled lock, a lock paid at most once."""
        live_contents = [t.content_hash for t in self.tokens.values() if not t.revoked]
        if len(live_contents) != len(set(live_contents)):
            self._fail("one owner per live product", "two live products hold one content hash")
        for token_id, t in self.tokens.items():
            if (t.owner is None) != t.revoked:
                self._fail("one owner per live product", f"token {token_id}: owner {t.owner}, revoked {t.revoked}")
        for p in self.purchases:
            token = self.tokens[p.terms.token_id]
            if p.locked_at < token.registered_at + self.p.challenge_window:
                self._fail("no product bought before final", f"token {p.terms.token_id} locked at {p.locked_at}")
        for m in [*self.offers, self.standing]:
            if m.rated and m.state not in (LockState.WITHDRAWN, LockState.REFUNDED):
                self._fail("a rating only for a settled accepted lock", f"lock 0x{m.lock_id.hex()}")
            if m.paid_out > m.offer.fee:
                self._fail("lock settles at most once", f"lock 0x{m.lock_id.hex()} paid {m.paid_out} wei")
        for p in self.purchases:
            if p.paid_out > p.terms.price:
                self._fail("lock settles at most once", f"lock 0x{p.lock_id.hex()} paid {p.paid_out} wei")

    def teardown(self) -> None:
        try:
            if not self.failed:  # else the first violation is the one to report
                self._sweep()
        finally:
            self.chain.revert(self.snapshot)

    def _sweep(self) -> None:
        """The chain against the model once per example: counters, every owner, every lock, every ESP
        and credit the model knows, every rating. (Product records are compared at registration with
        the ProductRegistered event; money moves are compared at every call.)"""
        registry, exchange, ledger = self.registry, self.exchange, self.ledger
        if self.chain.now() != self.latest or {a: self._balance(a) for a in self.tracked} != self.balances:
            self._fail("model agreement", "the machine's time or balances drifted from the chain's")
        if registry.total_registered() != len(self.tokens):
            self._fail("model agreement", "totalRegistered differs from the model")
        if exchange.contract.functions.totalLocks().call() != self.last_seq:
            self._fail("model agreement", "totalLocks differs from the model")
        if exchange.total_forfeited() != self.forfeited:
            self._fail("exchange balance == open locks + credits + stakes", "totalForfeited differs from the model")
        self._check_owners(list(self.tokens))
        locks = [
            (m.lock_id, LockKind.GENERATION, m.state, m.seq, m.locked_at, m.offer.fee)
            for m in [*self._locked_offers(), self.standing]
        ]
        locks += [(p.lock_id, LockKind.PURCHASE, p.state, p.seq, p.locked_at, p.terms.price) for p in self.purchases]
        for lock_id, kind, state, seq, locked_at, amount in locks:
            info = exchange.get_lock(lock_id)
            if (info.kind, info.state, info.seq, info.locked_at) != (kind, state, seq, locked_at):
                settled = (LockState.WITHDRAWN, LockState.REFUNDED)
                if state in settled and info.state in settled:
                    self._fail(
                        "lock settles at most once",
                        f"lock 0x{lock_id.hex()} settled twice (model "
                        f"{state.name}, chain {info.state.name}): double payout of {amount} wei",
                    )
                self._fail("model agreement", f"lock 0x{lock_id.hex()}: chain {info} vs model {state.name}")
        for m in self.offers:
            if m.rated and not ledger.is_rated(m.lock_id):
                self._fail("a rating only for a settled accepted lock", f"isRated 0x{m.lock_id.hex()}")
        for address, e in self.esps.items():
            if e != EspModel():
                info = exchange.esp_info(address)
                if (info.state, info.stake, info.available_at) != (e.state, e.stake, e.available_at):
                    self._fail("model agreement", f"ESP {address}: chain {info} vs model {e}")
        for wrapper, book in ((registry, self.reg_credit), (exchange, self.ex_credit)):
            for address, amount in book.items():
                if wrapper.credit_of(address) != amount:
                    self._fail("payouts", f"creditOf({address}) at {self.names[wrapper.address]} differs")
        for (producer, esp), (positives, negatives) in self.ratings.items():
            stats = ledger.stats(producer, esp)
            if (stats.positives, stats.negatives) != (positives, negatives):
                self._fail("a rating only for a settled accepted lock", f"stats of {producer}/{esp}")
