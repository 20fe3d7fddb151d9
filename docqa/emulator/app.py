"""The emulator's ASGI app: Moonshot's `/v1` routes plus the `/_emulator/` control routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from docqa.emulator import account, chat, control_api, files
from docqa.emulator.errors import (
    INVALID_REQUEST,
    RESOURCE_NOT_FOUND,
    SERVER_ERROR,
    ApiError,
    error_response,
)
from docqa.emulator.middleware import EmulatorMiddleware
from docqa.emulator.state import EmulatorState, Knobs
from docqa.emulator.store import AccountLimits

logger = logging.getLogger("docqa.emulator")

V1_ROUTES = [
    Route("/v1/models", account.models_list, methods=["GET"]),
    Route("/v1/users/me/balance", account.balance_get, methods=["GET"]),
    Route("/v1/files", files.files_upload, methods=["POST"]),
    Route("/v1/files", files.files_list, methods=["GET"]),
    Route("/v1/files/{id}", files.files_retrieve, methods=["GET"]),
    Route("/v1/files/{id}", files.files_delete, methods=["DELETE"]),
    Route("/v1/files/{id}/content", files.files_content, methods=["GET"]),
    Route("/v1/chat/completions", chat.chat_completions, methods=["POST"]),
    Route("/v1/tokenizers/estimate-token-count", chat.tokens_estimate, methods=["POST"]),
]


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        error = ApiError(404, RESOURCE_NOT_FOUND, f"no such route: {request.method} {request.url.path}")
    elif exc.status_code == 405:
        error = ApiError(
            405, INVALID_REQUEST, f"method {request.method} is not allowed on {request.url.path}"
        )
    else:
        error = ApiError(exc.status_code, INVALID_REQUEST, str(exc.detail))
    return error_response(error)


async def _server_error(request: Request, exc: Exception) -> Response:
    logger.exception("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(ApiError(500, SERVER_ERROR))


def create_app(
    *,
    data_dir: Path,
    api_key: str,
    knobs: Knobs | None = None,
    limits: AccountLimits | None = None,
) -> Starlette:
    """Build the emulator app serving files from `data_dir` to clients holding `api_key`.

    `knobs` default to the EMULATOR_* environment variables (see `Knobs.from_env`);
    `limits` default to Moonshot's account limits and exist so tests can shrink them.
    """
    state = EmulatorState(data_dir=Path(data_dir), api_key=api_key, knobs=knobs, limits=limits)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Extractions cut short by the last shutdown start again.
        for file_id in state.store.processing_ids():
            record = state.store.get(file_id)
            if record is not None:
                files.extraction_schedule(state, record)
        try:
            yield
        finally:
            state.close()

    app = Starlette(
        routes=[*V1_ROUTES, *control_api.ROUTES],
        middleware=[Middleware(EmulatorMiddleware, state=state)],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )
    app.state.emulator = state
    return app
