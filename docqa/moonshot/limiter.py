"""An account-wide limiter for calls to Moonshot, shared by every process through Redis.

Moonshot limits an account by concurrency and by requests per minute; going over earns 429s
and, per its docs, a penalty. Every worker on every machine therefore asks Redis for a slot
before each HTTP attempt:

- a *lease* in a sorted set scored by its expiry time. Leases are removed on release; one
  left by a killed process simply expires after `lease_seconds`, so a crash cannot leak
  capacity for longer than that;
- an *entry* in a second sorted set scored by start time: the number of entries in the last
  60 seconds is the requests-per-minute count (a sliding window, not fixed buckets).

Both checks and both inserts happen in one Lua script, so two processes can never take the
last slot together, and times come from the Redis server's clock, so machines with skewed
clocks still agree.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from docqa.moonshot.errors import RateLimitError

logger = logging.getLogger("docqa.moonshot.limiter")

_WINDOW_SECONDS = 60.0
# While all leases are taken a waiter polls, first after 50 ms, then twice as long each time
# up to a second: 450 answers waiting on a tier-1 account (50 at once) polled 9,000 times a
# second at a fixed 50 ms and kept a core busy doing it. A lease given back in this process
# wakes one of its waiters at once, so a backed-off waiter does not wait out its delay for
# it; leases given back by other processes are seen at the next poll.
_CONCURRENCY_POLL_SECONDS = 0.05
_MAX_POLL_SECONDS = 1.0
_FULL, _RPM = 1, 2

# KEYS: leases, requests. ARGV: token, max_concurrency, max_rpm, lease_ms, window_ms.
# Returns {1, 0} when a slot was taken, else {0, milliseconds worth waiting, 1 (all leases
# taken) or 2 (the minute's requests used)}.
_ACQUIRE_LUA = """
if redis.replicate_commands then redis.replicate_commands() end
local leases, requests = KEYS[1], KEYS[2]
local token = ARGV[1]
local max_concurrency = tonumber(ARGV[2])
local max_rpm = tonumber(ARGV[3])
local lease_ms = tonumber(ARGV[4])
local window_ms = tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
redis.call('ZREMRANGEBYSCORE', requests, '-inf', now - window_ms)
if max_concurrency > 0 and redis.call('ZCARD', leases) >= max_concurrency then
  return {0, tonumber(ARGV[6]), 1}
end
if max_rpm > 0 and redis.call('ZCARD', requests) >= max_rpm then
  local oldest = redis.call('ZRANGE', requests, 0, 0, 'WITHSCORES')
  return {0, math.max(1, tonumber(oldest[2]) + window_ms - now), 2}
end
if max_concurrency > 0 then
  redis.call('ZADD', leases, now + lease_ms, token)
  redis.call('PEXPIRE', leases, lease_ms * 2)
end
if max_rpm > 0 then
  redis.call('ZADD', requests, now, token)
  redis.call('PEXPIRE', requests, window_ms * 2)
end
return {1, 0}
"""

# KEYS: leases. ARGV: token, lease_ms. Pushes the expiry of a live lease forward.
_RENEW_LUA = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease_ms = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], 'XX', now + lease_ms, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease_ms * 2)
return 1
"""


class Lease:
    """A held slot. Long streams call `keepalive()` so the lease outlives `lease_seconds`."""

    def __init__(self, limiter: RedisLimiter | None, token: str) -> None:
        self._limiter = limiter
        self.token = token
        self._renewed_at = limiter.clock() if limiter is not None else 0.0

    def keepalive(self) -> None:
        """Renew the lease if a third of its lifetime has passed; cheap to call often."""
        if self._limiter is None:
            return
        if self._limiter.clock() - self._renewed_at < self._limiter.lease_seconds / 3:
            return
        try:
            self._limiter._renew(self.token)
        except Exception:
            # A Redis hiccup must not break the stream being read; the next call tries again.
            logger.warning("Could not renew Moonshot lease", exc_info=True)
            return
        self._renewed_at = self._limiter.clock()


class RedisLimiter:
    """Bound concurrency and requests per minute across every process of the install.

    `max_concurrency=0` or `max_rpm=0` lifts that limit. `max_wait=None` waits for as long
    as it takes; otherwise `slot()` raises `RateLimitError` (retryable) after that many
    seconds. Waiters are not served in order; under contention any of them may go next.
    `clock` is what a lease's `keepalive()` measures its age with; injectable for tests.
    """

    def __init__(
        self,
        redis_client: Any,
        *,
        max_concurrency: int,
        max_rpm: int,
        namespace: str = "docqa:moonshot",
        lease_seconds: float = 600,
        max_wait: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis_client
        self.max_concurrency = max(0, int(max_concurrency))
        self.max_rpm = max(0, int(max_rpm))
        self.namespace = namespace
        self.lease_seconds = float(lease_seconds)
        self.max_wait = max_wait
        self.clock = clock
        # The braces are a Redis Cluster hash tag: both keys land on one node, as a
        # script touching two keys requires.
        self.leases_key = f"{{{namespace}}}:leases"
        self.requests_key = f"{{{namespace}}}:requests"
        self._acquire_script = redis_client.register_script(_ACQUIRE_LUA)
        self._renew_script = redis_client.register_script(_RENEW_LUA)

    def __repr__(self) -> str:
        return (
            f"RedisLimiter(namespace={self.namespace!r}, max_concurrency={self.max_concurrency}, "
            f"max_rpm={self.max_rpm})"
        )

    @property
    def unlimited(self) -> bool:
        """True when neither limit is set: `slot()` then never touches Redis."""
        return self.max_concurrency == 0 and self.max_rpm == 0

    @contextmanager
    def slot(self, *, on_wait: Callable[[], None] | None = None) -> Iterator[Lease]:
        """Wait for a free concurrency lease and a requests-per-minute slot; hold the lease
        until the block exits. `on_wait` is called once if there is a wait."""
        if self.unlimited:
            yield Lease(None, "")
            return
        token = uuid.uuid4().hex
        self._acquire(token, on_wait)
        try:
            yield Lease(self, token)
        finally:
            self._release(token)

    def _acquire(self, token: str, on_wait: Callable[[], None] | None = None) -> None:
        started = time.monotonic()
        deadline = None if self.max_wait is None else started + self.max_wait
        polls = 0
        while True:
            taken, wait_ms, *why = self._acquire_script(
                keys=[self.leases_key, self.requests_key],
                args=[
                    token,
                    self.max_concurrency,
                    self.max_rpm,
                    int(self.lease_seconds * 1000),
                    int(_WINDOW_SECONDS * 1000),
                    int(_CONCURRENCY_POLL_SECONDS * 1000),
                ],
            )
            if int(taken):
                waited = time.monotonic() - started
                if waited > 1.0:
                    logger.info("Waited %.1f s for a Moonshot slot", waited)
                return
            if why and int(why[0]) == _FULL:
                delay = _CONCURRENCY_POLL_SECONDS * 2 ** min(polls, 10)
            else:
                delay = int(wait_ms) / 1000  # when the minute's oldest request leaves the window
            polls += 1
            # Jitter keeps waiting processes from polling in lockstep.
            delay = min(delay, _MAX_POLL_SECONDS) * random.uniform(0.8, 1.2)
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RateLimitError(
                        f"No Moonshot slot free within {self.max_wait:g} s "
                        f"(limits: {self.max_concurrency} concurrent, {self.max_rpm}/min)",
                        type="local_limiter_timeout",
                    )
                delay = min(delay, remaining)
            if on_wait is not None:
                on_wait()
                on_wait = None  # once per wait
            released = _released(self.leases_key)
            with released:
                released.wait(delay)

    def _renew(self, token: str) -> None:
        self._renew_script(keys=[self.leases_key], args=[token, int(self.lease_seconds * 1000)])

    def _release(self, token: str) -> None:
        try:
            self.redis.zrem(self.leases_key, token)
        except Exception:
            # Never mask the caller's own outcome; the lease expires on its own.
            logger.warning("Could not release Moonshot lease; it will expire", exc_info=True)
        released = _released(self.leases_key)
        with released:
            released.notify()


_conditions: dict[str, threading.Condition] = {}
_conditions_mutex = threading.Lock()


def _released(leases_key: str) -> threading.Condition:
    """Signalled when this process gives back a lease under `leases_key` (every limiter of the
    process on the same account shares it: each thread has a client and a limiter of its own)."""
    condition = _conditions.get(leases_key)
    if condition is None:
        with _conditions_mutex:
            condition = _conditions.setdefault(leases_key, threading.Condition())
    return condition
