"""The stateful model of the three contracts, a mutant exchange, and fuzzing profiles (issue 9).

`MarketMachine` is a Hypothesis `RuleBasedStateMachine` that drives registry, exchange and ledger
together on one eth-tester chain with random producers, ESPs and buyers, valid and invalid
arguments, and time jumps. A Python model predicts the outcome of every call (success, or the
exact custom error) and the ether every account must receive; the machine checks after each step:

- the exchange's balance equals the sum of open locks (and the registry's the live bonds);
- a lock settles at most once, and pays out exactly its amount;
- total paid out never exceeds total deposited;
- every live token has exactly one owner (the model's), every revoked one none;
- a revoked token never changes hands (no Transfer event for it, ever again);
- a rating exists only for a settled generation lock, rated by its sender.

Any difference between the chain and the model raises `InvariantViolation` naming the invariant.
The machine is bound to a market with `bind_machine`, so the same suite can run against a
deliberately broken exchange (`compile_mutant_exchange`).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import solcx
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from market.chain.artifacts import Artifact, load_artifact
from market.chain.compiler import COMPILER_SETTINGS, solc_binary
from market.chain.connection import Chain, TxResult
from market.chain.contracts import Exchange, Ledger, LockKind, LockState, Registry
from market.chain.deploy import Deployment, Market, MarketParams
from market.chain.errors import ContractRevert
from market.chain.paths import CONTRACTS_DIR, REPO_ROOT
from market.chain.signing import sign_generation

ETHER = 10**18
FEE = ETHER // 100
ZERO_ADDRESS = "0x" + "00" * 20
REPORT_DIR = REPO_ROOT / "out" / "verification"

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


def write_report(name: str, data: dict[str, Any]) -> Path:
    """Write a JSON report under out/verification/ (ignored by git) and return its path."""
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    path = REPORT_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


# -- the mutant exchange ------------------------------------------------------------------------

#: The refund that skips the settled check: it reads the lock without `_openLock`.
MUTATION = (
    "    function refund(bytes32 id) external nonReentrant {\n        Lock storage lock = _openLock(id);\n",
    "    function refund(bytes32 id) external nonReentrant {\n        Lock storage lock = _locks[id];\n",
)


def compile_mutant_exchange() -> Artifact:
    """AIGCExchange with MUTATION applied, compiled now with the project's compiler settings."""
    exchange_source = (CONTRACTS_DIR / "AIGCExchange.sol").read_text()
    original, mutated = MUTATION
    if exchange_source.count(original) != 1:
        raise AssertionError("the mutation no longer applies: refund() changed; update MUTATION")
    sources = {
        "contracts/AIGCExchange.sol": {"content": exchange_source.replace(original, mutated)},
        "contracts/AIGCRegistry.sol": {"content": (CONTRACTS_DIR / "AIGCRegistry.sol").read_text()},
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
    """The three contracts, with `exchange_artifact` in place of the committed exchange."""
    params = params or MarketParams()
    deployer = chain.funder
    registry, _ = chain.deploy(
        load_artifact("AIGCRegistry"), deployer, params.registration_bond, params.challenge_deposit,
        params.similarity_threshold, params.royalty_bps,
    )
    exchange, _ = chain.deploy(exchange_artifact, deployer, registry.address, params.min_timelock)
    ledger, r3 = chain.deploy(load_artifact("ReputationLedger"), deployer, exchange.address)
    deployment = Deployment(
        chain_id=chain.chain_id,
        block=r3.block_number,
        contracts={"AIGCRegistry": registry.address, "AIGCExchange": exchange.address, "ReputationLedger": ledger.address},
    )
    return Market(chain, Registry(chain, registry), Exchange(chain, exchange), Ledger(chain, ledger), deployment)


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
    error_mismatches: int = 0
    calls_at_first_violation: int | None = None
    first_violation: str | None = None
    by_rule: dict[str, list[int]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    def record(self, rule_name: str, reverted: bool, error: str | None = None) -> None:
        if error is not None:
            self.errors[error] = self.errors.get(error, 0) + 1
        self.calls += 1
        self.reverts += reverted
        counts = self.by_rule.setdefault(rule_name, [0, 0])
        counts[0] += 1
        counts[1] += reverted

    def summary(self) -> str:
        return f"{self.calls} fuzzed calls, {self.reverts} reverts, {self.violations} invariant violations"

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": self.calls, "reverts": self.reverts, "violations": self.violations, "examples": self.examples,
            "error_mismatches": self.error_mismatches,
            "calls_at_first_violation": self.calls_at_first_violation, "first_violation": self.first_violation,
            "by_rule": {name: {"calls": c, "reverts": r} for name, (c, r) in sorted(self.by_rule.items())},
            "reverts_by_error": dict(sorted(self.errors.items())),
        }


@dataclass
class TokenModel:
    producer: str
    owner: str | None
    phash: int
    approved: bool = False
    revoked: bool = False


@dataclass
class LockModel:
    lock_id: bytes
    sender: str
    receiver: str
    amount: int
    timelock: int
    kind: LockKind
    token_id: int
    preimage: bytes
    state: LockState = LockState.LOCKED
    paid_out: int = 0
    rated: bool = False


def _content(i: int) -> tuple[bytes, bytes, int]:
    """Content i of the pool: (contentHash, promptHash, pHash). Families of near-duplicate pHashes."""
    content_hash = hashlib.sha256(f"verification content {i}".encode()).digest()
    prompt_hash = hashlib.sha256(f"verification prompt {i}".encode()).digest()
    base = 0x9E3779B97F4A7C15 if i % 2 == 0 else 0x0123456789ABCDEF
    offsets = (0, 0, 0b111, 0b111, (1 << 20) - 1, (1 << 20) - 1, 1 << 63, 1 << 63)  # distances 0, 3, 20, 1
    return content_hash, prompt_hash, base ^ offsets[i % len(offsets)]


CONTENT_POOL = [_content(i) for i in range(8)] + [(b"\x00" * 32, b"\x00" * 32, 0)]  # the last: zero hash
AMOUNTS = (0, FEE, 2 * FEE, 3 * FEE)
SIGNATURE_MODES = ("valid", "valid", "valid", "wrong_signer", "other_producer", "tampered_phash")
ROLE_MODES = ("role", "role", "other")  # act as the lock's own party, or as someone else
N_ACTORS = 6
STANDING_LOCK_AMOUNT = ETHER


@dataclass
class Setup:
    """A deployed market with funded actors, a standing lock and a base snapshot."""

    market: Market
    actors: list[LocalAccount]
    whale: LocalAccount
    standing_lock: LockModel
    params: MarketParams
    stats: FuzzStats = field(default_factory=FuzzStats)


def make_setup(market: Market) -> Setup:
    """Fund actors and open a 30-day standing lock (so the exchange always holds others' money)."""
    chain = market.chain
    actors = [chain.new_account(1_000 * ETHER, f"fuzz-actor-{i}") for i in range(N_ACTORS)]
    whale = chain.new_account(10 * ETHER, "fuzz-whale")
    preimage = hashlib.sha256(b"standing lock").digest()
    timelock = chain.now() + 30 * 24 * 3600
    opened = market.exchange.lock_generation(
        whale, actors[0].address, hashlib.sha256(preimage).digest(), timelock, STANDING_LOCK_AMOUNT
    )
    # The fuzzer is not told the standing lock's key (preimage b""): it can only fail to withdraw it.
    standing = LockModel(
        opened.lock_id, whale.address, actors[0].address, STANDING_LOCK_AMOUNT, timelock, LockKind.GENERATION, 0, b""
    )
    params = MarketParams(
        registration_bond=market.registry.registration_bond(),
        challenge_deposit=market.registry.challenge_deposit(),
        similarity_threshold=market.registry.similarity_threshold(),
        royalty_bps=market.registry.royalty_bps(),
        min_timelock=market.exchange.min_timelock(),
    )
    return Setup(market, actors, whale, standing, params)


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
#: An offset from the acting party to its counterparty: 0..N-2 another actor, N-1 itself, N the zero address.
counterparty = st.integers(min_value=0, max_value=N_ACTORS)


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
        self.by_address = {a.address: a for a in [*s.actors, s.whale]}
        self.tokens: dict[int, TokenModel] = {}
        self.token_of_content: dict[bytes, int] = {}
        self.locks: list[LockModel] = []
        self.standing = LockModel(**{**s.standing_lock.__dict__})
        self.ratings: dict[tuple[str, str], list[int]] = {}
        self.pending_ts = 0
        self.counter = 0
        self.deposited = 0
        self.paid_out = 0
        self.rated_unknown: list[bytes] = []
        self.burned_at: dict[int, int] = {}

    # -- plumbing ------------------------------------------------------------------------------

    def _fail(self, invariant_name: str, detail: str) -> None:
        self.stats.violations += 1
        if self.stats.calls_at_first_violation is None:
            self.stats.calls_at_first_violation = self.stats.calls
            self.stats.first_violation = f"[{invariant_name}] {detail}"
        raise InvariantViolation(invariant_name, detail)

    def _next_block_time(self) -> int:
        """Pin the next block's time; the model predicts with it.

        Never behind the wall clock: eth-tester (py-evm) runs eth_estimateGas, where a revert shows,
        in a block stamped max(latest + 1, wall clock); a chain reverted to an old snapshot lies
        behind the wall clock, and the pinned time would not be the one the estimate runs at.
        """
        ts = max(self.pending_ts, self.chain.now() + 1, int(time.time()) + 2)
        self.chain.set_next_block_timestamp(ts)
        return ts

    def _tick(self) -> int:
        self.counter += 1
        return self.counter

    def _tracked(self) -> list[str]:
        return [*self.by_address, self.exchange.address, self.registry.address]

    def _attempt(
        self,
        rule_name: str,
        caller: LocalAccount,
        expected_error: str | None,
        send: Any,
        deltas: dict[str, int] | None = None,
        settles: LockModel | None = None,
    ) -> TxResult | None:
        """Run `send()`; compare outcome, ether movements and Transfer events with the model."""
        before = {a: self.chain.balance(a) for a in self._tracked()}
        try:
            result: TxResult | None = send()
            outcome, detail = None, ""
        except ContractRevert as exc:
            result, outcome, detail = None, exc.error, str(exc)
        self.stats.record(rule_name, outcome is not None, outcome)
        if outcome == expected_error:
            if result is not None:
                self._check_movements(rule_name, caller, before, result, deltas or {})
            return result
        if outcome is None and settles is not None and expected_error == "AIGCExchangeLockSettled":
            self._fail("lock settles at most once", f"{rule_name} paid lock 0x{settles.lock_id.hex()} again "
                       f"(state was {settles.state.name}): double payout of {settles.amount} wei")
        if outcome is None:
            self._fail("model agreement", f"{rule_name} succeeded, expected {expected_error}")
        if expected_error is not None and not self.strict_errors:
            self.stats.error_mismatches += 1
            return None
        self._fail("model agreement", f"{rule_name} reverted with {outcome}, expected {expected_error or 'success'} ({detail})")
        return None

    def _check_movements(
        self, rule_name: str, caller: LocalAccount, before: dict[str, int], result: TxResult, deltas: dict[str, int]
    ) -> None:
        for address in self._tracked():
            actual = self.chain.balance(address) - before[address] + (result.fee_wei if address == caller.address else 0)
            expected = deltas.get(address, 0)
            if actual != expected:
                name = {self.exchange.address: "exchange", self.registry.address: "registry"}.get(address, address)
                invariant_name = "total paid out <= total deposited" if address == self.exchange.address else "payouts"
                self._fail(invariant_name, f"{rule_name}: {name} changed by {actual} wei, expected {expected}")
        for event in result.events:
            if event.name == "Transfer" and event.contract == "AIGCRegistry":
                token_id = event.args["tokenId"]
                if token_id in self.burned_at and event.block_number > self.burned_at[token_id]:
                    self._fail("a revoked token never changes hands", f"{rule_name} moved revoked token {token_id}")

    def _pick_token(self, choice: int) -> int:
        """Mostly a registered id; for choices 14 and 15 the next id and 0 (unknown ids)."""
        n = len(self.tokens)
        if n == 0 or choice >= 14:
            return 0 if choice == 15 else n + 1
        return 1 + choice % n

    def _counterparty(self, actor: LocalAccount, offset: int) -> str:
        if offset >= N_ACTORS:
            return ZERO_ADDRESS
        return self.actors[(self.actors.index(actor) + 1 + offset) % N_ACTORS].address

    def _pick_lock(self, choice: int) -> LockModel | None:
        """A fuzz lock, the standing lock, or None for an id nobody locked."""
        n = len(self.locks)
        if n == 0 or choice >= 14:
            return self.standing if choice == 14 else None
        return self.locks[choice % n]

    def _actor(self, choice: int) -> LocalAccount:
        return self.actors[choice % N_ACTORS]

    def _party(self, mode: str, role_address: str, other: int) -> LocalAccount:
        if mode == "role" and role_address in self.by_address:
            return self.by_address[role_address]
        return self._actor(other)

    # -- initial state: a few products and locks, with random parties ---------------------------

    @initialize(producers=st.lists(indices, min_size=1, max_size=3), esps=st.lists(indices, min_size=3, max_size=3),
                first_content=st.integers(0, 7), approve=st.lists(st.booleans(), min_size=3, max_size=3))
    def seed_products(self, producers: list[int], esps: list[int], first_content: int, approve: list[bool]) -> None:
        for i, producer in enumerate(producers):
            content = (first_content + i) % 8
            self.register(producer, esps[i] % N_ACTORS, content, "valid", True)
            if approve[i]:
                self.approve_exchange(producer, len(self.tokens) - 1, True)  # choice n - 1 picks token n

    @initialize(senders=st.lists(indices, min_size=1, max_size=3), receivers=st.lists(indices, min_size=3, max_size=3),
                durations=st.lists(st.integers(0, 3), min_size=3, max_size=3))
    def seed_locks(self, senders: list[int], receivers: list[int], durations: list[int]) -> None:
        for i, sender in enumerate(senders):
            self.lock_generation(sender, receivers[i] % (N_ACTORS - 1), i % 3, durations[i])  # valid arguments

    # -- registry ------------------------------------------------------------------------------

    @rule(producer=indices, esp=st.integers(0, N_ACTORS), content=st.integers(0, len(CONTENT_POOL) - 1),
          mode=st.sampled_from(SIGNATURE_MODES), bond_ok=likely)
    def register(self, producer: int, esp: int, content: int, mode: str, bond_ok: bool) -> None:
        who = self._actor(producer)
        esp_account = self.actors[esp] if esp < N_ACTORS else None  # N_ACTORS: the zero address
        signer = esp_account or self._actor(esp + 1)
        content_hash, prompt_hash, phash = CONTENT_POOL[content]
        signed_for, signed_phash = who.address, phash
        if mode == "wrong_signer":
            signer = self._actor(self.actors.index(signer) + 1)
        elif mode == "other_producer":
            signed_for = self._actor(producer + 1).address
        elif mode == "tampered_phash":
            signed_phash = phash ^ 1
        signature = sign_generation(
            signer, chain_id=self.chain.chain_id, registry=self.registry.address, producer=signed_for,
            content_hash=content_hash, prompt_hash=prompt_hash, perceptual_hash=signed_phash,
        )
        bond = self.p.registration_bond if bond_ok else self.p.registration_bond - 1
        if not bond_ok:
            expected = "AIGCRegistryWrongBond"
        elif content_hash == b"\x00" * 32:
            expected = "AIGCRegistryInvalidContentHash"
        elif content_hash in self.token_of_content:
            expected = "AIGCRegistryDuplicateContent"
        elif esp_account is None:
            expected = "AIGCRegistryInvalidEsp"
        elif mode != "valid":
            expected = "AIGCRegistryInvalidSignature"
        else:
            expected = None
        self._next_block_time()
        result = self._attempt(
            "register", who, expected,
            lambda: self.registry.register(
                who, content_hash=content_hash, perceptual_hash=phash, prompt_hash=prompt_hash,
                esp=esp_account.address if esp_account else ZERO_ADDRESS, signature=signature, bond=bond,
            ).tx,
            deltas={who.address: -bond, self.registry.address: bond},
        )
        if result is not None:
            token_id = result.event("ProductRegistered").args["tokenId"]
            if token_id != len(self.tokens) + 1:
                self._fail("model agreement", f"register minted id {token_id}, expected {len(self.tokens) + 1}")
            self.tokens[token_id] = TokenModel(who.address, who.address, phash)
            self.token_of_content[content_hash] = token_id

    @rule(challenger=indices, original=indices, duplicate=indices, as_owner=likely, deposit_ok=likely)
    def challenge(self, challenger: int, original: int, duplicate: int, as_owner: bool, deposit_ok: bool) -> None:
        orig_id = self._pick_token(original)
        dup_id = self._pick_token(original + 1 + duplicate)  # mostly another token than the original
        orig, dup = self.tokens.get(orig_id), self.tokens.get(dup_id)
        who = self._actor(challenger)
        if as_owner and orig is not None and orig.owner is not None:
            who = self.by_address[orig.owner]
        deposit = self.p.challenge_deposit if deposit_ok else self.p.challenge_deposit - 1
        deltas: dict[str, int] = {}
        upheld = False
        if not deposit_ok:
            expected = "AIGCRegistryDepositTooSmall"
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
        else:
            expected = None
            distance = bin(orig.phash ^ dup.phash).count("1")
            upheld = orig_id < dup_id and distance <= self.p.similarity_threshold
            if upheld:
                deltas = {who.address: self.p.registration_bond, self.registry.address: -self.p.registration_bond}
            else:
                assert dup.owner is not None
                deltas = {who.address: -deposit, dup.owner: deposit}
        self._next_block_time()
        result = self._attempt(
            "challenge", who, expected, lambda: self.registry.challenge(who, orig_id, dup_id, deposit).tx, deltas
        )
        if result is not None:
            verdict = result.event("ChallengeResolved").args["upheld"]
            if verdict != upheld:
                self._fail("model agreement", f"challenge({orig_id}, {dup_id}) upheld={verdict}, expected {upheld}")
            if upheld:
                assert dup is not None
                dup.revoked, dup.owner, dup.approved = True, None, False
                self.burned_at[dup_id] = result.block_number

    @rule(sender=indices, token=indices, to=counterparty, as_owner=likely)
    def transfer(self, sender: int, token: int, to: int, as_owner: bool) -> None:
        token_id = self._pick_token(token)
        model = self.tokens.get(token_id)
        who = self._actor(sender)
        if as_owner and model is not None and model.owner is not None:
            who = self.by_address[model.owner]
        to_address = self._counterparty(who, to)
        if to_address == ZERO_ADDRESS:
            expected = "ERC721InvalidReceiver"
        elif model is None or model.owner is None:
            expected = "ERC721NonexistentToken"
        elif model.owner != who.address:
            expected = "ERC721InsufficientApproval"
        else:
            expected = None
        self._next_block_time()
        result = self._attempt("transfer", who, expected, lambda: self.registry.transfer(who, to_address, token_id))
        if result is not None:
            assert model is not None
            model.owner, model.approved = to_address, False

    @rule(sender=indices, token=indices, as_owner=likely)
    def approve_exchange(self, sender: int, token: int, as_owner: bool) -> None:
        token_id = self._pick_token(token)
        model = self.tokens.get(token_id)
        who = self._actor(sender)
        if as_owner and model is not None and model.owner is not None:
            who = self.by_address[model.owner]
        if model is None or model.owner is None:
            expected = "ERC721NonexistentToken"
        elif model.owner != who.address:
            expected = "ERC721InvalidApprover"
        else:
            expected = None
        self._next_block_time()
        result = self._attempt(
            "approve", who, expected, lambda: self.registry.approve(who, self.exchange.address, token_id)
        )
        if result is not None:
            assert model is not None
            model.approved = True

    # -- exchange ------------------------------------------------------------------------------

    def _durations(self) -> tuple[int, ...]:
        m = self.p.min_timelock
        return (m, m + 1, 5 * m, 60 * m, m - 1)  # the last one is too soon

    @rule(sender=indices, receiver=counterparty, amount=st.integers(0, 3), duration=st.integers(0, 4))
    def lock_generation(self, sender: int, receiver: int, amount: int, duration: int) -> None:
        who = self._actor(sender)
        to = self._counterparty(who, receiver)
        value = AMOUNTS[(amount + 1) % 4]  # 0 (invalid) one time in four, and never the simplest choice
        preimage = hashlib.sha256(f"key {self._tick()}".encode()).digest()
        now = self._next_block_time()
        timelock = now + self._durations()[duration]
        expected = self._lock_error(who.address, to, value, timelock, now)
        result = self._attempt(
            "lockGeneration", who, expected,
            lambda: self.exchange.lock_generation(who, to, hashlib.sha256(preimage).digest(), timelock, value).tx,
            deltas={who.address: -value, self.exchange.address: value},
        )
        if result is not None:
            lock_id = bytes(result.event("Locked").args["id"])
            self.locks.append(LockModel(lock_id, who.address, to, value, timelock, LockKind.GENERATION, 0, preimage))
            self.deposited += value

    @rule(sender=indices, token=indices, amount=st.integers(0, 3), duration=st.integers(0, 4), not_owner=likely)
    def lock_purchase(self, sender: int, token: int, amount: int, duration: int, not_owner: bool) -> None:
        who = self._actor(sender)
        token_id = self._pick_token(token)
        model = self.tokens.get(token_id)
        if not_owner and model is not None and model.owner == who.address:
            who = self._actor(sender + 1)
        value = AMOUNTS[(amount + 1) % 4]
        preimage = hashlib.sha256(f"secret {self._tick()}".encode()).digest()
        now = self._next_block_time()
        timelock = now + self._durations()[duration]
        if model is None:
            expected: str | None = "AIGCRegistryUnknownProduct"
        elif model.revoked:
            expected = "AIGCExchangeTokenRevoked"
        else:
            assert model.owner is not None
            expected = self._lock_error(who.address, model.owner, value, timelock, now)
        result = self._attempt(
            "lockPurchase", who, expected,
            lambda: self.exchange.lock_purchase(who, token_id, hashlib.sha256(preimage).digest(), timelock, value).tx,
            deltas={who.address: -value, self.exchange.address: value},
        )
        if result is not None:
            assert model is not None and model.owner is not None
            lock_id = bytes(result.event("Locked").args["id"])
            self.locks.append(
                LockModel(lock_id, who.address, model.owner, value, timelock, LockKind.PURCHASE, token_id, preimage)
            )
            self.deposited += value

    def _lock_error(self, sender: str, receiver: str, value: int, timelock: int, now: int) -> str | None:
        if value == 0:
            return "AIGCExchangeZeroAmount"
        if receiver in (ZERO_ADDRESS, sender):
            return "AIGCExchangeInvalidReceiver"
        if timelock < now + self.p.min_timelock:
            return "AIGCExchangeTimelockTooSoon"
        return None

    @rule(lock=indices, caller=st.sampled_from(ROLE_MODES), other=indices, right=likely)
    def withdraw(self, lock: int, caller: str, other: int, right: bool) -> None:
        model = self._pick_lock(lock)
        lock_id = model.lock_id if model else hashlib.sha256(b"never locked %d" % lock).digest()
        who = self._party(caller, model.receiver if model else "", other)
        preimage = model.preimage if (model and right and model.preimage) else hashlib.sha256(b"wrong %d" % other).digest()
        now = self._next_block_time()
        deltas: dict[str, int] = {}
        token = self.tokens.get(model.token_id) if model else None
        if model is None:
            expected: str | None = "AIGCExchangeUnknownLock"
        elif model.state is not LockState.LOCKED:
            expected = "AIGCExchangeLockSettled"
        elif who.address != model.receiver:
            expected = "AIGCExchangeNotReceiver"
        elif now >= model.timelock:
            expected = "AIGCExchangeTimelockExpired"
        elif preimage != model.preimage:
            expected = "AIGCExchangeWrongPreimage"
        elif model.kind is LockKind.PURCHASE and token is not None and token.revoked:
            expected = "AIGCExchangeTokenRevoked"
        elif model.kind is LockKind.PURCHASE and token is not None and token.owner != model.receiver:
            expected = "AIGCExchangeSellerNotOwner"
        elif model.kind is LockKind.PURCHASE and token is not None and not token.approved:
            expected = "AIGCExchangeNotApproved"
        else:
            expected = None
            deltas = {self.exchange.address: -model.amount}
            if model.kind is LockKind.GENERATION or token is None:
                deltas[model.receiver] = model.amount
            else:
                royalty = 0 if token.producer == model.receiver else model.amount * self.p.royalty_bps // 10_000
                deltas[model.receiver] = model.amount - royalty
                deltas[token.producer] = deltas.get(token.producer, 0) + royalty
        result = self._attempt(
            "withdraw", who, expected, lambda: self.exchange.withdraw(who, lock_id, preimage), deltas, settles=model
        )
        if result is not None:
            assert model is not None
            self._settle(model, LockState.WITHDRAWN)
            if model.kind is LockKind.PURCHASE and token is not None:
                token.owner, token.approved = model.sender, False

    @rule(lock=indices, caller=st.sampled_from(ROLE_MODES), other=indices)
    def refund(self, lock: int, caller: str, other: int) -> None:
        model = self._pick_lock(lock)
        lock_id = model.lock_id if model else hashlib.sha256(b"never locked %d" % lock).digest()
        who = self._party(caller, model.sender if model else "", other)
        now = self._next_block_time()
        deltas: dict[str, int] = {}
        if model is None:
            expected: str | None = "AIGCExchangeUnknownLock"
        elif model.state is not LockState.LOCKED:
            expected = "AIGCExchangeLockSettled"
        elif who.address != model.sender:
            expected = "AIGCExchangeNotSender"
        elif now < model.timelock:
            expected = "AIGCExchangeTimelockNotExpired"
        else:
            expected = None
            deltas = {self.exchange.address: -model.amount, model.sender: model.amount}
        result = self._attempt("refund", who, expected, lambda: self.exchange.refund(who, lock_id), deltas, settles=model)
        if result is not None:
            assert model is not None
            self._settle(model, LockState.REFUNDED)

    def _settle(self, model: LockModel, state: LockState) -> None:
        model.state = state
        model.paid_out += model.amount
        if model is not self.standing:
            self.paid_out += model.amount

    @rule(seconds=st.sampled_from((1, 2, 59, 60, 61, 300, 3600)))
    def advance_time(self, seconds: int) -> None:
        self.pending_ts = max(self.pending_ts, self.chain.now() + 1) + seconds - 1

    @rule(lock=indices, offset=st.sampled_from((-1, 0, 1)))
    def jump_to_timelock(self, lock: int, offset: int) -> None:
        """Move the next block to a lock's timelock - 1, timelock or timelock + 1 (if not past)."""
        model = self._pick_lock(lock)
        if model is None or model is self.standing:
            return
        target = model.timelock + offset
        if target >= max(self.pending_ts, self.chain.now() + 1):
            self.pending_ts = target

    # -- ledger --------------------------------------------------------------------------------

    @rule(lock=indices, caller=st.sampled_from(ROLE_MODES), other=indices, positive=st.booleans(),
          score=st.integers(0, 2**16 - 1))
    def rate(self, lock: int, caller: str, other: int, positive: bool, score: int) -> None:
        model = self._pick_lock(lock)
        lock_id = model.lock_id if model else hashlib.sha256(b"never locked %d" % lock).digest()
        who = self._party(caller, model.sender if model else "", other)
        if model is None or model.kind is not LockKind.GENERATION:
            expected: str | None = "ReputationLedgerNotGenerationLock"
        elif who.address != model.sender:
            expected = "ReputationLedgerNotSender"
        elif model.state is LockState.LOCKED:
            expected = "ReputationLedgerLockNotSettled"
        elif positive and model.state is LockState.REFUNDED:
            expected = "ReputationLedgerPositiveRatingOfRefund"
        elif model.rated:
            expected = "ReputationLedgerAlreadyRated"
        else:
            expected = None
        self._next_block_time()
        result = self._attempt("rate", who, expected, lambda: self.ledger.rate(who, lock_id, positive, score))
        if result is not None:
            assert model is not None
            if model.state is LockState.LOCKED or model.kind is not LockKind.GENERATION:
                self._fail("a rating exists only for a settled generation lock", f"lock 0x{lock_id.hex()} rated")
            model.rated = True
            counts = self.ratings.setdefault((model.sender, model.receiver), [0, 0])
            counts[0 if positive else 1] += 1

    def _challengeable(self) -> list[tuple[int, int]]:
        """(original index, duplicate index) argument pairs of `challenge` that reach a well-formed
        challenge: the original live, the duplicate live and owned by someone else."""
        n = len(self.tokens)
        pairs = []
        for original in range(min(n, 14)):
            orig = self.tokens.get(1 + original)
            for duplicate in range(16):
                if original + 1 + duplicate >= 14:
                    break
                dup_id = self._pick_token(original + 1 + duplicate)
                dup = self.tokens.get(dup_id)
                if (orig is not None and dup is not None and dup_id != 1 + original and orig.owner is not None
                        and dup.owner is not None and not dup.revoked and dup.owner != orig.owner):
                    pairs.append((original, duplicate))
        return pairs

    @precondition(lambda self: bool(self._challengeable()))
    @rule(pick=indices)
    def challenge_another_owners_product(self, pick: int) -> None:
        """A well-formed challenge (upheld or rejected), so that both verdicts are exercised in every run."""
        pairs = self._challengeable()
        original, duplicate = pairs[pick % len(pairs)]
        self.challenge(0, original, duplicate, True, True)

    def _rateable(self) -> list[int]:
        """Indices (into self.locks, reachable by `rate`) of settled generation locks nobody rated yet."""
        return [i for i, m in enumerate(self.locks[:14])
                if m.kind is LockKind.GENERATION and m.state is not LockState.LOCKED and not m.rated]

    @precondition(lambda self: bool(self._rateable()))
    @rule(pick=indices, score=st.integers(0, 2**16 - 1))
    def rate_a_settled_lock(self, pick: int, score: int) -> None:
        """A valid rating by the lock's sender (positive unless refunded), so that the success path
        of `rate` is exercised in every run, not only when the random arguments happen to fit."""
        rateable = self._rateable()
        index = rateable[pick % len(rateable)]
        self.rate(index, "role", 0, self.locks[index].state is LockState.WITHDRAWN, score)

    # -- invariants ----------------------------------------------------------------------------

    def _open_sum(self) -> int:
        return sum(m.amount for m in [*self.locks, self.standing] if m.state is LockState.LOCKED)

    @invariant()
    def exchange_balance_equals_open_locks(self) -> None:
        held, open_sum = self.exchange.balance(), self._open_sum()
        if held != open_sum:
            self._fail("exchange balance == sum of open locks", f"exchange holds {held} wei, open locks {open_sum}")

    @invariant()
    def paid_out_never_exceeds_deposited(self) -> None:
        if self.paid_out > self.deposited:
            self._fail("total paid out <= total deposited", f"paid {self.paid_out} of {self.deposited} wei")
        for model in [*self.locks, self.standing]:
            if model.paid_out > model.amount:
                self._fail("lock settles at most once", f"lock 0x{model.lock_id.hex()} paid {model.paid_out} wei")

    @invariant()
    def registry_holds_live_bonds(self) -> None:
        live = sum(1 for t in self.tokens.values() if not t.revoked)
        held = self.registry.balance()
        if held != live * self.p.registration_bond:
            self._fail("each live token has one owner", f"registry holds {held} wei for {live} live tokens")

    def teardown(self) -> None:
        try:
            self._sweep()
        finally:
            self.chain.revert(self.snapshot)

    def _sweep(self) -> None:
        """Every lock, token and rating on chain against the model (once per example)."""
        if self.registry.total_registered() != len(self.tokens):
            self._fail("model agreement", "totalRegistered differs from the model")
        for token_id, model in self.tokens.items():
            if self.registry.is_revoked(token_id) != model.revoked:
                self._fail("a revoked token never changes hands", f"token {token_id} revocation differs")
            try:
                owner: str | None = self.registry.owner_of(token_id)
            except ContractRevert:
                owner = None
            if owner != model.owner:
                self._fail("each live token has exactly one owner", f"token {token_id}: {owner} != {model.owner}")
        for model in [*self.locks, self.standing]:
            info = self.exchange.get_lock(model.lock_id)
            if (info.state, info.amount, info.sender, info.receiver) != (
                model.state, model.amount, model.sender, model.receiver
            ):
                settled = (LockState.WITHDRAWN, LockState.REFUNDED)
                if model.state in settled and info.state in settled:
                    self._fail("lock settles at most once",
                               f"lock 0x{model.lock_id.hex()} settled twice (model {model.state.name}, chain "
                               f"{info.state.name}): double payout of {model.amount} wei")
                self._fail("lock settles at most once", f"lock 0x{model.lock_id.hex()}: chain {info} vs model")
            if self.ledger.is_rated(model.lock_id) != model.rated:
                self._fail("a rating exists only for a settled generation lock", f"lock 0x{model.lock_id.hex()}")
        for (producer, esp), (positives, negatives) in self.ratings.items():
            stats = self.ledger.stats(producer, esp)
            if (stats.positives, stats.negatives) != (positives, negatives):
                self._fail("a rating exists only for a settled generation lock", f"stats of {producer}/{esp}")
