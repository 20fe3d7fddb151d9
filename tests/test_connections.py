"""The shared Redis pools hold as many connections as the processes need at once."""

from __future__ import annotations

import asyncio

from docqa.connections import async_redis_client, redis_client

# More than redis-py 8's default cap of 100 (500 answers at once met it in the benchmark).
AT_ONCE = 150


def test_sync_pool_serves_more_than_a_hundred_threads_at_once():
    pool = redis_client().connection_pool
    held = [pool.get_connection() for _ in range(AT_ONCE)]
    try:
        assert all(connection.send_command("PING") is None for connection in held)
        assert {connection.read_response() for connection in held} == {"PONG"}
    finally:
        for connection in held:
            pool.release(connection)


def test_async_pool_serves_more_than_a_hundred_streams_at_once():
    async def run() -> set:
        clients = [async_redis_client() for _ in range(AT_ONCE)]
        pool = clients[0].connection_pool
        held = [await pool.get_connection() for _ in range(AT_ONCE)]
        try:
            for connection in held:
                await connection.send_command("PING")
            return {await connection.read_response() for connection in held}
        finally:
            for connection in held:
                await pool.release(connection)
            await pool.disconnect()

    assert asyncio.run(run()) == {"PONG"}


def test_an_async_read_may_block_longer_than_redis_py_s_default_timeout():
    """An SSE stream's XREAD BLOCK lasts up to 10 s; redis-py 8 times reads out at 5 s."""

    async def run():
        client = async_redis_client()
        try:
            return await client.xread({"docqa:test:nothing": "0-0"}, block=6000)
        finally:
            await client.aclose()

    assert asyncio.run(run()) in ([], {}, None)
