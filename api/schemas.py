"""Request and response models: what crosses HTTP. No model carries a private key; only
`AccountCreated` carries an API key, once.

States and profiles are the StrEnums of `api.states` and `market.actors` (they serialise to the
strings the API has always sent); the body of POST /simulations is derived from
`market.simulation.SimulationConfig` (`simulation_create_model`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model, field_validator, model_validator
from pydantic_core import PydanticCustomError

from api.states import Custody, EspOperator, EspStakeState, Funding, SelectedBy, SimulationStatus, TaskState, TradeState
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
    transaction: dict[str, Any] | None = Field(
        None,
        description="428 signature_required only: the unsigned EIP-1559 transaction (hex quantities) that a "
        "self-custodied account signs and sends back as signed_transaction.",
    )


#: A transaction signed by a self-custodied account (the 428 reply's `transaction`), 0x-hex.
SignedTransaction = Annotated[
    str | None,
    Field(
        None, pattern=r"^0x[0-9a-fA-F]{2,32768}$", description="Self-custodied accounts: the signed transaction of the 428 reply."
    ),
]


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
    custody: Custody = Field(Custody.SERVER, description="server (API key: the server signs) or self (Sign-In with Ethereum).")
    balance_wei: int
    created_at: datetime

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        """SQLite hands back naive datetimes (stored in UTC): say so, as RFC 3339 requires."""
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class EspCreate(Strict):
    name: Name
    profile: ServedProfile | None = Field(
        None,
        description="Server-run ESPs only (default honest): honest reveals the key; cheating never reveals (demo of "
        "refunds). An ESP node (self-custodied account) takes none.",
    )


class EspUpdate(Strict):
    name: Name | None = None
    profile: ServedProfile | None = None


class EspOut(BaseModel):
    address: str
    name: str
    profile: EspProfile | None = Field(description="The simulated behaviour of a server-run ESP; null for a node.")
    operator: EspOperator = Field(EspOperator.SERVER, description="node (its own process and key) or server (simulated).")
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


class SignInNonce(BaseModel):
    nonce: str
    expires_at: datetime
    domain: str = Field(description="What the message's first line must name (this server).")
    chain_id: int
    uri: str = Field(description="What the message's URI line must say.")


class SignIn(BaseModel):
    """The message has line feeds, which `Strict` refuses: api/siwe.py refuses every other control character."""

    model_config = ConfigDict(extra="forbid")

    message: Annotated[str, StringConstraints(min_length=1, max_length=4000)] = Field(
        description="An EIP-4361 message with this server's domain, URI, chain id, a nonce from POST /auth/nonce and an "
        "Expiration Time (LF line ends)."
    )
    signature: Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{130}$")]


class SignedIn(BaseModel):
    address: str
    token: str = Field(description="Bearer token of this session, shown once (only its keyed hash is stored).")
    expires_at: datetime
    funded_wei: int = 0
    funding: Funding = Funding.OFF


class ChainInfo(BaseModel):
    chain_id: int
    rpc_url: str | None = Field(description="The chain's public JSON-RPC endpoint (null: an embedded chain, no node can join).")
    deployment: dict[str, Any] = Field(description="chain_id, block and the contracts' addresses.")
    terms: dict[str, int] = Field(description="The server's market terms (wei and seconds).")
    eip712_domain: dict[str, Any] = Field(description="The exchange's EIP-712 domain: what an ESP signs its offers in.")


class LockCreate(Strict):
    signed_transaction: SignedTransaction = None


class RefundCreate(Strict):
    signed_transaction: SignedTransaction = None


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
    timelock: int = Field(description="The offer's timelock (0 until the ESP offered).")
    ciphertext_sha256: str | None
    content_sha256: str | None
    rated: bool
    token_id: int | None
    cost: CostOut | None = Field(description="The offloading core's prediction on the ESP's servers (null until offered).")
    generation_s: float | None = Field(
        None, description="Measured seconds of the generation on the ESP's machine, beside the core's predicted latency."
    )
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
    signed_transaction: SignedTransaction = None


class ProductCreate(Strict):
    task_id: RowId
    uri: Uri | None = None
    signed_transaction: SignedTransaction = None


class ClaimCreate(Strict):
    signed_transaction: SignedTransaction = None


class EspJobAction(StrEnum):
    OFFER = "offer"
    """The task is requested: make the content, sign an offer, send both (POST /esp/jobs/{id}/offer)."""
    REVEAL = "reveal"
    """The producer's lock is recorded: reveal the key on chain, then POST /esp/jobs/{id}/delivery."""
    DELIVER = "deliver"
    """The key is on chain but this server has no opening of the content yet: POST /esp/jobs/{id}/delivery."""


class EspJob(BaseModel):
    task_id: int
    action: EspJobAction
    prompt: str
    producer: str
    fee_wei: int
    offer: dict[str, Any] | None
    lock_id: str | None


class EspJobs(BaseModel):
    items: list[EspJob]


BreakdownTerm = Annotated[str, StringConstraints(max_length=40, pattern=NO_CONTROL_PATTERN)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class NodeCost(Strict):
    latency_s: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    energy_j: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    completed: bool
    quality: Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)]
    breakdown: dict[BreakdownTerm, FiniteFloat] = Field(
        default_factory=dict,
        max_length=32,
        # pydantic does not state a key's constraints in the schema: say them, so that the schema is the whole rule.
        json_schema_extra={"propertyNames": {"maxLength": 40, "pattern": NO_CONTROL_PATTERN}},
    )


Bytes32 = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{64}$")]
#: Chain times in seconds: JSON numbers are exact up to 2**53 (far beyond any timestamp), not to uint64's 2**64 - 1.
ChainSeconds = Annotated[int, Field(ge=0, le=2**53)]
#: A 64-bit perceptual hash, 0x-hex: a JSON number cannot hold every 64-bit value exactly.
PerceptualHashHex = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{1,16}$")]
DecimalUint256 = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,78}$")]


class OfferFields(Strict):
    """The Solidity `Offer` struct, as `TaskOut.offer` shows it (wei and nonce as decimal strings)."""

    esp: Address
    producer: Address
    hashlock: Bytes32
    fee: DecimalUint256
    timelock: ChainSeconds
    expiry: ChainSeconds
    nonce: DecimalUint256
    commitment: Bytes32


class OpeningFields(Strict):
    """The content an offer commits to, as `TaskOut.opening` shows it."""

    content_hash: Bytes32
    perceptual_hash: PerceptualHashHex
    prompt_hash: Bytes32
    salt: Bytes32


class OfferCreate(Strict):
    offer: OfferFields = Field(description="The offer the ESP signed (EIP-712, the exchange's domain).")
    signature: Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{130}$")]
    ciphertext: Annotated[str, StringConstraints(min_length=1, max_length=12 * 1024 * 1024, pattern=r"^[A-Za-z0-9+/]+={0,2}$")] = (
        Field(description="The encrypted content, base64.")
    )
    cost: NodeCost
    generation_s: Annotated[float, Field(ge=0, le=86400, allow_inf_nan=False)]


class DeliveryCreate(Strict):
    opening: OpeningFields = Field(description="The content the offer committed to.")
    key: Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{64}$")] = Field(
        description="The content key, revealed on chain."
    )


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
    signed_transaction: SignedTransaction = None


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
    signed_transaction: SignedTransaction = None


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
