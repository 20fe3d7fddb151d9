"""The project's shared connections: Redis (sync and async) and the Moonshot client.

Settings are read when a connection is first asked for, never at import time, so tests
and the process runner can point them elsewhere before anything connects.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import redis
import redis.asyncio
from django.conf import settings

from docqa.moonshot import MoonshotClient, RedisLimiter

_local = threading.local()


@lru_cache(maxsize=4)
def _redis_pool(url: str) -> redis.ConnectionPool:
    return redis.ConnectionPool.from_url(url, decode_responses=True, health_check_interval=30)


def redis_client() -> redis.Redis:
    """A Redis client on a process-wide connection pool."""
    return redis.Redis(connection_pool=_redis_pool(settings.REDIS_URL))


def async_redis_client() -> redis.asyncio.Redis:
    """A new asyncio Redis client; the caller closes it (`await client.aclose()`)."""
    return redis.asyncio.Redis.from_url(settings.REDIS_URL, decode_responses=True)


def moonshot_client() -> MoonshotClient:
    """This thread's Moonshot client (requests sessions are not shared across threads)."""
    key = (settings.MOONSHOT_BASE_URL, settings.MOONSHOT_API_KEY, settings.REDIS_URL)
    client = getattr(_local, "moonshot", None)
    if client is None or getattr(_local, "moonshot_key", None) != key:
        limiter = None
        if settings.MOONSHOT_MAX_CONCURRENCY or settings.MOONSHOT_MAX_RPM:
            limiter = RedisLimiter(
                redis.Redis(connection_pool=_redis_pool(settings.REDIS_URL)),
                max_concurrency=settings.MOONSHOT_MAX_CONCURRENCY,
                max_rpm=settings.MOONSHOT_MAX_RPM,
            )
        client = MoonshotClient(
            base_url=settings.MOONSHOT_BASE_URL,
            api_key=settings.MOONSHOT_API_KEY,
            connect_timeout=settings.MOONSHOT_CONNECT_TIMEOUT,
            read_timeout=settings.MOONSHOT_READ_TIMEOUT,
            max_retries=settings.MOONSHOT_MAX_RETRIES,
            limiter=limiter,
        )
        _local.moonshot = client
        _local.moonshot_key = key
    return client
