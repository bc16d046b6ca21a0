"""JSON errors `{"code": ..., "detail": ...}` with stable codes, for every failure a client can cause.

A contract revert is classified by `REVERTS`, which names every custom error of the market's
contracts (tests check that none is missing): 422 when the request's own values are wrong, 409 when
the chain's state forbids the action. Its code is the custom error's name, except for the
conditions of protocol v2 that a client is expected to meet and handle, which have short codes
(`product_not_final`, `challenge_window_closed`, `bond_already_claimed`, `no_credit`, ...). A revert
that no table names (Error(string), Panic, a future error) is 409 with its name. Validation errors
are 422 `validation_error`; an unexpected failure is 500 `internal_error` with no detail that could
leak a secret. Nothing here logs request bodies or headers.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from market.chain.errors import ChainError, ContractRevert, RpcUnreachableError, TransactionRevertedError

log = logging.getLogger("api")

_INPUT, _CONFLICT = 422, 409

#: Every custom error of AIGCExchange, AIGCRegistry and ReputationLedger (and the OpenZeppelin errors
#: their ABIs carry): (HTTP status, code); code None keeps the error's name.
REVERTS: dict[str, tuple[int, str | None]] = {
    # -- AIGCExchange: ESPs
    "AIGCExchangeEspNotActive": (_CONFLICT, "esp_not_active"),
    "AIGCExchangeEspNotExiting": (_CONFLICT, None),
    "AIGCExchangeEspRegistered": (_CONFLICT, "esp_already_staked"),
    "AIGCExchangeStakeTooSmall": (_INPUT, "stake_too_small"),
    "AIGCExchangeUnbonding": (_CONFLICT, None),
    "AIGCExchangeNotEquivocation": (_INPUT, None),
    "AIGCExchangeOpeningMismatch": (_INPUT, None),
    "AIGCExchangeNothingToSlash": (_CONFLICT, None),
    "AIGCExchangeAlreadyCompensated": (_CONFLICT, None),
    # -- AIGCExchange: generation and purchase locks
    "AIGCExchangeFeeBelowFloor": (_INPUT, "fee_below_floor"),
    "AIGCExchangeWrongFee": (_INPUT, None),
    "AIGCExchangeOfferExpired": (_CONFLICT, "offer_expired"),
    "AIGCExchangeOfferNotForCaller": (_CONFLICT, None),
    "AIGCExchangeInvalidOfferSignature": (_INPUT, None),
    "AIGCExchangeInvalidReceiver": (_INPUT, None),
    "AIGCExchangeZeroAmount": (_INPUT, None),
    "AIGCExchangeTimelockTooSoon": (_INPUT, None),
    "AIGCExchangeTimelockTooLate": (_INPUT, None),
    "AIGCExchangeUnknownLock": (_CONFLICT, None),
    "AIGCExchangeLockExists": (_CONFLICT, None),
    "AIGCExchangeLockSettled": (_CONFLICT, None),
    "AIGCExchangeNotReceiver": (_CONFLICT, None),
    "AIGCExchangeNotSender": (_CONFLICT, None),
    "AIGCExchangeWrongPreimage": (_INPUT, None),
    "AIGCExchangeTimelockExpired": (_CONFLICT, None),
    "AIGCExchangeTimelockNotExpired": (_CONFLICT, None),
    "AIGCExchangeTokenRevoked": (_CONFLICT, "product_revoked"),
    "AIGCExchangeNotFinal": (_CONFLICT, "product_not_final"),
    "AIGCExchangeSellerNotOwner": (_CONFLICT, "seller_not_owner"),
    "AIGCExchangeNotApproved": (_CONFLICT, None),
    "AIGCExchangeNoCredit": (_CONFLICT, "no_credit"),
    "AIGCExchangeTransferFailed": (_CONFLICT, None),
    # deployment only (a constructor's checks): no request reaches them
    "AIGCExchangeInvalidConfig": (_CONFLICT, None),
    "AIGCExchangeRegistryMismatch": (_CONFLICT, None),
    # -- AIGCRegistry
    "AIGCRegistryWrongBond": (_INPUT, None),
    "AIGCRegistryInvalidContentHash": (_INPUT, None),
    "AIGCRegistryDuplicateContent": (_INPUT, None),
    "AIGCRegistryUnknownGeneration": (_CONFLICT, None),
    "AIGCRegistryGenerationNotPaid": (_CONFLICT, "generation_not_paid"),
    "AIGCRegistryNotGenerationSender": (_CONFLICT, None),
    "AIGCRegistryCommitmentMismatch": (_INPUT, None),
    "AIGCRegistryGenerationUsed": (_CONFLICT, "generation_used"),
    "AIGCRegistryDepositTooSmall": (_INPUT, None),
    "AIGCRegistryUnknownProduct": (404, "not_found"),
    "AIGCRegistrySameProduct": (_CONFLICT, None),  # two ids the schema cannot tell apart: a conflict, not a shape
    "AIGCRegistryNotOwner": (_CONFLICT, None),
    "AIGCRegistryAlreadyRevoked": (_CONFLICT, "product_revoked"),
    "AIGCRegistrySelfChallenge": (_CONFLICT, None),  # the caller owns both: the state forbids it
    "AIGCRegistryChallengeWindowClosed": (_CONFLICT, "challenge_window_closed"),
    "AIGCRegistryNotFinal": (_CONFLICT, "product_not_final"),
    "AIGCRegistryBondReleased": (_CONFLICT, "bond_already_claimed"),
    "AIGCRegistryNoCredit": (_CONFLICT, "no_credit"),
    "AIGCRegistryTransferFailed": (_CONFLICT, None),
    "AIGCRegistryInvalidConfig": (_CONFLICT, None),
    # -- ReputationLedger
    "ReputationLedgerNotGenerationLock": (_CONFLICT, None),
    "ReputationLedgerNotSender": (_CONFLICT, None),
    "ReputationLedgerLockNotSettled": (_CONFLICT, None),
    "ReputationLedgerPositiveRatingOfRefund": (_INPUT, None),
    "ReputationLedgerAlreadyRated": (_CONFLICT, None),
    # -- OpenZeppelin (ERC-721 and ERC-2981 of the registry, EIP-712 and the reentrancy guard)
    "ERC721NonexistentToken": (404, "not_found"),
    "ERC721IncorrectOwner": (_CONFLICT, None),
    "ERC721InsufficientApproval": (_CONFLICT, None),
    "ERC721InvalidApprover": (_CONFLICT, None),
    "ERC721InvalidOperator": (_INPUT, None),
    "ERC721InvalidOwner": (_INPUT, None),
    "ERC721InvalidReceiver": (_INPUT, None),
    "ERC721InvalidSender": (_INPUT, None),
    "ERC2981InvalidDefaultRoyalty": (_CONFLICT, None),
    "ERC2981InvalidDefaultRoyaltyReceiver": (_CONFLICT, None),
    "ERC2981InvalidTokenRoyalty": (_CONFLICT, None),
    "ERC2981InvalidTokenRoyaltyReceiver": (_CONFLICT, None),
    "InvalidShortString": (_CONFLICT, None),
    "StringTooLong": (_CONFLICT, None),
    "ReentrancyGuardReentrantCall": (_CONFLICT, None),
}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    428: "signature_required",
    429: "too_many_requests",
    503: "unavailable",
}


class ApiError(Exception):
    """An error with an HTTP status, a stable code and a human detail."""

    def __init__(
        self, status: int, code: str, detail: str, headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers
        self.extra = extra
        """More fields of the reply (a 428's unsigned `transaction`)."""


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def forbidden(detail: str) -> ApiError:
    return ApiError(403, "forbidden", detail)


def error_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None
) -> JSONResponse:
    return JSONResponse({"code": code, "detail": detail, **(extra or {})}, status_code=status, headers=headers)


def revert_status(error: ContractRevert) -> int:
    return REVERTS.get(error.error, (_CONFLICT, None))[0]


def revert_code(error: ContractRevert) -> str:
    return REVERTS.get(error.error, (_CONFLICT, None))[1] or error.error


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the same JSON shape."""

    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else exc.headers
        return error_response(exc.status, exc.code, exc.detail, headers, exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        errors = exc.errors()
        for err in errors[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()))
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        # Control characters have a code of their own (api.schemas.CONTROL_CHARACTERS), wherever they are.
        code = "control_character" if any(err.get("type") == "control_character" for err in errors) else "validation_error"
        return error_response(422, code, "; ".join(parts)[:1000] or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(ContractRevert)
    async def _revert(_: Request, exc: ContractRevert) -> JSONResponse:
        return error_response(revert_status(exc), revert_code(exc), f"the chain refused: {exc}")

    @app.exception_handler(RpcUnreachableError)
    async def _rpc(request: Request, exc: RpcUnreachableError) -> JSONResponse:
        # The text names the node's URL, and a provider's URL embeds its API key: logged here, never sent.
        log.error("chain unreachable on %s %s: %s", request.method, request.url.path, exc)
        return error_response(503, "chain_unreachable", "the chain's node does not answer: retry later")

    @app.exception_handler(TransactionRevertedError)
    async def _reverted(request: Request, exc: TransactionRevertedError) -> JSONResponse:
        log.warning("transaction failed on %s %s: %s", request.method, request.url.path, exc)
        return error_response(409, "transaction_failed", "the transaction reverted on chain")

    @app.exception_handler(ChainError)
    async def _chain(request: Request, exc: ChainError) -> JSONResponse:
        log.error("chain error on %s %s: %r", request.method, request.url.path, exc)
        return error_response(502, "chain_error", "the chain's node answered with an error")

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal_error", "internal error")
