"""JSON errors `{"code": ..., "detail": ...}` with stable codes, for every failure a client can cause.

A contract revert keeps its custom error's name as the code (409 when the chain's state forbids the
action, 422 when the request's own values are wrong); validation errors are 422
`validation_error`; an unexpected failure is 500 `internal_error` with no detail that could leak a
secret. Nothing here logs request bodies or headers.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from market.chain.errors import ChainError, ContractRevert, RpcUnreachableError, TransactionRevertedError

log = logging.getLogger("api")

#: Custom errors caused by the values the client sent (the rest are conflicts with chain state).
_INPUT_ERRORS = ("Invalid", "Wrong", "TooSmall", "TooSoon", "TooLarge", "ZeroAmount", "SameProduct", "DuplicateContent")

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
               409: "conflict", 413: "body_too_large", 415: "unsupported_media_type", 422: "validation_error",
               429: "too_many_requests", 503: "unavailable"}


class ApiError(Exception):
    """An error with an HTTP status, a stable code and a human detail."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def forbidden(detail: str) -> ApiError:
    return ApiError(403, "forbidden", detail)


def error_response(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "detail": detail}, status_code=status, headers=headers)


def revert_status(error: ContractRevert) -> int:
    return 422 if any(part in error.error for part in _INPUT_ERRORS) else 409


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the same JSON shape."""

    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(exc.status, exc.code, exc.detail, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()))
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return error_response(422, "validation_error", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(ContractRevert)
    async def _revert(_: Request, exc: ContractRevert) -> JSONResponse:
        return error_response(revert_status(exc), exc.error, f"the chain refused: {exc}")

    @app.exception_handler(RpcUnreachableError)
    async def _rpc(_: Request, exc: RpcUnreachableError) -> JSONResponse:
        return error_response(503, "chain_unreachable", str(exc))

    @app.exception_handler(TransactionRevertedError)
    async def _reverted(_: Request, exc: TransactionRevertedError) -> JSONResponse:
        return error_response(409, "transaction_failed", str(exc)[:300])

    @app.exception_handler(ChainError)
    async def _chain(_: Request, exc: ChainError) -> JSONResponse:
        return error_response(502, "chain_error", exc.__class__.__name__)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s %s: %s", request.method, request.url.path, exc.__class__.__name__)
        return error_response(500, "internal_error", "internal error")
