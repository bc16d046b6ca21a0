"""The names of the states the API keeps and shows, once: the models store their values, the schemas
show them, the indexer and the routes move rows between them. Each value is the string the API has
always stored and sent (a StrEnum member equals its value)."""

from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    """Where a generation task stands (docs/api.md#tasks): requested -> offered -> pending -> locked -> delivered ->
    registered, or refunded; an intent whose lock can never follow is abandoned."""

    REQUESTED = "requested"
    """Waiting for its ESP node's offer (an ESP that runs its own node: `aigc-market esp run`)."""
    OFFERED = "offered"
    """The ESP's signed offer and the ciphertext are in: the producer may lock the fee."""
    PENDING = "pending"
    """Intent committed, lock not seen on chain yet."""
    LOCKED = "locked"
    """Fee locked; the ESP has not revealed the key."""
    DELIVERED = "delivered"
    """Key revealed on chain (the ESP withdrew the fee): the producer can open the content."""
    REGISTERED = "registered"
    """The content is registered as a product (Proof-of-AIGC)."""
    REFUNDED = "refunded"
    """The producer took the fee back after the timelock."""
    ABANDONED = "abandoned"
    """The intent's timelock passed with no lock: none can follow."""


class TradeState(StrEnum):
    """Where a purchase HTLC stands."""

    PREPARED = "prepared"
    """Terms drawn for a self-custodied buyer, waiting for its signed lock (no lock exists)."""
    PENDING = "pending"
    LOCKED = "locked"
    CLAIMED = "claimed"
    """The seller revealed the secret: the token moved, price and royalty were credited."""
    REFUNDED = "refunded"
    ABANDONED = "abandoned"


#: The states of a lock that is not (or never will be) on chain, for tasks and trades alike.
INTENT_STATES = (TaskState.PENDING.value, TaskState.ABANDONED.value)


class EspStakeState(StrEnum):
    """An ESP's stake on the exchange, kept from the exchange's ESP events."""

    ACTIVE = "active"
    """Staked: may take jobs."""
    EXITING = "exiting"
    """Announced its exit."""
    WITHDRAWN = "withdrawn"
    """Took its stake back."""
    SLASHED = "slashed"


class Custody(StrEnum):
    """Who holds an account's key."""

    SERVER = "server"
    """The server, sealed under its secret (an API-key account, `POST /accounts`): it signs for the account."""
    SELF = "self"
    """The account's owner (Sign-In with Ethereum): the server prepares transactions, the owner signs them."""


class EspOperator(StrEnum):
    """Who runs an ESP's jobs."""

    NODE = "node"
    """Its own node process (`aigc-market esp run`), with its own key: the server only coordinates."""
    SERVER = "server"
    """The server, with a simulated profile, for an ESP account whose key it holds (kept for the old API flow)."""


class SelectedBy(StrEnum):
    """Who chose a task's ESP."""

    MWSL = "mwsl"
    """The server, by MWSL reputation."""
    REQUEST = "request"
    """The producer, in its request."""


class SimulationStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    """The server stopped before the end."""


class Funding(StrEnum):
    """Why a new account has the balance it has."""

    FUNDED = "funded"
    """The faucet gave it `Settings.faucet_wei`."""
    OFF = "off"
    """The faucet is off: the account starts empty (the operator funds accounts out of band)."""
    CLIENT_BUDGET_SPENT = "client_budget_spent"
    """This client address has had its faucet budget: the account starts empty."""
    BUDGET_SPENT = "budget_spent"
    """The faucet's whole budget is spent: the account starts empty."""
