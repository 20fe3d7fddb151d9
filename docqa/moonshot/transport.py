"""One Moonshot account's HTTP session: attempts, retries and the typed error of a failure.

Retries live here, so callers see either a result or one typed error that has already had
its fair share of attempts:

- 429 `rate_limit_reached_error`: wait at least 3 s (Moonshot's docs warn that retrying at
  once earns a penalty), longer if `Retry-After` says so;
- 429 `engine_overloaded_error`, 5xx, timeouts, broken connections: exponential backoff with full jitter, 1 s base, 30 s cap;
- 400 (and `content_filter`), 401, 403, 404, 429 `exceeded_current_quota_error`, and an
  error type nobody documented: never; the same request would fail the same way, or
  nothing says it would not.

A caller may narrow this per request (`retry_transport_errors=False`, see
`MoonshotClient.files_create`); a stream retries only while opening (see `streaming`).
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, nullcontext
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from docqa.moonshot.errors import (
    RATE_LIMIT_REACHED,
    MoonshotConnectionError,
    MoonshotError,
    MoonshotTimeout,
    RateLimitError,
    error_for_response,
)
from docqa.moonshot.redaction import secrets_redact

# The client's logger since before the split: operators' log filters name it.
logger = logging.getLogger("docqa.moonshot.client")

_RATE_LIMIT_WAIT = 3.0
_BACKOFF_BASE = 1.0
_BACKOFF_CAP = 30.0
# A server asking for a longer pause than this is better answered by failing now and letting
# the task queue schedule the retry than by parking a worker thread.
_MAX_RETRY_AFTER = 60.0

# Builds a request body inside the attempt's ExitStack (so a file opened for it is closed
# with the attempt); returns the body and its headers.
BodyFactory = Callable[[ExitStack], tuple[Any, dict[str, str]]]
# Wraps one attempt: observe(method, path, stream=...) -> a context manager that sees it end
# (or raise a typed error).
AttemptObserver = Callable[..., AbstractContextManager[Any]]


class Transport:
    """A `requests.Session` for one base URL and key, with Moonshot's retry rules.

    Every HTTP attempt first takes a slot from `limiter` (see `RedisLimiter`) when one is
    given. `max_retries` counts the attempts after the first. `sleep` is injectable only so
    tests can record the waits. `observe`, when given, wraps every attempt (metrics: the
    client itself knows nothing of where they go).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        max_retries: int,
        limiter: Any,
        sleep: Callable[[float], None],
        observe: AttemptObserver | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_retries = max(0, int(max_retries))
        self.limiter = limiter
        self.sleep = sleep
        self.observe = observe
        # Told (with the error, or None for the limiter) each time a call is about to wait:
        # a caller that keeps a user waiting can say why (see MoonshotClient.waits_reported).
        self.on_wait: Callable[[MoonshotError | None], None] | None = None
        self._session = requests.Session()
        self._session.headers["Accept"] = "application/json"
        if api_key:
            self._session.headers["Authorization"] = f"Bearer {api_key}"

    @property
    def has_key(self) -> bool:
        return bool(self._api_key)

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body_factory: BodyFactory | None = None,
        retry_transport_errors: bool = True,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """Send with retries; return a response whose body has been read."""
        attempt = 0
        while True:
            with ExitStack() as stack:
                stack.enter_context(self.slot())
                try:
                    return self.send(
                        stack,
                        method,
                        path,
                        json_body=json_body,
                        body_factory=body_factory,
                        stream=False,
                        headers=headers,
                    )
                except MoonshotError as error:
                    failure = error
            attempt += 1
            delay = self.retry_delay(failure, attempt, retry_transport_errors=retry_transport_errors)
            if delay is None:
                raise failure
            self.log_retry(method, path, failure, attempt, delay)
            if self.on_wait is not None:
                self.on_wait(failure)
            self.sleep(delay)

    def send(
        self,
        stack: ExitStack,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body_factory: BodyFactory | None = None,
        stream: bool,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """One HTTP attempt. Error statuses and transport failures become typed errors."""
        if self.observe is None:
            return self._send(stack, method, path, json_body, body_factory, stream, headers)
        with self.observe(method, path, stream=stream):
            return self._send(stack, method, path, json_body, body_factory, stream, headers)

    def _send(
        self,
        stack: ExitStack,
        method: str,
        path: str,
        json_body: Any,
        body_factory: BodyFactory | None,
        stream: bool,
        headers: dict[str, str] | None,
    ) -> requests.Response:
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
            raise self.transport_error(method, path, exc) from None
        if response.status_code >= 400:
            try:
                body = response.content
            except requests.RequestException:
                body = b""
            finally:
                response.close()
            raise error_for_response(
                response.status_code,
                self.redact(body.decode("utf-8", errors="replace")),
                reason=response.reason or "",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        return response

    def slot(self) -> AbstractContextManager[Any]:
        """The limiter's slot for one attempt (nothing to wait for without a limiter)."""
        if self.limiter is None:
            return nullcontext()
        if self.on_wait is None:
            return self.limiter.slot()
        on_wait = self.on_wait
        return self.limiter.slot(on_wait=lambda: on_wait(None))

    def retry_delay(
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

    def log_retry(self, method: str, path: str, error: MoonshotError, attempt: int, delay: float) -> None:
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

    def transport_error(self, method: str, path: str, exc: BaseException) -> MoonshotError:
        """The typed error for a failure below HTTP (no status): timeout, refused, reset."""
        reason = self.redact(_root_cause(exc))
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

    def redact(self, text: str) -> str:
        """`text` without the API key: servers and proxies sometimes echo the header they
        rejected."""
        return secrets_redact(text, api_key=self._api_key, replacement="***")

    def json(self, response: requests.Response) -> dict[str, Any]:
        """The response's JSON object, or a `MoonshotError` quoting (redacted) what came instead."""
        try:
            data = json.loads(response.content)
        except ValueError:
            snippet = self.redact(response_text(response)[:120])
            raise MoonshotError(
                f"Expected JSON from {urlsplit(response.url).path}, got: {snippet!r}",
                status=response.status_code,
            ) from None
        if not isinstance(data, dict):
            raise MoonshotError("Expected a JSON object", status=response.status_code)
        return data


def response_text(response: requests.Response) -> str:
    """The body as text, UTF-8 unless the response names another charset."""
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


def parse_retry_after(value: str | None) -> float | None:
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
