"""Money and ownership invariants checked after every scenario, simulation and demo."""

from __future__ import annotations

from dataclasses import dataclass

from market.chain.connection import Chain
from market.chain.contracts import LockState
from market.chain.deploy import Market
from market.chain.errors import ContractRevert


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
    return BalanceSnapshot({a: chain.balance(a) for a in addresses}, chain.fees_paid_wei)


def ether_conserved(chain: Chain, before: BalanceSnapshot) -> tuple[bool, int]:
    """Whether the tracked addresses hold what they held before, less the gas fees paid since.

    Returns the verdict and the discrepancy in wei (0 when conserved). Accounts created after
    `before` (and contracts deployed since) started empty, so they count with balance 0 before.
    """
    addresses = set(before.balances) | {a.address for a in chain.accounts} | set(chain.deployed)
    after = sum(chain.balance(a) for a in addresses)
    fees = chain.fees_paid_wei - before.fees_paid_wei
    discrepancy = after + fees - before.total
    return discrepancy == 0, discrepancy


def open_lock_total(market: Market, from_block: int = 0) -> int:
    """Sum of the amounts of all locks still in state Locked."""
    exchange = market.exchange
    return sum(
        info.amount
        for info in (exchange.get_lock(lock_id) for lock_id in exchange.lock_ids(from_block))
        if info.state is LockState.LOCKED
    )


def exchange_solvent(market: Market) -> tuple[bool, int, int]:
    """Whether the exchange's balance equals the sum of its open locks: (verdict, balance, sum)."""
    balance = market.exchange.balance()
    locked = open_lock_total(market, market.deployment.block)
    return balance == locked, balance, locked


def registry_bonds_backed(market: Market) -> tuple[bool, int, int]:
    """Whether the registry holds exactly one bond per live (unrevoked) product."""
    registry = market.registry
    live = sum(1 for token_id in range(1, registry.total_registered() + 1) if not registry.is_revoked(token_id))
    expected = live * registry.registration_bond()
    return registry.balance() == expected, registry.balance(), expected


def live_products_owned(market: Market) -> bool:
    """Every live product has exactly one owner (a nonzero address) and every revoked one none."""
    registry = market.registry
    for token_id in range(1, registry.total_registered() + 1):
        revoked = registry.is_revoked(token_id)
        try:
            holder: str | None = registry.owner_of(token_id)
        except ContractRevert:  # ERC721NonexistentToken: burned
            holder = None
        if revoked == (holder is not None):
            return False
    return True


@dataclass(frozen=True)
class InvariantResult:
    holds: bool
    detail: str


def check_market(market: Market, before: BalanceSnapshot) -> dict[str, InvariantResult]:
    """Every money and ownership invariant of `market`, with ether counted from `before`."""
    conserved, discrepancy = ether_conserved(market.chain, before)
    solvent, held, locked = exchange_solvent(market)
    backed, bonds_held, bonds_expected = registry_bonds_backed(market)
    return {
        "ether_conserved": InvariantResult(conserved, f"off by {discrepancy} wei (gas included)"),
        "exchange_balance_equals_open_locks": InvariantResult(
            solvent, f"exchange holds {held} wei, open locks sum to {locked} wei"
        ),
        "registry_balance_equals_live_bonds": InvariantResult(
            backed, f"registry holds {bonds_held} wei, live bonds sum to {bonds_expected} wei"
        ),
        "live_products_have_one_owner": InvariantResult(
            live_products_owned(market), "each live product has one owner, each revoked one none"
        ),
    }
