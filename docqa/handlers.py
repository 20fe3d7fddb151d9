"""Django's ASGI handler, with the middleware chain and a sync view run in one thread hop.

Under ASGI Django builds the middleware chain in async mode: every sync hook of the stock
middleware goes through `sync_to_async`, WhiteNoise (sync only) switches back with
`async_to_sync`, `process_view` hops again and a sync view once more — about fifteen
handoffs between the event loop and a thread per request, each one waiting for the loop.
This handler builds the chain as WSGI does, in sync mode with Django's sync `_get_response`
inside, and runs it with one call on a thread of its own pool: one handoff per request.

Our views are all sync; the SSE stream's body is an async iterator, which `send_response`
iterates on the event loop (its sync work goes through `stream_sync`). An async view would
still work (sync `_get_response` wraps it in `async_to_sync`, and its `sync_to_async` calls
come back to the same pool thread), at the cost of a second loop hop per request.

The pool's threads live as long as the process, as a WSGI server's do, so a SQLite
connection is kept between requests (opening one and running its PRAGMAs cost more than the
queries of a typical page). Other databases are closed or handed back to their pool at the
end of each request, as `CONN_MAX_AGE` says.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.db import connections


def _connections_release() -> None:
    for connection in connections.all(initialized_only=True):
        if (
            connection.vendor == "sqlite"
            and not connection.in_atomic_block
            and not connection.errors_occurred
        ):
            continue
        connection.close_if_unusable_or_obsolete()


class SyncChainASGIHandler(ASGIHandler):
    def __init__(self, threads: int = 16) -> None:
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="docqa-web")
        # Django sends `request_started` and `request_finished` with `asend`, whose sync
        # receivers (reset_queries, close_old_connections) run thread-sensitively: in stock
        # Django's per-request context that is a thread started for each request and a second
        # one started to join it at the end (6% of the web process's samples at 500 answers at
        # once). One thread that lives as long as the process runs them instead.
        self.signals_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="docqa-signals")
        super().__init__()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        async with ThreadSensitiveContext(executor=self.signals_executor):
            await self.handle(scope, receive, send)

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        if not is_async:
            return
        chain = self._middleware_chain

        def run(request):
            try:
                return chain(request)
            finally:
                _connections_release()

        self._middleware_chain = sync_to_async(run, thread_sensitive=False, executor=self.executor)


# Sync work an async response does after its view returned (an SSE stream's renders and
# reads). Left to `sync_to_async`'s default, each such call runs in the thread Django's
# per-request `ThreadSensitiveContext` starts for that request: a new thread, and on SQLite a
# new connection (opened, PRAGMAs run, functions registered), per stream.
_stream_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="docqa-stream")


def stream_sync(fn):
    """`fn` as an awaitable run on a few threads that live as long as the process."""

    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            _connections_release()

    return sync_to_async(run, thread_sensitive=False, executor=_stream_executor)
