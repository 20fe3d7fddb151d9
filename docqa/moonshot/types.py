"""What the Moonshot API answers, as small dataclasses.

Each keeps the whole JSON object in `raw`, so a field the API adds later is never lost to
a caller who needs it before this module learns about it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_READY_STATUSES = frozenset({"ok", "ready", "processed", "success"})
_FAILED_STATUSES = frozenset({"error", "failed"})


@dataclass(frozen=True)
class FileObject:
    """A file stored at Moonshot (`POST /v1/files`, `GET /v1/files/{id}`)."""

    id: str
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: str
    status_details: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> FileObject:
        """Build from the API's JSON object."""
        # The OpenAPI spec says `status_details`; responses seen in the wild say
        # `status_detail`. Whichever carries text wins.
        details = data.get("status_details") or data.get("status_detail") or ""
        return cls(
            id=str(data["id"]),
            bytes=int(data.get("bytes") or 0),
            created_at=int(data.get("created_at") or 0),
            filename=str(data.get("filename") or ""),
            purpose=str(data.get("purpose") or ""),
            status=str(data.get("status") or ""),
            status_details=str(details),
            raw=data,
        )

    @property
    def is_ready(self) -> bool:
        """Extraction finished; the content can be fetched."""
        return self.status.lower() in _READY_STATUSES

    @property
    def is_failed(self) -> bool:
        """Extraction failed; `status_details` usually says why."""
        return self.status.lower() in _FAILED_STATUSES

    @property
    def is_processing(self) -> bool:
        """Neither ready nor failed: still being extracted."""
        return not (self.is_ready or self.is_failed)


@dataclass
class ChatChunk:
    """One streamed `chat.completion.chunk` event, reduced to what callers use."""

    content: str
    reasoning_content: str
    finish_reason: str | None
    usage: dict[str, Any] | None
    id: str | None
    model: str | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> ChatChunk:
        """Build from one decoded SSE `data:` payload."""
        choices = data.get("choices") or []
        choice = choices[0] if choices and isinstance(choices[0], dict) else {}
        delta = choice.get("delta") or {}
        # Moonshot puts the final usage inside choices[0]; OpenAI-style (and
        # `stream_options.include_usage`) puts it at the top level.
        usage = choice.get("usage") or data.get("usage") or None
        return cls(
            content=delta.get("content") or "",
            reasoning_content=delta.get("reasoning_content") or "",
            finish_reason=choice.get("finish_reason") or None,
            usage=usage,
            id=data.get("id"),
            model=data.get("model"),
            raw=data,
        )


@dataclass(frozen=True)
class ModelInfo:
    """One entry of `GET /v1/models`."""

    id: str
    context_length: int | None
    supports_reasoning: bool
    supports_image_in: bool
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> ModelInfo:
        """Build from the API's JSON object."""
        context_length = data.get("context_length")
        return cls(
            id=str(data["id"]),
            context_length=int(context_length) if context_length is not None else None,
            supports_reasoning=bool(data.get("supports_reasoning", False)),
            supports_image_in=bool(data.get("supports_image_in", False)),
            raw=data,
        )


@dataclass(frozen=True)
class Balance:
    """`GET /v1/users/me/balance`, in yuan. Calls fail once `available_balance` <= 0."""

    available_balance: float
    voucher_balance: float
    cash_balance: float
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Balance:
        """Build from the `data` object of the balance response."""
        return cls(
            available_balance=float(data.get("available_balance") or 0.0),
            voucher_balance=float(data.get("voucher_balance") or 0.0),
            cash_balance=float(data.get("cash_balance") or 0.0),
            raw=data,
        )
