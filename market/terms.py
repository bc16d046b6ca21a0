"""Market terms in one place: the contracts' constructor parameters and what the actors ask and wait.

Every fee, bond, stake, duration and window of protocol v2 (`docs/protocol.md`) has its default
here; the deployment, the simulation, the demo, the API and the tests read them from these classes.
Amounts are in wei, times in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

ETHER = 10**18
"""Wei per ether."""


@dataclass(frozen=True)
class MarketParams:
    """Constructor parameters of a market deployment, fixed for its life (immutables on chain)."""

    registration_bond: int = 10**15
    """Ether locked with every registered product (0.001 ETH); its owner reclaims it once final."""
    challenge_deposit: int = 2 * 10**15
    """Smallest deposit a challenger puts at stake (0.002 ETH)."""
    similarity_threshold: int = 10
    """Largest Hamming distance of 64-bit pHashes at which two products are duplicates."""
    royalty_bps: int = 500
    """Producer's royalty on every resale through the exchange (5%)."""
    challenge_window: int = 1800
    """Seconds after registration during which a product can be challenged; then it is final."""
    min_timelock: int = 60
    """Shortest HTLC duration: a timelock must lie at least this far after the block time."""
    max_timelock: int = 7 * 24 * 3600
    """Longest HTLC duration (a week)."""
    fee_floor: int = 10**14
    """Smallest generation fee an ESP's offer may ask (0.0001 ETH): the least a rating costs."""
    min_stake: int = 10**17
    """Smallest stake with which an ESP registers (0.1 ETH)."""
    unbonding_delay: int = 7 * 24 * 3600 + 1800
    """Seconds from an ESP's exit announcement to its stake's withdrawal: max_timelock + challenge_window,
    so that every job it accepted is settled and every product of it final before the stake can leave."""

    def __post_init__(self) -> None:
        if not 0 <= self.similarity_threshold <= 64:
            raise ValueError(f"similarity_threshold must lie in [0, 64], got {self.similarity_threshold}")
        if not 0 <= self.royalty_bps <= 10_000:
            raise ValueError(f"royalty_bps must lie in [0, 10000], got {self.royalty_bps}")
        if self.challenge_window <= 0 or self.min_timelock <= 0:
            raise ValueError("challenge_window and min_timelock must be positive")
        if self.max_timelock < self.min_timelock:
            raise ValueError(f"max_timelock ({self.max_timelock}) is below min_timelock ({self.min_timelock})")
        if self.fee_floor <= 0 or self.min_stake <= 0:
            raise ValueError("fee_floor and min_stake must be positive")
        if self.unbonding_delay < self.max_timelock + self.challenge_window:
            raise ValueError("unbonding_delay must be at least max_timelock + challenge_window")


@dataclass(frozen=True)
class MarketTerms:
    """What the market's actors ask and wait for, within the deployment's `MarketParams`."""

    generation_fee: int = ETHER // 100
    """Fee a producer locks for one generation."""
    sale_price: int = ETHER // 20
    """Price a consumer pays for a product."""
    lock_duration_s: int = 600
    """Timelock of every HTLC, counted from the offer or the purchase."""
    offer_ttl_s: int = 300
    """How long an ESP's offer can be locked after it was made."""
    esp_stake: int = 10**17
    """Stake each ESP of the simulation puts up (the deployment's minimum by default)."""
    score_scale: int = 100
    """On-chain score = round(content quality x score_scale)."""

    def __post_init__(self) -> None:
        for name in ("generation_fee", "sale_price", "lock_duration_s", "offer_ttl_s", "esp_stake", "score_scale"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    def check_against(self, params: MarketParams) -> None:
        """Raise ValueError if these terms would be refused by a deployment with `params`."""
        if self.generation_fee < params.fee_floor:
            raise ValueError(f"generation_fee {self.generation_fee} is below the fee floor {params.fee_floor}")
        if not params.min_timelock <= self.lock_duration_s <= params.max_timelock:
            raise ValueError(f"lock_duration_s must lie in [{params.min_timelock}, {params.max_timelock}]")
        if self.esp_stake < params.min_stake:
            raise ValueError(f"esp_stake {self.esp_stake} is below the minimum stake {params.min_stake}")
