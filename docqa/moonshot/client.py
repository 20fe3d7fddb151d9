"""The HTTP client for Moonshot AI's API (and docqa's local emulator, which speaks the same).

Retries live here, so callers see either a result or one typed error that has already had
its fair share of attempts:

- 429 `rate_limit_reached_error`: wait at least 3 s (Moonshot's docs warn that retrying at
  once earns a penalty), longer if `Retry-After` says so;
- 5xx, timeouts, broken connections: exponential backoff with full jitter, 1 s base, 30 s cap;
- 400, 401, 403, 404 and 429 `exceeded_current_quota_error`: never; the same request would
  fail the same way.

Two calls are narrower. `files_create` does not retry a timeout or a broken connection: the
upload may have landed, and a blind retry could leave a second remote file nobody knows
about; only answers that came back with a status (429, 5xx) are retried, and the caller
decides the rest (it can list files to reconcile). `chat_completion_stream` retries only
while opening; once an event has been handed out, a cut raises `StreamInterrupted` with the
partial text, never a silent second request whose answer would differ.
"""

from __future__ import annotations

import email.utils
import json
import logging
import mimetypes
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, closing, nullcontext
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import urllib3.exceptions
from requests_toolbelt.multipart.encoder import MultipartEncoder

from docqa.moonshot.errors import (
    RATE_LIMIT_REACHED,
    MoonshotConnectionError,
    MoonshotError,
    MoonshotTimeout,
    RateLimitError,
    StreamInterrupted,
    error_for_event,
    error_for_response,
)
from docqa.moonshot.sse import SSEEvent, SSEParser
from docqa.moonshot.types import Balance, ChatChunk, FileObject, ModelInfo

logger = logging.getLogger("docqa.moonshot.client")

DEFAULT_BASE_URL = "https://api.moonshot.cn/v1"

_RATE_LIMIT_WAIT = 3.0
_BACKOFF_BASE = 1.0
_BACKOFF_CAP = 30.0
# A server asking for a longer pause than this is better answered by failing now and letting
# the task queue schedule the retry than by parking a worker thread.
_MAX_RETRY_AFTER = 60.0
# read1() returns whatever the socket has, up to this much, without waiting to fill it.
_STREAM_READ_SIZE = 64 * 1024


class MoonshotClient:
    """A client for one Moonshot account.

    One `requests.Session` per client keeps connections alive between calls; build one
    client per thread (or per task) rather than sharing one across threads. Every HTTP
    attempt first takes a slot from `limiter` (see `RedisLimiter`) when one is given.
    `max_retries` counts the attempts after the first. `sleep` is injectable only so tests
    can record the waits.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str = "",
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 120.0,
        max_retries: int = 4,
        limiter: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_retries = max(0, int(max_retries))
        self.limiter = limiter
        self._sleep = sleep
        self._session = requests.Session()
        self._session.headers["Accept"] = "application/json"
        if api_key:
            self._session.headers["Authorization"] = f"Bearer {api_key}"

    def __repr__(self) -> str:
        key = "***" if self._api_key else "None"
        return f"MoonshotClient(base_url={self.base_url!r}, api_key={key})"

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()

    def __enter__(self) -> MoonshotClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Files

    def files_create(
        self, path: os.PathLike[str] | str, *, filename: str, purpose: str = "file-extract"
    ) -> FileObject:
        """Upload a file, streaming it from disk in small blocks (memory stays constant).

        The file is reopened for each attempt. Timeouts and connection errors are raised at
        once, not retried: the upload may have reached Moonshot (see the module docstring).
        An unreadable local file raises `OSError` before anything is sent.
        """
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"

        def open_body(stack: ExitStack) -> tuple[MultipartEncoder, dict[str, str]]:
            handle = stack.enter_context(open(path, "rb"))  # noqa: SIM115 - closed by the ExitStack
            encoder = MultipartEncoder(fields={"purpose": purpose, "file": (filename, handle, content_type)})
            return encoder, {"Content-Type": encoder.content_type}

        response = self._request("POST", "/files", body_factory=open_body, retry_transport_errors=False)
        return FileObject.from_api(self._json(response))

    def files_list(self) -> list[FileObject]:
        """All files of the account."""
        data = self._json(self._request("GET", "/files"))
        return [FileObject.from_api(item) for item in data.get("data") or []]

    def files_retrieve(self, file_id: str) -> FileObject:
        """One file's metadata, including its extraction `status`."""
        return FileObject.from_api(self._json(self._request("GET", _file_path(file_id))))

    def files_content(self, file_id: str) -> str:
        """The extracted text exactly as the API returns it (usually a JSON string)."""
        response = self._request("GET", _file_path(file_id) + "/content")
        return _text(response)

    def files_delete(self, file_id: str) -> bool:
        """Delete a file. True when deleted; a missing file raises `NotFoundError`."""
        data = self._json(self._request("DELETE", _file_path(file_id)))
        return bool(data.get("deleted", True))

    # Chat

    def chat_completion(self, *, model: str, messages: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
        """A whole (non-streamed) chat completion, as the API's JSON."""
        if params.pop("stream", False):
            raise ValueError("use chat_completion_stream() for streamed completions")
        payload = {"model": model, "messages": messages, **params}
        return self._json(self._request("POST", "/chat/completions", json_body=payload))

    def chat_completion_stream(
        self, *, model: str, messages: list[dict[str, Any]], **params: Any
    ) -> Iterator[ChatChunk]:
        """Stream a chat completion, yielding each chunk as soon as its event arrives.

        The request is sent on the first `next()`. The limiter slot is held until the
        iterator is exhausted or closed; close it (`contextlib.closing`) when stopping early.
        Raises `StreamInterrupted` (with the partial text) if the stream breaks after the
        first chunk or ends without `[DONE]` or a `finish_reason`.
        """
        batches = self.chat_completion_stream_batches(model=model, messages=messages, **params)
        with closing(batches):  # closing this iterator closes the stream (and frees its slot) at once
            for batch in batches:
                yield from batch

    def chat_completion_stream_batches(
        self,
        *,
        model: str,
        messages: list[dict[str, Any]],
        on_sent: Callable[[], None] | None = None,
        **params: Any,
    ) -> Iterator[list[ChatChunk]]:
        """`chat_completion_stream`, but each item is every chunk that one socket read
        completed: one chunk when the reader keeps up, several when it fell behind, so a
        relay can pass them on together (fewer writes, same arrival times).

        `on_sent` is called once, as soon as Moonshot has accepted the request (its response
        headers are in) and before the wait for the first token: work to do meanwhile.
        """
        payload = {"model": model, "messages": messages, **params, "stream": True}
        return self._stream_chunks(payload, on_sent)

    # Models, tokens, balance

    def models_list(self) -> list[ModelInfo]:
        """The models this key may use."""
        data = self._json(self._request("GET", "/models"))
        return [ModelInfo.from_api(item) for item in data.get("data") or []]

    def estimate_token_count(self, *, model: str, messages: list[dict[str, Any]]) -> int:
        """How many tokens `messages` take for `model`, counted by the API."""
        payload = {"model": model, "messages": messages}
        data = self._json(self._request("POST", "/tokenizers/estimate-token-count", json_body=payload))
        try:
            return int(data["data"]["total_tokens"])
        except (KeyError, TypeError, ValueError) as exc:
            raise MoonshotError("Token estimate response has no data.total_tokens") from exc

    def balance(self) -> Balance:
        """The account's balance in yuan."""
        data = self._json(self._request("GET", "/users/me/balance"))
        return Balance.from_api(data.get("data") or {})

    # Requests and retries

    def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body_factory: Callable[[ExitStack], tuple[Any, dict[str, str]]] | None = None,
        retry_transport_errors: bool = True,
    ) -> requests.Response:
        """Send with retries; return a response whose body has been read."""
        attempt = 0
        while True:
            with ExitStack() as stack:
                stack.enter_context(self._slot())
                try:
                    return self._send(
                        stack,
                        method,
                        path,
                        json_body=json_body,
                        body_factory=body_factory,
                        stream=False,
                    )
                except MoonshotError as error:
                    failure = error
            attempt += 1
            delay = self._retry_delay(failure, attempt, retry_transport_errors=retry_transport_errors)
            if delay is None:
                raise failure
            self._log_retry(method, path, failure, attempt, delay)
            self._sleep(delay)

    def _send(
        self,
        stack: ExitStack,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body_factory: Callable[[ExitStack], tuple[Any, dict[str, str]]] | None = None,
        stream: bool,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """One HTTP attempt. Error statuses and transport failures become typed errors."""
        request_headers = dict(headers or {})
        data = None
        if body_factory is not None:
            data, body_headers = body_factory(stack)
            request_headers.update(body_headers)
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                json=json_body,
                data=data,
                headers=request_headers,
                timeout=(self.connect_timeout, self.read_timeout),
                stream=stream,
            )
        except requests.RequestException as exc:
            raise self._transport_error(method, path, exc) from None
        if response.status_code >= 400:
            try:
                body = response.content
            except requests.RequestException:
                body = b""
            finally:
                response.close()
            raise error_for_response(
                response.status_code,
                self._redact(body.decode("utf-8", errors="replace")),
                reason=response.reason or "",
                retry_after=_parse_retry_after(response.headers.get("Retry-After")),
            )
        return response

    def _slot(self) -> AbstractContextManager[Any]:
        if self.limiter is None:
            return nullcontext()
        return self.limiter.slot()

    def _retry_delay(
        self, error: MoonshotError, attempt: int, *, retry_transport_errors: bool = True
    ) -> float | None:
        """Seconds to wait before attempt number `attempt + 1`, or None to give up."""
        if not error.retryable or attempt > self.max_retries:
            return None
        if error.type == "local_limiter_timeout":
            return None  # the limiter already waited as long as it was allowed to
        if not retry_transport_errors and isinstance(error, (MoonshotTimeout, MoonshotConnectionError)):
            return None
        if error.retry_after is not None and error.retry_after > _MAX_RETRY_AFTER:
            return None
        if isinstance(error, RateLimitError) or error.type == RATE_LIMIT_REACHED:
            # Jitter on top of the floor spreads out workers that were throttled together.
            return max(_RATE_LIMIT_WAIT, error.retry_after or 0.0) + random.uniform(0, 1)
        backoff = random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** (attempt - 1)))
        return max(backoff, error.retry_after or 0.0)

    def _log_retry(self, method: str, path: str, error: MoonshotError, attempt: int, delay: float) -> None:
        logger.warning(
            "Moonshot %s %s failed (%s: %s); retry %d of %d in %.1f s",
            method,
            path,
            type(error).__name__,
            error,
            attempt,
            self.max_retries,
            delay,
        )

    def _transport_error(self, method: str, path: str, exc: BaseException) -> MoonshotError:
        reason = self._redact(_root_cause(exc))
        if isinstance(exc, requests.ConnectTimeout):
            return MoonshotTimeout(f"{method} {path}: no connection within {self.connect_timeout:g} s")
        if _is_timeout(exc):
            return MoonshotTimeout(f"{method} {path}: no response within {self.read_timeout:g} s")
        if isinstance(
            exc,
            (
                requests.ConnectionError,
                requests.exceptions.ChunkedEncodingError,
                urllib3.exceptions.ProtocolError,
                urllib3.exceptions.HTTPError,
                OSError,
            ),
        ):
            return MoonshotConnectionError(f"{method} {path}: connection failed ({reason})")
        return MoonshotError(f"{method} {path}: request failed ({reason})")

    def _redact(self, text: str) -> str:
        # Servers and proxies sometimes echo the header they rejected.
        if self._api_key and len(self._api_key) >= 4:
            return text.replace(self._api_key, "***")
        return text

    def _json(self, response: requests.Response) -> dict[str, Any]:
        try:
            data = json.loads(response.content)
        except ValueError:
            snippet = self._redact(_text(response)[:120])
            raise MoonshotError(
                f"Expected JSON from {urlsplit(response.url).path}, got: {snippet!r}",
                status=response.status_code,
            ) from None
        if not isinstance(data, dict):
            raise MoonshotError("Expected a JSON object", status=response.status_code)
        return data

    # Streaming

    def _stream_chunks(
        self, payload: dict[str, Any], on_sent: Callable[[], None] | None = None
    ) -> Iterator[list[ChatChunk]]:
        method, path = "POST", "/chat/completions"
        # Compression would make a proxy or server hold deltas back to fill its blocks.
        headers = {"Accept": "text/event-stream", "Accept-Encoding": "identity"}
        attempt = 0
        while True:
            stack = ExitStack()
            try:
                lease = stack.enter_context(self._slot())
                response = self._send(stack, method, path, json_body=payload, stream=True, headers=headers)
                stack.callback(response.close)
                if on_sent is not None:
                    on_sent, sent = None, on_sent
                    sent()
                batches = self._events(response, method, path)
                # The opening phase lasts until the first event: up to there a retry
                # cannot duplicate anything the caller has seen.
                first_batch = next(batches, None)
                if first_batch is None:
                    raise StreamInterrupted("Stream ended before its first event")
                error = _event_error(first_batch[0])
                if error is not None:
                    raise error
                break
            except MoonshotError as error:
                stack.close()
                attempt += 1
                delay = self._retry_delay(error, attempt)
                if delay is None:
                    raise
                self._log_retry(method, path, error, attempt, delay)
                self._sleep(delay)
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
                        error = error_for_event(data["error"])
                        raise interrupted(f"Stream stopped with an error: {error}") from None
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

    def _events(self, response: requests.Response, method: str, path: str) -> Iterator[list[SSEEvent]]:
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
                raise self._transport_error(method, path, exc) from None
            if not data:
                break
            events = parser.feed(data)
            if events:
                yield events
        events = parser.close()
        if events:
            yield events


def _event_error(event: SSEEvent) -> MoonshotError | None:
    """The typed error when an event is `{"error": {...}}` instead of a chunk."""
    if '"error"' not in event.data:
        return None
    try:
        data = json.loads(event.data)
    except ValueError:
        return None
    if isinstance(data, dict) and "error" in data:
        return error_for_event(data["error"])
    return None


def _file_path(file_id: str) -> str:
    if not file_id:
        raise ValueError("file_id must not be empty")
    return "/files/" + quote(file_id, safe="")


def _text(response: requests.Response) -> str:
    # requests would guess ISO-8859-1 for text/* without a charset and mangle Chinese text;
    # the API sends UTF-8.
    content_type = response.headers.get("Content-Type", "")
    charset = "utf-8"
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            charset = value.strip('"')
    try:
        return response.content.decode(charset, errors="replace")
    except LookupError:
        return response.content.decode("utf-8", errors="replace")


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (a number or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what it wraps: requests and urllib3 nest several layers deep."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        following = getattr(current, "reason", None)
        if not isinstance(following, BaseException):
            following = next((a for a in current.args if isinstance(a, BaseException)), None)
        if following is None:
            following = current.__cause__ or current.__context__
        current = following


def _is_timeout(exc: BaseException) -> bool:
    # requests reports a read timeout during a body read as a ConnectionError wrapping
    # urllib3's ReadTimeoutError, so the class alone is not enough.
    # urllib3's NewConnectionError ("connection refused") subclasses its ConnectTimeoutError
    # for backwards compatibility; it is not a timeout.
    return any(
        isinstance(cause, (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError))
        and not isinstance(cause, urllib3.exceptions.NewConnectionError)
        for cause in _causes(exc)
    )


def _root_cause(exc: BaseException) -> str:
    """A short reason ("Connection refused") instead of urllib3's nested repr."""
    *_, innermost = _causes(exc)
    if isinstance(innermost, OSError) and innermost.strerror:
        return innermost.strerror
    if isinstance(innermost, TimeoutError):
        return "timed out"
    text = str(innermost) or type(innermost).__name__
    # urllib3 prefixes its messages with the connection object's repr.
    return text.split(": ", 1)[-1] if text.startswith("<") else text
