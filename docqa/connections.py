"""The project's shared connections: Redis (sync and async) and the Moonshot client.

Settings are read when a connection is first asked for, never at import time, so tests
and the process runner can point them elsewhere before anything connects.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from functools import lru_cache

import redis
import redis.asyncio
from django.conf import settings

from docqa import keys
from docqa.moonshot import MoonshotClient, RedisLimiter
from docqa.ops.instruments import moonshot_call_observed

_local = threading.local()

# redis-py 8 caps a pool at 100 connections unless told otherwise (it was unlimited before).
# A threads-pool answers worker publishes from every streaming answer's thread and each SSE
# stream holds an async connection while it waits in XREAD BLOCK, so 500 answers at once met
# the cap: 234 of 500 answers ended "Too many connections" in the benchmark. The bound is
# Redis's own default `maxclients`; Redis, not the client, says when there are too many.
REDIS_MAX_CONNECTIONS = 10_000
# redis-py 8 also gives every socket read a 5 s timeout by default. The event streams' reads
# block in XREAD for up to 10 s (`docqa.chat.streams.IDLE_SECONDS`, `docqa.events`) by design,
# so on the async pool a read waits as long as its BLOCK says (the server answers then).
ASYNC_SOCKET_TIMEOUT = None


@lru_cache(maxsize=4)
def _redis_pool(url: str) -> redis.ConnectionPool:
    return redis.ConnectionPool.from_url(
        url, decode_responses=True, health_check_interval=30, max_connections=REDIS_MAX_CONNECTIONS
    )


def redis_client() -> redis.Redis:
    """The process-wide Redis client (thread-safe: each command takes a pooled connection)."""
    return _redis(settings.REDIS_URL)


@lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    # One instance per URL: building a client costs more than the command it then sends.
    return redis.Redis(connection_pool=_redis_pool(url))


_async_pools: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def async_redis_client() -> redis.asyncio.Redis:
    """An asyncio Redis client on this event loop's connection pool; the caller closes it
    (`await client.aclose()`), which hands its connection back to the pool.

    Every SSE stream takes one: a pool per loop spares each of them a new connection (and the
    handshake commands redis-py sends on one) before its first delta.
    """
    loop = asyncio.get_running_loop()
    pools = _async_pools.setdefault(loop, {})
    pool = pools.get(settings.REDIS_URL)
    if pool is None:
        pool = redis.asyncio.ConnectionPool.from_url(
            settings.REDIS_URL,
            decode_responses=True,
            health_check_interval=30,
            max_connections=REDIS_MAX_CONNECTIONS,
            socket_timeout=ASYNC_SOCKET_TIMEOUT,
        )
        pools[settings.REDIS_URL] = pool
    return redis.asyncio.Redis(connection_pool=pool)


def moonshot_client() -> MoonshotClient:
    """This thread's Moonshot client (requests sessions are not shared across threads)."""
    key = (settings.MOONSHOT_BASE_URL, settings.MOONSHOT_API_KEY, settings.REDIS_URL)
    client = getattr(_local, "moonshot", None)
    if client is None or getattr(_local, "moonshot_key", None) != key:
        limiter = None
        if settings.MOONSHOT_MAX_CONCURRENCY or settings.MOONSHOT_MAX_RPM:
            limiter = RedisLimiter(
                _redis(settings.REDIS_URL),  # the process's client: building one per thread cost 2%
                max_concurrency=settings.MOONSHOT_MAX_CONCURRENCY,
                max_rpm=settings.MOONSHOT_MAX_RPM,
                namespace=keys.MOONSHOT_NAMESPACE,
            )
        client = MoonshotClient(
            base_url=settings.MOONSHOT_BASE_URL,
            api_key=settings.MOONSHOT_API_KEY,
            connect_timeout=settings.MOONSHOT_CONNECT_TIMEOUT,
            read_timeout=settings.MOONSHOT_READ_TIMEOUT,
            max_retries=settings.MOONSHOT_MAX_RETRIES,
            limiter=limiter,
            observe=moonshot_call_observed,
        )
        _local.moonshot = client
        _local.moonshot_key = key
    return client
