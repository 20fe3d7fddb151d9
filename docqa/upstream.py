"""Moonshot's errors, in words a user understands (shared by documents and chat)."""

from __future__ import annotations

from django.utils.translation import gettext_noop as N_

from docqa.moonshot import (
    AuthenticationError,
    ContentFilterError,
    ContextLengthError,
    EngineOverloadedError,
    InvalidRequestError,
    MoonshotConnectionError,
    MoonshotError,
    MoonshotTimeout,
    NotDeletedError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    StreamInterrupted,
)
from docqa.notes import note
from docqa.ops.logs import redact

_PLAIN = [
    (
        AuthenticationError,
        N_("Moonshot rejected the API key. An administrator needs to check MOONSHOT_API_KEY."),
    ),
    (PermissionDeniedError, N_("Moonshot refused access to this resource.")),
    (
        QuotaExceededError,
        N_("The Moonshot account has run out of quota. An administrator needs to top it up."),
    ),
    (RateLimitError, N_("Moonshot is rate limiting requests right now.")),
    (EngineOverloadedError, N_("Moonshot is overloaded right now. Try again in a little while.")),
    (
        ContentFilterError,
        N_("Moonshot's content filter refused this request or its answer. Rephrasing may help."),
    ),
    (NotDeletedError, N_("Moonshot did not delete the file (it answered deleted: false).")),
    (ContextLengthError, N_("The request is too long for the model's context window.")),
    (NotFoundError, N_("Moonshot no longer has this file.")),
    (ServerError, N_("Moonshot is having trouble (server error).")),
    (MoonshotTimeout, N_("Moonshot did not answer in time.")),
    (StreamInterrupted, N_("The connection to Moonshot was cut mid-way.")),
    (MoonshotConnectionError, N_("Moonshot cannot be reached.")),
]


def upstream_text(text: str) -> str:
    """Text Moonshot (or a proxy) sent, fit to store, show or log: without the API key.

    Every upstream text docqa keeps goes through here: error messages, a file's
    `status_details`, error events inside a stream.
    """
    return redact(text)


def upstream_error_note(exc: MoonshotError) -> str:
    """A stored note (see docqa.notes) explaining `exc`; it never holds the API key."""
    for kind, message in _PLAIN:
        if isinstance(exc, kind):
            return note(message)
    detail = upstream_text(exc.message)
    if isinstance(exc, InvalidRequestError):
        return note(N_("Moonshot could not accept the request: %(detail)s"), detail=detail)
    if exc.type:
        # A type no table documents: said as it came, and not retried.
        return note(
            N_("Moonshot returned an error of a kind docqa does not know (%(type)s): %(detail)s"),
            type=upstream_text(exc.type),
            detail=detail,
        )
    return note(N_("Moonshot returned an error: %(detail)s"), detail=detail)
