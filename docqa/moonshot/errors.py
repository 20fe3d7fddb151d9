"""Typed errors for everything that can go wrong when talking to Moonshot.

Callers (Celery tasks above all) decide what to do from the class alone: `.retryable` says
whether trying the same call later can succeed. Messages are short and human; the client
redacts the API key from anything the server echoes before it builds an error.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

# Moonshot's error types. The first four are the error table of seed 002 (401, 400, 429,
# 429); the others are the rest of the table in Moonshot's current docs (403, 404, 429
# overloaded, 500, content filter). Each has a class below, and so a retry decision.
INVALID_AUTHENTICATION = "invalid_authentication_error"
INVALID_REQUEST = "invalid_request_error"
RATE_LIMIT_REACHED = "rate_limit_reached_error"
EXCEEDED_CURRENT_QUOTA = "exceeded_current_quota_error"
PERMISSION_DENIED = "permission_denied_error"
RESOURCE_NOT_FOUND = "resource_not_found_error"
ENGINE_OVERLOADED = "engine_overloaded_error"
SERVER_ERROR = "server_error"
CONTENT_FILTER = "content_filter"

# How the API words "your messages do not fit the model", e.g.
# "Invalid request: Your request exceeded model token limit: 8192".
_CONTEXT_LENGTH_HINTS = ("token limit", "context length", "too long", "exceeded model")

# Enough of a non-JSON body (an HTML page from a proxy) to tell what happened.
_MAX_BODY_IN_MESSAGE = 200


class MoonshotError(Exception):
    """Base class of every error the Moonshot client raises."""

    retryable: ClassVar[bool] = False
    # What a stream had sent before it failed (set by `streaming` on an error mid-stream).
    partial_content: str = ""
    partial_reasoning: str = ""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,  # noqa: A002 - the API calls the field "type"
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.retry_after = retry_after

    def __str__(self) -> str:
        if self.status is None:
            return self.message
        return f"{self.message} (HTTP {self.status})"

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.message!r}, status={self.status!r}, type={self.type!r})"


class AuthenticationError(MoonshotError):
    """401: the API key is missing, wrong or revoked."""


class PermissionDeniedError(MoonshotError):
    """403: the key is valid but may not use this model or endpoint."""


class InvalidRequestError(MoonshotError):
    """400: the request itself is wrong; sending it again cannot help."""


class ContextLengthError(InvalidRequestError):
    """400: the messages (plus max tokens) exceed the model's context window."""


class NotFoundError(MoonshotError):
    """404: no such file (or endpoint). Deleting a missing file raises this."""


class RateLimitError(MoonshotError):
    """429 `rate_limit_reached_error`: too many requests or too much concurrency."""

    retryable = True


class QuotaExceededError(MoonshotError):
    """429 `exceeded_current_quota_error`: the account is out of money or quota."""


class EngineOverloadedError(MoonshotError):
    """429 `engine_overloaded_error`: Moonshot is too busy right now; later may work."""

    retryable = True


class ContentFilterError(InvalidRequestError):
    """`content_filter`: the input or the output was judged high risk; the same request fails again."""


class NotDeletedError(MoonshotError):
    """A delete answered `deleted: false`: the file is still there; trying again may work."""

    retryable = True


class ServerError(MoonshotError):
    """5xx: Moonshot (or a proxy in front of it) failed."""

    retryable = True


class MoonshotTimeout(MoonshotError):
    """Connecting took longer than `connect_timeout`, or no byte came for `read_timeout`."""

    retryable = True


class MoonshotConnectionError(MoonshotError):
    """The connection could not be opened, or broke before a whole response arrived."""

    retryable = True


class StreamInterrupted(MoonshotError):
    """A streamed answer stopped before it was finished.

    `partial_content` and `partial_reasoning` hold the text that did arrive, so a caller
    can keep it (and show it as interrupted) instead of losing it.
    """

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        partial_content: str = "",
        partial_reasoning: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.partial_content = partial_content
        self.partial_reasoning = partial_reasoning


def error_for_response(
    status: int,
    body: bytes | str,
    *,
    reason: str = "",
    retry_after: float | None = None,
) -> MoonshotError:
    """Build the typed error for an HTTP error response.

    `body` may be Moonshot's `{"error": {"message", "type", "code"}}`, some other JSON, or
    not JSON at all (an HTML 502 page from a load balancer); each gives a readable message.
    """
    message, error_type, code = _parse_error_body(body)
    if not message:
        message = reason or "No error message"
    kwargs: dict[str, Any] = {
        "status": status,
        "type": error_type,
        "code": code,
        "retry_after": retry_after,
    }
    by_type = _CLASS_BY_TYPE.get(error_type or "")
    if by_type is not None:
        if by_type is InvalidRequestError and _is_context_length(message):
            return ContextLengthError(message, **kwargs)
        return by_type(message, **kwargs)
    if status == 401:
        return AuthenticationError(message, **kwargs)
    if status == 403:
        return PermissionDeniedError(message, **kwargs)
    if status == 404:
        return NotFoundError(message, **kwargs)
    if status == 429:
        if error_type and "quota" in error_type:
            return QuotaExceededError(message, **kwargs)
        return RateLimitError(message, **kwargs)
    if status in (400, 413, 422):
        if _is_context_length(message):
            return ContextLengthError(message, **kwargs)
        return InvalidRequestError(message, **kwargs)
    if status >= 500:
        return ServerError(message, **kwargs)
    return MoonshotError(message, **kwargs)


def error_for_event(error: Any) -> MoonshotError:
    """Build the typed error for an `{"error": {...}}` object sent inside a 200 stream.

    A known type gets its class (and so its retry decision); an unknown one is a plain,
    not retryable `MoonshotError`: nothing says trying again would help.
    """
    body = json.dumps({"error": error})
    message, error_type, code = _parse_error_body(body)
    cls = _CLASS_BY_TYPE.get(error_type or "", MoonshotError)
    if cls is InvalidRequestError and _is_context_length(message):
        cls = ContextLengthError
    return cls(message or "No error message", type=error_type, code=code)


_CLASS_BY_TYPE: dict[str, type[MoonshotError]] = {
    INVALID_AUTHENTICATION: AuthenticationError,
    INVALID_REQUEST: InvalidRequestError,
    PERMISSION_DENIED: PermissionDeniedError,
    RESOURCE_NOT_FOUND: NotFoundError,
    RATE_LIMIT_REACHED: RateLimitError,
    EXCEEDED_CURRENT_QUOTA: QuotaExceededError,
    ENGINE_OVERLOADED: EngineOverloadedError,
    SERVER_ERROR: ServerError,
    CONTENT_FILTER: ContentFilterError,
    CONTENT_FILTER + "_error": ContentFilterError,  # the spelling some responses use
}


def _is_context_length(message: str) -> bool:
    lowered = message.lower()
    return any(hint in lowered for hint in _CONTEXT_LENGTH_HINTS)


def _parse_error_body(body: bytes | str) -> tuple[str, str | None, str | None]:
    """Return (message, type, code) from whatever an error response carried."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError:
        return _summarize_text(text), None, None
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            message = error.get("message") or error.get("detail") or error.get("msg") or ""
            error_type = error.get("type")
            code = error.get("code")
            return (
                str(message),
                str(error_type) if error_type is not None else None,
                str(code) if code is not None else None,
            )
        if isinstance(error, str):
            return error, None, None
    return _summarize_text(text), None, None


def _summarize_text(text: str) -> str:
    # Tags and runs of whitespace make an HTML error page unreadable in a log line.
    stripped = re.sub(r"<[^>]*>", " ", text)
    collapsed = " ".join(stripped.split())
    if len(collapsed) > _MAX_BODY_IN_MESSAGE:
        collapsed = collapsed[: _MAX_BODY_IN_MESSAGE - 1] + "…"
    return collapsed
