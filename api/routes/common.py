"""Shared route pieces: error responses for the OpenAPI schema and pagination parameters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query

from api.schemas import DB_ID_MAX, Error

ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": Error} for status in (400, 401, 403, 404, 409, 413, 422, 429)}
#: The routes that send a transaction of the caller: 428 `signature_required` for a self-custodied account.
SIGNATURE: dict[int | str, dict[str, Any]] = {428: {"model": Error}}

Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0, le=DB_ID_MAX)]
IdPath = Annotated[int, Path(ge=1, le=DB_ID_MAX)]
AddressPath = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$")]
