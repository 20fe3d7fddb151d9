"""At most N requests in Django at once per web process; the rest wait on the event loop.

Django runs each request's sync views and middleware in a thread of its own. With hundreds
of requests in flight (a class asking at once) that is hundreds of threads taking turns
with one interpreter lock: each request's CPU time grows with the crowd and every one of
them finishes late. This ASGI wrapper lets `limit` requests into Django at a time; the
others wait, at no cost, in the event loop.

A request takes its turn once its whole body has arrived (a slow client uploading does not
hold one) and gives it back when its response starts (a Server-Sent Events stream, which
then lasts as long as the page is open, holds none while it streams).
"""

from __future__ import annotations

import asyncio
import weakref


def request_limit(app, limit: int):
    if limit <= 0:
        return app
    semaphores: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # one per event loop

    async def limited(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        loop = asyncio.get_running_loop()
        semaphore = semaphores.get(loop)
        if semaphore is None:
            semaphore = semaphores[loop] = asyncio.Semaphore(limit)
        holding = False

        async def turn_receive():
            nonlocal holding
            message = await receive()
            if not holding and message["type"] == "http.request" and not message.get("more_body", False):
                await semaphore.acquire()
                holding = True
            return message

        def release() -> None:
            nonlocal holding
            if holding:
                holding = False
                semaphore.release()

        async def turn_send(message):
            if message["type"] == "http.response.start":
                release()
            await send(message)

        try:
            await app(scope, turn_receive, turn_send)
        finally:
            release()

    return limited
