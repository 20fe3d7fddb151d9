"""Every `/v1` request passes here first: counted, authenticated, then faults applied."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from docqa.emulator.errors import INVALID_AUTHENTICATION, ApiError, error_response
from docqa.emulator.faults import Fault
from docqa.emulator.state import EmulatorState

logger = logging.getLogger("docqa.emulator")

_ROUTE_SHAPES = (
    (re.compile(r"^/v1/files/[^/]+/content$"), "/v1/files/{id}/content"),
    (re.compile(r"^/v1/files/[^/]+$"), "/v1/files/{id}"),
)


def route_key(method: str, path: str) -> str:
    """The stats key of a request: its method and route, ids replaced by `{id}`."""
    for pattern, shape in _ROUTE_SHAPES:
        if pattern.match(path):
            return f"{method} {shape}"
    return f"{method} {path.rstrip('/') or '/'}"


class _StreamCut(Exception):
    """Raised from `send` to stop the handler when a cut_stream fault has had its chunks."""


async def connection_drop(receive: Receive, *, abort: bool) -> None:
    """Close the client's TCP connection under uvicorn: `abort` resets it, unsent data lost;
    otherwise what was sent is flushed first and the connection then closed.

    ASGI has no message for this, so it reaches uvicorn's transport through the `receive`
    callable, a method of uvicorn's request cycle. Under another server it raises, and the
    server closes the connection in its own way.
    """
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("emulator fault: cannot reach the transport, dropping by error instead")
    if abort:
        transport.abort()
    else:
        transport.close()
    # Wait for uvicorn to notice, so it does not report an unfinished response as an error.
    for _ in range(100):
        if getattr(cycle, "disconnected", True):
            return
        await asyncio.sleep(0.01)


class EmulatorMiddleware:
    """Counts `/v1` requests, checks the bearer key, then applies any faults that fire."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1"):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        self.state.stats.record(route_key(method, path))
        if not self._authorized(scope):
            await error_response(ApiError(401, INVALID_AUTHENTICATION))(scope, receive, send)
            return
        cut: Fault | None = None
        for fault in self.state.faults.fire(method, path):
            logger.info("fault %s (%s) fires on %s %s", fault.id, fault.kind, method, path)
            if fault.kind == "delay":
                await asyncio.sleep(fault.seconds)
            elif fault.kind == "error":
                headers = {}
                if fault.retry_after is not None:
                    seconds = fault.retry_after
                    headers["Retry-After"] = str(int(seconds) if float(seconds).is_integer() else seconds)
                error = ApiError(fault.status, fault.error_type, fault.error_message, headers=headers)
                await error_response(error)(scope, receive, send)
                return
            elif fault.kind == "reset":
                await connection_drop(receive, abort=True)
                return
            elif fault.kind == "extract_error":
                scope.setdefault("state", {})["extract_error"] = (
                    fault.message or "extraction failed (injected fault)"
                )
            elif fault.kind in ("stream_error", "finish"):
                scope.setdefault("state", {})["chat_fault"] = fault
            elif fault.kind == "not_deleted":
                scope.setdefault("state", {})["not_deleted"] = True
            elif fault.kind == "file_status":
                scope.setdefault("state", {})["file_status"] = (fault.pending_status, fault.done_status)
            elif fault.kind == "cut_stream":
                cut = fault
        if cut is None:
            await self.app(scope, receive, send)
            return
        await self._with_cut(scope, receive, send, cut.after_chunks)

    def _authorized(self, scope: Scope) -> bool:
        # The header value is compared, never logged.
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                return scheme.lower() == "bearer" and secrets.compare_digest(
                    token.strip().encode(), self.state.api_key.encode()
                )
        return False

    async def _with_cut(self, scope: Scope, receive: Receive, send: Send, after_chunks: int) -> None:
        sent = 0

        async def cutting_send(message: Message) -> None:
            nonlocal sent
            if message["type"] == "http.response.body":
                # The last body message is never sent, so even a short response ends broken.
                if sent >= after_chunks or not message.get("more_body", False):
                    raise _StreamCut
                sent += 1
            await send(message)

        try:
            await self.app(scope, receive, cutting_send)
        except* _StreamCut:
            logger.info("cut_stream fault: closing the connection after %d body chunks", sent)
            await connection_drop(receive, abort=False)
