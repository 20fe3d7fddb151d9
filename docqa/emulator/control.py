"""A small HTTP client for the emulator's `/_emulator/` control routes, used by tests."""

from __future__ import annotations

from typing import Any

import requests

_UNSET: Any = object()


class EmulatorControl:
    """Drive a running emulator: faults, knobs, filler files, stats, reset."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        root = base_url.rstrip("/")
        if root.endswith("/v1"):
            root = root[: -len("/v1")]
        self.root = root
        self.timeout = timeout

    def _call(self, method: str, path: str, payload: dict | None = None) -> Any:
        response = requests.request(
            method, f"{self.root}/_emulator/{path}", json=payload, timeout=self.timeout
        )
        if response.status_code >= 400:
            raise RuntimeError(
                f"emulator control {method} {path} failed: {response.status_code} {response.text}"
            )
        return response.json()

    def add_fault(
        self,
        method: str,
        path: str,
        *,
        kind: str = "error",
        status: int = 429,
        error_type: str = "rate_limit_reached_error",
        message: str | None = None,
        count: int | None = _UNSET,
        probability: float | None = None,
        retry_after: float | None = None,
        after_chunks: int = 0,
        after_deltas: int = 0,
        finish_reason: str = "length",
        pending_status: str | None = None,
        done_status: str | None = None,
        seconds: float = 0.0,
    ) -> int:
        """Add a fault for requests matching `method` and the glob `path`; return its id.

        `kind` is error (answer `status` with `error_type`), delay (`seconds`), cut_stream
        (close after `after_chunks` body chunks), reset (drop the connection unanswered) or
        extract_error (the upload's extraction ends in error with `message`), stream_error (a 200
        stream sends an error event of `error_type`/`message` after `after_deltas` deltas, 0:
        first), finish (the answer stops after `after_deltas` deltas with `finish_reason`
        "length" or "content_filter"), not_deleted (a DELETE answers `deleted: false` and keeps
        the file) or file_status (the upload shows `pending_status` while extracting and ends in
        `done_status`, "ok" or "ready"). It fires `count`
        times (default 1; None: forever), or with `probability` on that share of requests
        (then forever unless a count is given).
        """
        if count is _UNSET:
            count = None if probability is not None else 1
        spec = {
            "method": method,
            "path": path,
            "kind": kind,
            "status": status,
            "error_type": error_type,
            "message": message,
            "count": count,
            "probability": probability,
            "retry_after": retry_after,
            "after_chunks": after_chunks,
            "after_deltas": after_deltas,
            "finish_reason": finish_reason,
            "pending_status": pending_status,
            "done_status": done_status,
            "seconds": seconds,
        }
        return self._call("POST", "faults", spec)["id"]

    def faults(self) -> list[dict]:
        """The active faults."""
        return self._call("GET", "faults")["faults"]

    def clear_faults(self) -> None:
        """Remove every fault."""
        self._call("DELETE", "faults")

    def configure(self, **knobs: float) -> dict:
        """Set runtime knobs (first_token_delay, chunk_delay, extract_delay, chunk_size_words)."""
        return self._call("POST", "config", knobs)

    def fake_files(self, *, count: int, bytes_each: int, filename: str = "filler.pdf") -> list[str]:
        """Add `count` file records of `bytes_each` bytes with no bytes on disk; return their ids."""
        return self._call(
            "POST", "fake-files", {"count": count, "bytes_each": bytes_each, "filename": filename}
        )["ids"]

    def stats(self) -> dict:
        """Request counts by route, `last_chat_request_at`, and the `files` and `bytes` held."""
        return self._call("GET", "stats")

    def reset(self) -> None:
        """Forget all files, faults and stats, and restore the knobs."""
        self._call("POST", "reset")

    def health(self) -> bool:
        """Whether the emulator answers."""
        try:
            return bool(self._call("GET", "health").get("ok"))
        except (requests.RequestException, RuntimeError):
            return False
