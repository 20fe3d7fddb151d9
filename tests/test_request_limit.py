"""docqa.request_limit: at most N requests inside Django at once, none held by slow bodies or streams.

Driven with plain ASGI callables (an app that counts who is inside, and queues standing in
for the server's receive and send), so the limit is checked exactly, without a clock.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from docqa.request_limit import request_limit


def run(scenario) -> None:
    """asyncio.run in a thread of its own: the browser tests keep a loop running in this one."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, scenario()).result()


class App:
    """An ASGI app that reads the body, then waits for `release` before it responds."""

    def __init__(self, *, stream: bool = False) -> None:
        self.inside = 0
        self.most_inside = 0
        self.release = asyncio.Event()
        self.stream = stream

    async def __call__(self, scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        try:
            if self.stream:  # a Server-Sent Events view: headers at once, then a long body
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await self.release.wait()
            else:
                await self.release.wait()
                await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
        finally:
            self.inside -= 1


def request(app, body_parts=(b"",), *, complete=True):
    """Run one request; returns (task, queue the test feeds body parts into, sent messages)."""
    incoming: asyncio.Queue = asyncio.Queue()
    for index, part in enumerate(body_parts):
        last = index == len(body_parts) - 1
        incoming.put_nowait({"type": "http.request", "body": part, "more_body": not (last and complete)})
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    task = asyncio.ensure_future(app({"type": "http", "method": "POST", "path": "/"}, incoming.get, send))
    return task, incoming, sent


async def settle():
    for _ in range(20):
        await asyncio.sleep(0)


def test_no_more_than_the_limit_inside_and_the_rest_go_in_turn():
    async def scenario():
        inner = App()
        app = request_limit(inner, 2)
        tasks = [request(app)[0] for _ in range(5)]
        await settle()
        assert inner.inside == 2
        inner.release.set()
        await asyncio.gather(*tasks)
        assert inner.most_inside == 2

    run(scenario)


def test_a_started_stream_and_a_slow_body_hold_no_turn():
    async def scenario():
        streaming = App(stream=True)
        app = request_limit(streaming, 1)
        stream_task, _, stream_sent = request(app)
        await settle()
        assert stream_sent[0]["type"] == "http.response.start"  # streaming now, turn given back
        slow_task, slow_body, _ = request(app, body_parts=(b"first half",), complete=False)
        await settle()
        quick_task, _, _ = request(app)
        await settle()
        assert streaming.inside == 2  # the stream and the quick request; the slow body waits outside
        slow_body.put_nowait({"type": "http.request", "body": b"rest", "more_body": False})
        streaming.release.set()
        await asyncio.gather(stream_task, slow_task, quick_task)

    run(scenario)


def test_zero_means_no_limit():
    inner = App()
    assert request_limit(inner, 0) is inner
