"""`/v1/models` and `/v1/users/me/balance`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from docqa.emulator.catalog import MODELS, model_as_json

# The figures of the spec's example: a small positive balance, so nothing looks unpaid.
BALANCE = {"available_balance": 49.58894, "voucher_balance": 46.58893, "cash_balance": 3.00001}


async def models_list(request: Request) -> Response:
    """GET /v1/models."""
    return JSONResponse({"object": "list", "data": [model_as_json(model) for model in MODELS]})


async def balance_get(request: Request) -> Response:
    """GET /v1/users/me/balance."""
    return JSONResponse({"code": 0, "data": dict(BALANCE), "scode": "0x0", "status": True})
