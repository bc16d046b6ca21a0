"""Request and response models: what crosses HTTP. No model carries a private key; only
`AccountCreated` carries an API key, once.

States and profiles are the StrEnums of `api.states` and `market.actors` (they serialise to the
strings the API has always sent); the body of POST /simulations is derived from
`market.simulation.SimulationConfig` (`simulation_create_model`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model

from api.states import EspStakeState, SelectedBy, SimulationStatus, TaskState, TradeState
from market.actors import EspProfile
from market.fields import FieldSpec, field_specs
from market.simulation import SimulationConfig

UINT256_MAX = 2**256 - 1
DB_ID_MAX = 2**63 - 1

Address = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$")]
Wei = Annotated[int, Field(gt=0, le=UINT256_MAX, description="Amount in wei.")]
TokenId = Annotated[int, Field(ge=1, le=DB_ID_MAX)]
RowId = Annotated[int, Field(ge=1, le=DB_ID_MAX)]
ServedProfile = Literal[EspProfile.HONEST, EspProfile.CHEATING]
"""The profiles an ESP served by the API may have."""


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
    profile: ServedProfile = Field(
        EspProfile.HONEST, description="honest: reveals the key; cheating: never reveals (demo of refunds)."
    )


class EspUpdate(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    profile: ServedProfile | None = None


class EspOut(BaseModel):
    address: str
    name: str
    profile: EspProfile
    index: int = Field(description="Column of this ESP in the MWSL reputation matrix.")
    positives: int
    negatives: int
    stake_state: EspStakeState = Field(description="active (staked, takes jobs), exiting, withdrawn or slashed (from the chain).")


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
    fee_wei: Wei | None = Field(
        None, description="Generation fee (at least the exchange's fee floor); default: the server's market terms."
    )


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
    state: TaskState
    selected_by: SelectedBy
    lock_id: str | None = Field(
        description="The generation lock's id, the EIP-712 digest of the ESP's offer: known "
        "before the lock is sent (state pending: not seen on chain yet; abandoned: never will be)."
    )
    fee_wei: int
    timelock: int
    ciphertext_sha256: str
    content_sha256: str | None
    rated: bool
    token_id: int | None
    cost: CostOut
    offer: dict[str, Any] | None = Field(
        None,
        description="The ESP's offer that the lock paid (fields of the Solidity struct Offer; wei and nonce as decimal strings).",
    )
    opening: dict[str, Any] | None = Field(
        None, description="The content the offer committed to (content hash, pHash, prompt hash, salt), opened at registration."
    )


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
    lock_id: str | None = Field(None, description="The paid generation lock it was registered from.")
    generation_seq: int | None = Field(
        None, description="That lock's priority: of two products with one content, the smaller wins."
    )
    bond_released: bool = Field(False, description="Whether the owner claimed the registration bond (final products only).")


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
    lock_id: str | None = Field(
        description="The purchase lock's id, the EIP-712 digest of its terms: known before the "
        "lock is sent (state pending: not seen on chain yet; abandoned: never will be)."
    )
    buyer: str
    seller: str
    price_wei: int
    timelock: int
    state: TradeState


class CreditsOut(BaseModel):
    address: str
    registry_wei: int = Field(description="Credited by the registry: released bonds, challenge payouts, displacements.")
    exchange_wei: int = Field(description="Credited by the exchange: sale proceeds, royalties, slashed stakes.")
    total_wei: int


class CreditWithdrawal(BaseModel):
    address: str
    withdrawn_wei: int = Field(description="Wei paid out to the account by the registry and the exchange together.")
    balance_wei: int


#: The fields of `SimulationConfig` that POST /simulations takes, with the server's caps on each (the
#: config's own bounds, defaults and docstrings apply as well). `periods` defaults lower than the
#: command's: a server run is capped by `Settings.max_simulation_periods` (50 by default).
SIMULATION_API_FIELDS: dict[str, dict[str, Any]] = {
    "producers": {"le": 10},
    "esps": {"le": 10},
    "consumers": {"le": 10},
    "attackers": {"le": 5},
    "periods": {"le": 1000, "default": 10},
    "seed": {"ge": 0, "le": 2**31 - 1},
    "selection": {},
    "caching": {},
    "esp_profiles": {"min_length": 1, "max_length": 10},
    "random_periods": {"le": 1000},
}


def simulation_field(spec: FieldSpec, caps: dict[str, Any]) -> tuple[Any, Any]:
    """(annotation, FieldInfo) of one config field in a request body: its type, default and docstring,
    its bounds (tightened by `caps`)."""
    annotation: Any = Literal[spec.choices] if spec.choices is not None else spec.type
    constraints: dict[str, Any] = {
        name: value for name, value in (("ge", spec.ge), ("gt", spec.gt), ("le", spec.le)) if value is not None
    }
    constraints |= {name: value for name, value in caps.items() if name != "default"}
    return annotation, Field(caps.get("default", spec.default), description=spec.doc, **constraints)


def simulation_create_model() -> type[BaseModel]:
    """The body of POST /simulations, derived from `SimulationConfig` (see `SIMULATION_API_FIELDS`)."""
    specs = {spec.name: spec for spec in field_specs(SimulationConfig)}
    fields: dict[str, Any] = {name: simulation_field(specs[name], caps) for name, caps in SIMULATION_API_FIELDS.items()}
    model: type[BaseModel] = create_model(
        "SimulationCreate",
        __base__=Strict,
        __module__=__name__,
        __doc__="A simulation run: fields of `SimulationConfig`.",
        **fields,
    )
    return model


if TYPE_CHECKING:  # the type checker sees a plain request body; its fields are SimulationConfig's

    class SimulationCreate(Strict):
        pass
else:
    SimulationCreate = simulation_create_model()


class SimulationOut(BaseModel):
    id: str
    status: SimulationStatus
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
