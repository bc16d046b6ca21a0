"""The people of the market, each a chain account with its own key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from eth_account.signers.local import LocalAccount

EspProfile = Literal["honest", "slow", "delaying", "cheating"]
ESP_PROFILES: tuple[EspProfile, ...] = ("honest", "slow", "delaying", "cheating")


@dataclass(frozen=True)
class Esp:
    """An edge service provider running server `index` of the offloading core.

    honest: serves at full speed and reveals the key; slow: its server runs at a quarter of the
    speed; delaying: reveals the key, but only after the task's deadline; cheating: takes the fee
    path but never reveals the key (the producer refunds after the timelock).
    """

    index: int
    account: LocalAccount
    profile: EspProfile = "honest"

    @property
    def address(self) -> str:
        return str(self.account.address)


@dataclass(frozen=True)
class Producer:
    """Commissions content from ESPs; device `index` of the offloading core."""

    index: int
    account: LocalAccount

    @property
    def address(self) -> str:
        return str(self.account.address)


@dataclass(frozen=True)
class Consumer:
    """Buys products from their owners."""

    index: int
    account: LocalAccount

    @property
    def address(self) -> str:
        return str(self.account.address)


@dataclass(frozen=True)
class Attacker:
    """Registers near-duplicates of others' products, signed by an accomplice ESP key."""

    index: int
    account: LocalAccount
    accomplice: LocalAccount

    @property
    def address(self) -> str:
        return str(self.account.address)
