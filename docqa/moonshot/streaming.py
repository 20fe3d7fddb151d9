"""A streamed chat completion: open it with retries, then hand out chunks as events arrive.

The stream retries only while opening; once an event has been handed out, a cut raises
`StreamInterrupted` with the partial text, never a silent second request whose answer
would differ.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import requests
import urllib3.exceptions

from docqa.moonshot.errors import MoonshotError, StreamInterrupted, error_for_event
from docqa.moonshot.sse import SSEEvent, SSEParser
from docqa.moonshot.transport import Transport
from docqa.moonshot.types import ChatChunk

# The client's logger since before the split: operators' log filters name it.
logger = logging.getLogger("docqa.moonshot.client")

# read1() returns whatever the socket has, up to this much, without waiting to fill it.
_STREAM_READ_SIZE = 64 * 1024


def stream_chunks(
    transport: Transport, payload: dict[str, Any], on_sent: Callable[[], None] | None = None
) -> Iterator[list[ChatChunk]]:
    """Chunks of a streamed `/chat/completions`, in lists of those one socket read completed.

    `on_sent` is called once, when the response headers are in. The limiter slot is held
    until the iterator is exhausted or closed.
    """
    method, path = "POST", "/chat/completions"
    # Compression would make a proxy or server hold deltas back to fill its blocks.
    headers = {"Accept": "text/event-stream", "Accept-Encoding": "identity"}
    attempt = 0
    while True:
        stack = ExitStack()
        try:
            lease = stack.enter_context(transport.slot())
            response = transport.send(stack, method, path, json_body=payload, stream=True, headers=headers)
            stack.callback(response.close)
            if on_sent is not None:
                on_sent, sent = None, on_sent
                sent()
            batches = _events(transport, response, method, path)
            # The opening phase lasts until the first event: up to there a retry
            # cannot duplicate anything the caller has seen.
            first_batch = next(batches, None)
            if first_batch is None:
                raise StreamInterrupted("Stream ended before its first event")
            error = _event_error(transport, first_batch[0])
            if error is not None:
                raise error
            break
        except MoonshotError as error:
            stack.close()
            attempt += 1
            delay = transport.retry_delay(error, attempt)
            if delay is None:
                raise
            transport.log_retry(method, path, error, attempt, delay)
            transport.sleep(delay)
        except BaseException:
            stack.close()
            raise

    with stack:
        keepalive = getattr(lease, "keepalive", None)
        content: list[str] = []
        reasoning: list[str] = []
        finished = False

        def interrupted(message: str) -> StreamInterrupted:
            return StreamInterrupted(
                message,
                partial_content="".join(content),
                partial_reasoning="".join(reasoning),
            )

        batch: list[SSEEvent] | None = first_batch
        while batch is not None:
            chunks: list[ChatChunk] = []
            for event in batch:
                if event.data.strip() == "[DONE]":
                    if chunks:
                        yield chunks
                    return
                try:
                    data = json.loads(event.data)
                except ValueError:
                    raise interrupted("Stream sent an event that is not JSON") from None
                if isinstance(data, dict) and "error" in data:
                    # The typed error (a content filter is not a cut connection), with
                    # what had arrived before it.
                    # Whatever the event echoes (the key, say) is redacted like an HTTP error body.
                    error = error_for_event(json.loads(transport.redact(event.data))["error"])
                    error.partial_content = "".join(content)
                    error.partial_reasoning = "".join(reasoning)
                    raise error from None
                chunk = ChatChunk.from_api(data if isinstance(data, dict) else {})
                content.append(chunk.content)
                reasoning.append(chunk.reasoning_content)
                finished = finished or chunk.finish_reason is not None
                chunks.append(chunk)
            if chunks:
                yield chunks
            if keepalive is not None:
                keepalive()
            try:
                batch = next(batches, None)
            except MoonshotError as error:
                raise interrupted(f"Stream broke: {error}") from None
        if not finished:
            raise interrupted("Stream ended before the answer was finished")
        # A finish_reason was seen but no [DONE]: the answer is whole, only the trailer
        # (and perhaps a usage chunk) is missing.
        logger.info("Moonshot stream ended after finish_reason without [DONE]")


def _events(
    transport: Transport, response: requests.Response, method: str, path: str
) -> Iterator[list[SSEEvent]]:
    """Events as their bytes arrive, in lists of those one read completed (never empty).

    `raw.read1()` returns whatever the socket holds, so a delta is parsed the moment it
    lands; `iter_content()`/`iter_lines()` would wait to fill a chunk (always, for a
    body without chunked encoding).
    """
    parser = SSEParser()
    raw = response.raw
    while True:
        try:
            data = raw.read1(_STREAM_READ_SIZE, decode_content=True)
        except (
            requests.RequestException,
            urllib3.exceptions.HTTPError,
            OSError,
            ValueError,  # reading a response urllib3 already closed
        ) as exc:
            raise transport.transport_error(method, path, exc) from None
        if not data:
            break
        events = parser.feed(data)
        if events:
            yield events
    events = parser.close()
    if events:
        yield events


def _event_error(transport: Transport, event: SSEEvent) -> MoonshotError | None:
    """The typed error when an event is `{"error": {...}}` instead of a chunk."""
    if '"error"' not in event.data:
        return None
    try:
        data = json.loads(event.data)
    except ValueError:
        return None
    if isinstance(data, dict) and "error" in data:
        return error_for_event(json.loads(transport.redact(event.data))["error"])
    return None
