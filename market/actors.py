"""The people of the market, each a chain account with its own key."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from eth_account.signers.local import LocalAccount


class EspProfile(StrEnum):
    """How an ESP behaves (see `Esp`)."""

    HONEST = "honest"
    SLOW = "slow"
    DELAYING = "delaying"
    CHEATING = "cheating"


@dataclass(frozen=True)
class Party:
    """A market participant: its position among its peers and its chain account."""

    index: int
    account: LocalAccount

    @property
    def address(self) -> str:
        return str(self.account.address)


@dataclass(frozen=True)
class Esp(Party):
    """An edge service provider running server `index` of the offloading core.

    honest: serves at full speed and reveals the key; slow: its server runs at a quarter of the
    speed; delaying: reveals the key, but only after the task's deadline; cheating: takes the fee
    path but never reveals the key (the producer refunds after the timelock).
    """

    profile: EspProfile = EspProfile.HONEST


@dataclass(frozen=True)
class Producer(Party):
    """Commissions content from ESPs; device `index` of the offloading core."""


@dataclass(frozen=True)
class Consumer(Party):
    """Buys products from their owners."""


@dataclass(frozen=True)
class Attacker(Party):
    """Registers near-duplicates of others' products, signed by an accomplice ESP key."""

    accomplice: LocalAccount
