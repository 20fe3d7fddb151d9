"""The outermost ASGI layer: health endpoints, request ids and request metrics.

/healthz and /readyz are answered here, before Django: no session, CSRF, locale, host
check or request queue stands between a prober and its answer, and a web process whose
request slots are all taken still says it is alive. They are not counted in the request
metrics (probes every few seconds would drown the traffic).

Every other request gets an id (a sane incoming X-Request-ID, else a fresh one) that its log
lines carry and its response returns in X-Request-ID, and is counted and timed until its
response starts.
"""

from __future__ import annotations

import re
import time
import uuid

from docqa.ops.health import HEALTHZ, READYZ, health_respond
from docqa.ops.instruments import http_request_observe
from docqa.ops.logs import request_id_reset, request_id_set

_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def request_id_from(scope) -> str:
    for name, value in scope.get("headers") or ():
        if name == b"x-request-id" and _SANE_REQUEST_ID.fullmatch(value):
            return value.decode("ascii")
    return uuid.uuid4().hex


def operations(app):
    async def wrapped(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        if scope["path"] in (HEALTHZ, READYZ):
            return await health_respond(scope, send)

        request_id = request_id_from(scope)
        token = request_id_set(request_id)
        started = time.perf_counter()
        answered = False

        async def send_marked(message):
            nonlocal answered
            if message["type"] == "http.response.start" and not answered:
                answered = True
                http_request_observe(
                    method=scope["method"], status=message["status"], seconds=time.perf_counter() - started
                )
                headers = [
                    (name, value)
                    for name, value in message.get("headers", ())
                    if name.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", request_id.encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await app(scope, receive, send_marked)
        except BaseException:
            if not answered:  # the server answers 500 for us
                http_request_observe(
                    method=scope["method"], status=500, seconds=time.perf_counter() - started
                )
            raise
        finally:
            request_id_reset(token)

    return wrapped
