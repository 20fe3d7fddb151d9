"""The `/_emulator/` control routes: faults, knobs, filler files, stats, reset.

No authentication: the emulator is meant to listen on loopback only, and these routes
exist for tests and benchmarks on the same machine.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from docqa.emulator.errors import invalid_request
from docqa.emulator.state import EmulatorState

logger = logging.getLogger("docqa.emulator")


def _state(request: Request) -> EmulatorState:
    return request.app.state.emulator


async def _json(request: Request) -> dict:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise invalid_request("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise invalid_request("the request body must be a JSON object")
    return body


async def health(request: Request) -> Response:
    """GET /_emulator/health: the emulator is up."""
    return JSONResponse({"ok": True})


async def faults_list(request: Request) -> Response:
    """GET /_emulator/faults."""
    return JSONResponse({"faults": [fault.as_json() for fault in _state(request).faults.list()]})


async def faults_add(request: Request) -> Response:
    """POST /_emulator/faults: add one fault (fields of `docqa.emulator.faults.Fault`)."""
    fault = _state(request).faults.add(await _json(request))
    logger.info("fault %s added: %s %s %s", fault.id, fault.kind, fault.method, fault.path)
    return JSONResponse(fault.as_json())


async def faults_clear(request: Request) -> Response:
    """DELETE /_emulator/faults."""
    _state(request).faults.clear()
    return JSONResponse({"faults": []})


async def config_get(request: Request) -> Response:
    """GET /_emulator/config: the runtime knobs."""
    return JSONResponse(_state(request).knobs.as_json())


async def config_set(request: Request) -> Response:
    """POST /_emulator/config: change some knobs."""
    state = _state(request)
    state.knobs.update(await _json(request))
    return JSONResponse(state.knobs.as_json())


async def fake_files_add(request: Request) -> Response:
    """POST /_emulator/fake-files: add filler file records (no bytes) to fill the account."""
    body = await _json(request)
    count, bytes_each = body.get("count"), body.get("bytes_each", 0)
    filename = body.get("filename") or "filler.pdf"
    for name, value in (("count", count), ("bytes_each", bytes_each)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise invalid_request(f"{name} must be a non-negative integer")
    ids = _state(request).store.add_fake(count=count, bytes_each=bytes_each, filename=str(filename))
    return JSONResponse({"ids": ids})


async def stats_get(request: Request) -> Response:
    """GET /_emulator/stats: request counts, last chat time, files and bytes held."""
    state = _state(request)
    files, used = state.store.totals()
    return JSONResponse({**state.stats.as_json(), "files": files, "bytes": used})


async def reset(request: Request) -> Response:
    """POST /_emulator/reset: forget files, faults and stats; knobs back to their start values."""
    state = _state(request)
    state.reset()
    return JSONResponse({"ok": True})


ROUTES = [
    Route("/_emulator/health", health, methods=["GET"]),
    Route("/_emulator/faults", faults_list, methods=["GET"]),
    Route("/_emulator/faults", faults_add, methods=["POST"]),
    Route("/_emulator/faults", faults_clear, methods=["DELETE"]),
    Route("/_emulator/config", config_get, methods=["GET"]),
    Route("/_emulator/config", config_set, methods=["POST"]),
    Route("/_emulator/fake-files", fake_files_add, methods=["POST"]),
    Route("/_emulator/stats", stats_get, methods=["GET"]),
    Route("/_emulator/reset", reset, methods=["POST"]),
]
