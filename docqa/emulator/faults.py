"""Faults the tests inject: errors, delays, broken streams, dropped connections.

Kinds: `error` (answer `status`/`error_type`), `delay`, `cut_stream`, `reset`,
`extract_error`, and, inside an answer: `stream_error` (an `{"error": ...}` event in a 200
stream after `after_deltas` deltas), `finish` (end after `after_deltas` deltas with
`finish_reason` "length" or "content_filter"), `not_deleted` (a DELETE answers 200 with
`deleted: false` and keeps the file) and `file_status` (the upload's extraction shows
`pending_status` while it runs and ends in `done_status`, e.g. "ready").

A fault matches by HTTP method and a glob on the path (`/v1/files/*`), and fires for its
next `count` matching requests (`None`: forever) or, with `probability`, on that share of
them. Faults are checked in the order they were added.
"""

from __future__ import annotations

import fnmatch
import itertools
import random
import threading
from dataclasses import asdict, dataclass

from docqa.emulator.errors import DEFAULT_MESSAGES, RATE_LIMIT_REACHED, invalid_request

KINDS = (
    "error",
    "delay",
    "cut_stream",
    "reset",
    "extract_error",
    "stream_error",
    "finish",
    "not_deleted",
    "file_status",
)
# What a `finish` fault may end a completion with.
FINISH_REASONS = ("length", "content_filter", "stop")
# The statuses of a finished extraction that the seeds show (`ok` in 001/002, `ready` in 004).
DONE_STATUSES = ("ok", "ready")


@dataclass
class Fault:
    """One injected fault; see the module docstring for how it matches."""

    id: int
    method: str
    path: str
    kind: str = "error"
    status: int = 429
    error_type: str = RATE_LIMIT_REACHED
    message: str | None = None
    retry_after: float | None = None
    count: int | None = 1
    probability: float | None = None
    after_chunks: int = 0
    after_deltas: int = 0
    finish_reason: str = "length"
    pending_status: str | None = None
    done_status: str | None = None
    seconds: float = 0.0
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        """Whether a request's method and path fall under this fault."""
        return (self.method in ("*", method.upper())) and fnmatch.fnmatchcase(path, self.path)

    def as_json(self) -> dict:
        """The fault as the control API shows it."""
        return asdict(self)

    @property
    def error_message(self) -> str:
        """The message an error fault answers with."""
        return self.message or DEFAULT_MESSAGES.get(self.error_type, self.error_type)


class FaultBook:
    """The active faults, safe to use from any thread."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._random = random.Random()

    def add(self, spec: dict) -> Fault:
        """Add a fault from the control API's JSON; raise a 400 if the spec makes no sense."""
        allowed = set(Fault.__dataclass_fields__) - {"id", "fired"}
        unknown = set(spec) - allowed
        if unknown:
            raise invalid_request(f"unknown fault fields: {', '.join(sorted(unknown))}")
        if not spec.get("method") or not spec.get("path"):
            raise invalid_request("a fault needs a method and a path")
        kind = spec.get("kind") or "error"
        if kind not in KINDS:
            raise invalid_request(f"fault kind must be one of {', '.join(KINDS)}")
        if spec.get("finish_reason", "length") not in FINISH_REASONS:
            raise invalid_request(f"finish_reason must be one of {', '.join(FINISH_REASONS)}")
        for name in ("after_chunks", "after_deltas"):
            value = spec.get(name) or 0
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise invalid_request(f"{name} must be a non-negative integer")
        if spec.get("done_status") not in (None, *DONE_STATUSES):
            raise invalid_request(f"done_status must be one of {', '.join(DONE_STATUSES)}")
        if spec.get("pending_status") in (*DONE_STATUSES, "error"):
            raise invalid_request("pending_status must be an in-progress status, not ok, ready or error")
        probability = spec.get("probability")
        if probability is not None and not 0 <= float(probability) <= 1:
            raise invalid_request("probability must be between 0 and 1")
        fields = {k: v for k, v in spec.items() if v is not None or k in ("count",)}
        fields["kind"] = kind
        fields["method"] = str(spec["method"]).upper()
        with self._lock:
            fault = Fault(id=next(self._ids), **fields)
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    def list(self) -> list[Fault]:
        """The active faults."""
        with self._lock:
            return list(self._faults)

    def fire(self, method: str, path: str) -> list[Fault]:
        """The faults that fire for this request, each used up by one."""
        fired = []
        with self._lock:
            for fault in list(self._faults):
                if not fault.matches(method, path):
                    continue
                if fault.probability is not None and self._random.random() >= fault.probability:
                    continue
                fault.fired += 1
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                fired.append(fault)
        return fired
