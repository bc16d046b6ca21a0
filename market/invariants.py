"""Money and ownership invariants checked after every scenario, simulation and demo."""

from __future__ import annotations

from dataclasses import dataclass

from market.chain.connection import Chain
from market.chain.contracts import Exchange, LockState, Registry
from market.chain.deploy import Market


@dataclass(frozen=True)
class BalanceSnapshot:
    """Balances of a fixed set of addresses, with the gas fees the chain had charged so far."""

    balances: dict[str, int]
    fees_paid_wei: int

    @property
    def total(self) -> int:
        return sum(self.balances.values())


def tracked_addresses(market: Market) -> list[str]:
    """Every account the chain created (the funder included) and the three contracts."""
    accounts = [account.address for account in market.chain.accounts]
    return sorted(set(accounts + market.contract_addresses()))


def snapshot_balances(chain: Chain, addresses: list[str]) -> BalanceSnapshot:
    return BalanceSnapshot(dict(zip(addresses, chain.balances(addresses), strict=True)), chain.fees_paid_wei)


def ether_conserved(chain: Chain, before: BalanceSnapshot) -> tuple[bool, int]:
    """Whether the tracked addresses hold what they held before, less the gas fees paid since.

    Returns the verdict and the discrepancy in wei (0 when conserved). Accounts created after
    `before` (and contracts deployed since) started empty, so they count with balance 0 before.
    """
    addresses = set(before.balances) | {a.address for a in chain.accounts} | set(chain.deployed)
    after = sum(chain.balances(sorted(addresses)))
    fees = chain.fees_paid_wei - before.fees_paid_wei
    discrepancy = after + fees - before.total
    return discrepancy == 0, discrepancy


def open_lock_total(market: Market, from_block: int = 0) -> int:
    """Sum of the amounts (fees and prices) of all locks still in state Locked."""
    exchange = market.exchange
    amounts = exchange.generation_lock_ids(from_block) + [(i, t.price) for i, t in exchange.purchases(from_block)]
    locks = exchange.get_locks([lock_id for lock_id, _ in amounts])
    return sum(amount for (_, amount), lock in zip(amounts, locks, strict=True) if lock.state is LockState.LOCKED)


def _credited(contract: Registry | Exchange, from_block: int) -> int:
    """Sum of the credits not yet withdrawn, over every account the contract ever credited."""
    accounts = sorted({str(e.args["account"]) for e in contract.chain.events(contract.contract, "Credited", from_block)})
    return sum(contract.credits_of(accounts))


def staked_total(market: Market, from_block: int = 0) -> int:
    """Sum of the stakes of every ESP ever registered (withdrawn ones hold 0; slashed ones what is left)."""
    exchange = market.exchange
    esps = sorted({str(e.args["esp"]) for e in exchange.chain.events(exchange.contract, "EspRegistered", from_block)})
    return sum(info.stake for info in exchange.esp_infos(esps))


def exchange_solvent(market: Market) -> tuple[bool, int, int]:
    """Whether the exchange holds exactly its open locks, unclaimed credits, stakes and forfeited stakes:
    (verdict, balance, sum)."""
    block = market.deployment.block
    balance = market.exchange.balance()
    owed = (
        open_lock_total(market, block)
        + _credited(market.exchange, block)
        + staked_total(market, block)
        + market.exchange.total_forfeited()
    )
    return balance == owed, balance, owed


def registry_bonds_backed(market: Market) -> tuple[bool, int, int]:
    """Whether the registry holds exactly the bonds of live, unreleased products plus its unclaimed credits."""
    registry = market.registry
    records = registry.products(range(1, registry.total_registered() + 1))
    held = sum(not (record.revoked or record.bond_released) for record in records)
    expected = held * registry.registration_bond() + _credited(registry, market.deployment.block)
    return registry.balance() == expected, registry.balance(), expected


def nothing_sold_before_final(market: Market) -> tuple[bool, int]:
    """Whether every purchase lock was opened on a final product; returns the verdict and the offenders."""
    registry, exchange = market.registry, market.exchange
    window = registry.challenge_window()
    purchases = exchange.purchases(market.deployment.block)
    locks = exchange.get_locks([lock_id for lock_id, _ in purchases])
    records = registry.products([terms.token_id for _, terms in purchases])
    early = sum(1 for lock, record in zip(locks, records, strict=True) if lock.locked_at < record.registered_at + window)
    return early == 0, early


def live_products_owned(market: Market) -> bool:
    """Every live product has exactly one owner (a nonzero address) and every revoked one none."""
    registry = market.registry
    tokens = range(1, registry.total_registered() + 1)
    holders = registry.owners_of(tokens)  # None: ERC721NonexistentToken, burned
    return all(revoked != (holder is not None) for revoked, holder in zip(registry.are_revoked(tokens), holders, strict=True))


@dataclass(frozen=True)
class InvariantResult:
    holds: bool
    detail: str


def check_market(market: Market, before: BalanceSnapshot) -> dict[str, InvariantResult]:
    """Every money and ownership invariant of `market`, with ether counted from `before`."""
    conserved, discrepancy = ether_conserved(market.chain, before)
    solvent, held, locked = exchange_solvent(market)
    backed, bonds_held, bonds_expected = registry_bonds_backed(market)
    final_only, early = nothing_sold_before_final(market)
    return {
        "ether_conserved": InvariantResult(conserved, f"off by {discrepancy} wei (gas included)"),
        "exchange_holds_open_locks_credits_and_stakes": InvariantResult(
            solvent, f"exchange holds {held} wei, open locks + credits + stakes sum to {locked} wei"
        ),
        "registry_holds_bonds_and_credits": InvariantResult(
            backed, f"registry holds {bonds_held} wei, unreleased bonds + credits sum to {bonds_expected} wei"
        ),
        "nothing_sold_before_final": InvariantResult(final_only, f"{early} purchase locks on products not yet final"),
        "live_products_have_one_owner": InvariantResult(
            live_products_owned(market), "each live product has one owner, each revoked one none"
        ),
    }
