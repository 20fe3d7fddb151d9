"""Liveness and readiness for load balancers and orchestrators.

`/healthz` says the process answers. `/readyz` says it can serve: the database answers, every
migration on disk is applied, Redis answers and the Celery broker accepts a connection. Each
check runs on a small thread pool of its own with a short deadline, so a dead dependency makes
`/readyz` answer 503 within a second or two instead of hanging the prober. The reply names
each check with "ok" or "failed" and nothing else; why a check failed goes to the log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import redis
from django.conf import settings
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from kombu import Connection

logger = logging.getLogger("docqa.ops.health")

HEALTHZ = "/healthz"
READYZ = "/readyz"
OK, FAILED = "ok", "failed"
# Each check's socket timeout, and the deadline for all of them together.
SOCKET_TIMEOUT = 1.0
DEADLINE = 1.5

_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="docqa-readyz")
_graph_lock = threading.Lock()
_graph_nodes: dict | None = None


def database_check() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connection.close_if_unusable_or_obsolete()


def _migrations_on_disk() -> dict:
    """The migration graph's nodes; the files on disk do not change while the process runs."""
    global _graph_nodes
    with _graph_lock:
        if _graph_nodes is None:
            _graph_nodes = dict(MigrationLoader(None, ignore_no_migrations=True).graph.nodes)
        return _graph_nodes


def migrations_check() -> None:
    nodes = _migrations_on_disk()
    try:
        applied = set(MigrationRecorder(connection).applied_migrations())
    finally:
        connection.close_if_unusable_or_obsolete()
    pending = [
        key
        for key, migration in nodes.items()
        if key not in applied and not (migration.replaces and set(migration.replaces) <= applied)
    ]
    if pending:
        raise RuntimeError(f"{len(pending)} migration(s) not applied, first {pending[0]}")


def redis_check() -> None:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=SOCKET_TIMEOUT, socket_timeout=SOCKET_TIMEOUT
    )
    try:
        client.ping()
    finally:
        client.close()


def broker_check() -> None:
    timeouts = {"socket_connect_timeout": SOCKET_TIMEOUT, "socket_timeout": SOCKET_TIMEOUT}
    with Connection(
        settings.CELERY_BROKER_URL, connect_timeout=SOCKET_TIMEOUT, transport_options=timeouts
    ) as broker:
        broker.ensure_connection(max_retries=0)


CHECKS: dict[str, Callable[[], None]] = {
    "database": database_check,
    "migrations": migrations_check,
    "redis": redis_check,
    "broker": broker_check,
}


async def readiness() -> dict[str, str]:
    """Every check's name with "ok" or "failed", run at once, within DEADLINE seconds."""
    loop = asyncio.get_running_loop()
    futures = {name: loop.run_in_executor(_executor, check) for name, check in CHECKS.items()}
    await asyncio.wait(futures.values(), timeout=DEADLINE)
    results = {}
    for name, future in futures.items():
        if not future.done():
            future.cancel()  # still queued behind a hung check: never start it
            logger.warning("readiness check %s did not answer within %.1f s", name, DEADLINE)
            results[name] = FAILED
        elif future.exception() is not None:
            logger.warning("readiness check %s failed: %s", name, future.exception())
            results[name] = FAILED
        else:
            results[name] = OK
    return results


async def health_respond(scope, send) -> None:
    """Answer /healthz or /readyz (GET or HEAD) without entering Django."""
    if scope["method"] not in ("GET", "HEAD"):
        return await _respond(send, 405, {"detail": "method not allowed"}, scope, allow=b"GET, HEAD")
    if scope["path"] == HEALTHZ:
        return await _respond(send, 200, {"status": OK}, scope)
    results = await readiness()
    status = 200 if all(value == OK for value in results.values()) else 503
    await _respond(send, status, results, scope)


async def _respond(send, status: int, payload: dict, scope, allow: bytes | None = None) -> None:
    body = json.dumps(payload).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if allow:
        headers.append((b"allow", allow))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
