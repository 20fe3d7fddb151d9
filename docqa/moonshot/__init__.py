"""docqa's client for Moonshot AI's HTTP API: requests, typed errors, retries, SSE.

It knows nothing of Django: callers hand it a base URL, a key and optionally a limiter.
"""

from docqa.moonshot.client import MoonshotClient
from docqa.moonshot.errors import (
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
from docqa.moonshot.limiter import RedisLimiter
from docqa.moonshot.types import Balance, ChatChunk, FileObject, ModelInfo

__all__ = [
    "AuthenticationError",
    "Balance",
    "ChatChunk",
    "ContentFilterError",
    "ContextLengthError",
    "EngineOverloadedError",
    "FileObject",
    "InvalidRequestError",
    "ModelInfo",
    "MoonshotClient",
    "MoonshotConnectionError",
    "MoonshotError",
    "MoonshotTimeout",
    "NotDeletedError",
    "NotFoundError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitError",
    "RedisLimiter",
    "ServerError",
    "StreamInterrupted",
]
