"""The client takes a limiter slot around every HTTP attempt, and a stream keeps its slot
until it is closed."""

from __future__ import annotations

import contextlib

import pytest

from docqa.moonshot import RateLimitError, RedisLimiter

MESSAGES = [{"role": "user", "content": "hi"}]


def test_every_attempt_takes_a_requests_per_minute_slot(
    emu, make_client, sleep, redis_server, redis_namespace
):
    limiter = RedisLimiter(
        redis_server, max_concurrency=0, max_rpm=3, namespace=redis_namespace, max_wait=0.2
    )
    client = make_client(emu.base_url, emu.api_key, limiter=limiter)
    emu.control.add_fault("GET", "/v1/models", status=429, count=2)
    client.models_list()  # two 429s and a success: three attempts, three slots
    assert len(sleep.waits) == 2
    before = emu.control.stats()["requests"].get("GET /v1/users/me/balance", 0)
    with pytest.raises(RateLimitError) as caught:
        client.balance()
    assert caught.value.type == "local_limiter_timeout"
    # Refused locally: the request never left, and the client did not retry it.
    assert emu.control.stats()["requests"].get("GET /v1/users/me/balance", 0) == before
    assert len(sleep.waits) == 2


def test_a_stream_holds_its_slot_until_closed(emu, make_client, redis_server, redis_namespace):
    def limiter() -> RedisLimiter:
        # One limiter per client, as separate worker processes would have.
        return RedisLimiter(
            redis_server, max_concurrency=1, max_rpm=0, namespace=redis_namespace, max_wait=0.3
        )

    streaming = make_client(emu.base_url, emu.api_key, limiter=limiter())
    other = make_client(emu.base_url, emu.api_key, limiter=limiter())
    stream = streaming.chat_completion_stream(model="moonshot-v1-8k", messages=MESSAGES)
    with contextlib.closing(stream):
        next(stream)
        with pytest.raises(RateLimitError):
            other.models_list()
    assert other.models_list()


def test_exhausted_stream_releases_its_slot(emu, make_client, redis_server, redis_namespace):
    limiter = RedisLimiter(
        redis_server, max_concurrency=1, max_rpm=0, namespace=redis_namespace, max_wait=0.3
    )
    client = make_client(emu.base_url, emu.api_key, limiter=limiter)
    for _ in range(3):
        assert list(client.chat_completion_stream(model="moonshot-v1-8k", messages=MESSAGES))
    assert redis_server.zcard(limiter.leases_key) == 0
