"""Request and response models: what crosses HTTP. No model carries a private key; only
`AccountCreated` carries an API key, once.

States and profiles are the StrEnums of `api.states` and `market.actors` (they serialise to the
strings the API has always sent); the body of POST /simulations is derived from
`market.simulation.SimulationConfig` (`simulation_create_model`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model, field_validator, model_validator
from pydantic_core import PydanticCustomError

from api.states import EspStakeState, Funding, SelectedBy, SimulationStatus, TaskState, TradeState
from market.actors import EspProfile
from market.fields import FieldSpec, field_specs
from market.flows import RULE_SCHEDULERS
from market.simulation import SimulationConfig

UINT256_MAX = 2**256 - 1
DB_ID_MAX = 2**53 - 1
"""The largest id a request may name: the largest integer a JSON number carries exactly in every client (a double)."""

Address = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$")]
WEI_MAX = 2**128
"""The largest amount a request may name: more than all the ether there is, far inside uint256, and a power of
two, which a JSON number read as a float (as many clients and fuzzers do) still represents exactly."""
Wei = Annotated[int, Field(gt=0, le=WEI_MAX, description="Amount in wei (at most 2**128).")]
TokenId = Annotated[int, Field(ge=1, le=DB_ID_MAX)]
RowId = Annotated[int, Field(ge=1, le=DB_ID_MAX)]
ServedProfile = Literal[EspProfile.HONEST, EspProfile.CHEATING]
"""The profiles an ESP served by the API may have."""


#: What no text of a request may contain: C0 controls (NUL, ESC, newlines, ...), DEL, C1 controls and lone
#: UTF-16 surrogates (which no database encodes: PostgreSQL refuses NUL and surrogates outright).
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
CONTROL_CHARACTER_ERROR = "control_character"


def reject_control_characters(value: Any, where: str = "body") -> None:
    """Raise a validation error of type `control_character` if any string in `value` (keys too) has one."""
    if isinstance(value, str):
        if CONTROL_CHARACTERS.search(value):
            raise PydanticCustomError(
                CONTROL_CHARACTER_ERROR,
                "{where}: text must not contain control characters (U+0000-U+001F, U+007F-U+009F) or lone surrogates",
                {"where": where},
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            reject_control_characters(key, where)
            reject_control_characters(item, f"{where}.{key}" if isinstance(key, str) and key.isidentifier() else where)
    elif isinstance(value, list | tuple):
        for item in value:
            reject_control_characters(item, where)


#: The same rule as a JSON-schema pattern on every text field, so that the schema says what is refused.
NO_CONTROL_PATTERN = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"


#: Text fields: length bounds, and no control character (in the schema as a pattern).
Text = Annotated[str, StringConstraints(pattern=NO_CONTROL_PATTERN)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=NO_CONTROL_PATTERN)]
Prompt = Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=NO_CONTROL_PATTERN)]
Uri = Annotated[str, StringConstraints(max_length=500, pattern=NO_CONTROL_PATTERN)]


class Strict(BaseModel):
    """Request bodies: unknown fields are an error, not silently ignored; no text has a control character."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_control_characters(cls, data: Any) -> Any:
        reject_control_characters(data)
        return data


class Error(BaseModel):
    code: str
    detail: str


class AccountCreated(BaseModel):
    address: str
    api_key: str = Field(description="Shown once: only its keyed hash is stored.")
    balance_wei: int
    funded_wei: int = Field(0, description="What the faucet gave this account (0 when it is off or its budgets are spent).")
    funding: Funding = Field(
        Funding.OFF,
        description="funded; off (accounts start empty: the operator funds them); client_budget_spent or "
        "budget_spent (the faucet's per-client or global budget is spent: the account starts empty).",
    )


class AccountOut(BaseModel):
    address: str
    balance_wei: int
    created_at: datetime

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        """SQLite hands back naive datetimes (stored in UTC): say so, as RFC 3339 requires."""
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class EspCreate(Strict):
    name: Name
    profile: ServedProfile = Field(
        EspProfile.HONEST, description="honest: reveals the key; cheating: never reveals (demo of refunds)."
    )


class EspUpdate(Strict):
    name: Name | None = None
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
    prompt: Prompt
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
    uri: Uri | None = None


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
    # A rule scheduler only: `maddpg:PATH` names a checkpoint file on the server, the operator's business
    # (`aigc-market simulate`), never a client's (it would probe and load server paths).
    "scheduler": {
        "choices": tuple(s.value for s in RULE_SCHEDULERS),
        "description": "How each task is placed on its ESP's servers: edge (whole on the nearest), greedy, least-loaded "
        "or parallel-split.",
    },
    "esp_profiles": {"min_length": 1, "max_length": 10},
    "random_periods": {"le": 1000},
}


def simulation_field(spec: FieldSpec, caps: dict[str, Any]) -> tuple[Any, Any]:
    """(annotation, FieldInfo) of one config field in a request body: its type, default and docstring,
    its bounds (tightened by `caps`)."""
    choices = caps.get("choices", spec.choices)
    annotation: Any = Literal[choices] if choices is not None else spec.type
    if annotation is str:
        annotation = Text
    constraints: dict[str, Any] = {
        name: value for name, value in (("ge", spec.ge), ("gt", spec.gt), ("le", spec.le)) if value is not None
    }
    constraints |= {name: value for name, value in caps.items() if name not in ("default", "choices")}
    constraints = {name: value for name, value in constraints.items() if name != "description"}
    return annotation, Field(caps.get("default", spec.default), description=caps.get("description", spec.doc), **constraints)


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
