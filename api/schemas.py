"""Request and response models: what crosses HTTP. No model carries a private key; only
`AccountCreated` carries an API key, once."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

UINT256_MAX = 2**256 - 1
DB_ID_MAX = 2**63 - 1

Address = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$")]
Wei = Annotated[int, Field(gt=0, le=UINT256_MAX, description="Amount in wei.")]
TokenId = Annotated[int, Field(ge=1, le=DB_ID_MAX)]
RowId = Annotated[int, Field(ge=1, le=DB_ID_MAX)]
EspProfile = Literal["honest", "cheating"]


class Strict(BaseModel):
    """Request bodies: unknown fields are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Error(BaseModel):
    code: str
    detail: str


class AccountCreated(BaseModel):
    address: str
    api_key: str = Field(description="Shown once: only its keyed hash is stored.")
    balance_wei: int


class AccountOut(BaseModel):
    address: str
    balance_wei: int
    created_at: datetime


class EspCreate(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    profile: EspProfile = Field("honest", description="honest: reveals the key; cheating: never reveals (demo of refunds).")


class EspUpdate(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    profile: EspProfile | None = None


class EspOut(BaseModel):
    address: str
    name: str
    profile: str
    index: int = Field(description="Column of this ESP in the MWSL reputation matrix.")
    positives: int
    negatives: int


class ReputationOut(BaseModel):
    address: str
    reputation: float = Field(description="MWSL expectation T = b + a*u, averaged over producers (or for ?producer=).")
    belief: float
    disbelief: float
    uncertainty: float
    positives: int
    negatives: int
    producers: int
    at: int = Field(description="Chain time (latest block) at which it was computed.")


class TaskCreate(Strict):
    prompt: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    esp: Address | None = Field(None, description="Ask this ESP; default: chosen by MWSL reputation.")
    fee_wei: Wei | None = Field(None, description="Generation fee; default: the server's.")


class CostOut(BaseModel):
    latency_s: float
    energy_j: float
    completed: bool
    quality: float
    breakdown: dict[str, float]


class TaskOut(BaseModel):
    id: int
    producer: str
    esp: str
    prompt: str
    state: str
    selected_by: str
    lock_id: str | None = Field(description="None while the lock is not on chain yet (state pending or abandoned).")
    fee_wei: int
    timelock: int
    ciphertext_sha256: str
    content_sha256: str | None
    rated: bool
    token_id: int | None
    cost: CostOut


class RatingCreate(Strict):
    positive: bool
    score: Annotated[int, Field(ge=0, le=65535)] = 0


class ProductCreate(Strict):
    task_id: RowId
    uri: Annotated[str, StringConstraints(max_length=500)] | None = None


class ProductOut(BaseModel):
    token_id: int
    producer: str
    esp: str
    owner: str | None
    content_hash: str
    perceptual_hash: str
    revoked: bool
    block_number: int
    task_id: int | None
    content_url: str | None


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class ChallengeCreate(Strict):
    duplicate_id: TokenId


class ChallengeOut(BaseModel):
    original_id: int
    duplicate_id: int
    challenger: str
    upheld: bool
    distance: int
    block_number: int


class TradeCreate(Strict):
    token_id: TokenId
    price_wei: Wei


class TradeOut(BaseModel):
    id: int
    token_id: int
    lock_id: str | None = Field(description="None while the lock is not on chain yet (state pending or abandoned).")
    buyer: str
    seller: str
    price_wei: int
    timelock: int
    state: str


class SimulationCreate(Strict):
    producers: Annotated[int, Field(ge=1, le=10)] = 3
    esps: Annotated[int, Field(ge=1, le=10)] = 3
    consumers: Annotated[int, Field(ge=0, le=10)] = 3
    attackers: Annotated[int, Field(ge=0, le=5)] = 1
    periods: Annotated[int, Field(ge=1, le=1000)] = 10
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    selection: Literal["softmax", "argmax", "random", "familiar", "round-robin"] = "softmax"
    caching: Literal["lc", "lfu", "lru", "fifo", "random", "cloud"] = "lfu"
    esp_profiles: Annotated[list[Literal["honest", "slow", "delaying", "cheating"]], Field(min_length=1, max_length=10)] = [
        "honest", "honest", "cheating"]
    random_periods: Annotated[int, Field(ge=0, le=1000)] = 10


class SimulationOut(BaseModel):
    id: str
    status: str
    periods: int
    periods_done: int
    config: dict[str, Any]
    summary: dict[str, Any] | None
    error: str | None


class Health(BaseModel):
    status: str
    chain_id: int
    block: int
    backend: str
    node_alive: bool
    contracts: dict[str, str]
    indexed_block: int
    database: str
