"""Run the whole middleware chain and the view in one thread, not one hop per hook.

Under ASGI Django runs a middleware chain in async mode when it can, calling each sync
`process_request`/`process_response` hook of the stock middleware through `sync_to_async`,
and WhiteNoise (sync only) switches back again: about fifteen thread handoffs per request
before a sync view even starts (3 ms of the 11 ms an ask took). Our views are sync apart from
the SSE stream, so this sync-only middleware, last in `MIDDLEWARE`, makes Django build the
chain in sync mode: one handoff into a thread for the whole request. The SSE view still
streams on the event loop (Django runs an async view from a sync chain with `async_to_sync`
and iterates its async response body on the loop).
"""

from __future__ import annotations


class SyncChainMiddleware:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)
