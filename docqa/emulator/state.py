"""What one emulator instance holds: its files, faults, runtime knobs and request counts."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import time
from collections import Counter, OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from docqa.emulator.errors import ApiError, invalid_request
from docqa.emulator.faults import FaultBook
from docqa.emulator.store import AccountLimits, FileStore
from docqa.emulator.tokens import messages_tokens

# Extraction is CPU-bound; a few workers keep a burst of uploads from starving the server.
EXTRACTION_WORKERS = 4


@dataclass
class Knobs:
    """Delays and sizes that tests and demos tune at runtime (seconds, words)."""

    first_token_delay: float = 0.0
    chunk_delay: float = 0.0
    extract_delay: float = 0.2
    chunk_size_words: int = 4

    @classmethod
    def from_env(cls) -> Knobs:
        """Defaults, overridden by EMULATOR_FIRST_TOKEN_DELAY, EMULATOR_CHUNK_DELAY,
        EMULATOR_EXTRACT_DELAY and EMULATOR_CHUNK_SIZE_WORDS."""
        knobs = cls()
        for field in fields(cls):
            name = f"EMULATOR_{field.name.upper()}"
            raw = os.environ.get(name, "")
            if raw:
                try:
                    knobs.update({field.name: raw})
                except ApiError as exc:
                    raise ValueError(f"{name}: {exc.message}") from None
        return knobs

    def update(self, values: dict) -> None:
        """Set knobs from a dict, checking each value; raise a 400 on a bad one."""
        known = {field.name: field.type for field in fields(self)}
        for name, raw in values.items():
            if name not in known:
                raise invalid_request(f"unknown setting {name!r}; known: {', '.join(known)}")
            try:
                value = int(raw) if name == "chunk_size_words" else float(raw)
            except (TypeError, ValueError):
                raise invalid_request(f"{name} must be a number, not {raw!r}") from None
            if value < 0 or (name == "chunk_size_words" and value < 1):
                raise invalid_request(f"{name} must be positive, not {raw!r}")
            setattr(self, name, value)

    def as_json(self) -> dict:
        """The knobs as the control API shows them."""
        return asdict(self)


class Stats:
    """Request counts by route ("POST /v1/files") and the time of the last chat request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.last_chat_request_at: float | None = None

    def record(self, route: str) -> None:
        """Count one request."""
        with self._lock:
            self.requests[route] += 1
            if route == "POST /v1/chat/completions":
                self.last_chat_request_at = time.time()

    def reset(self) -> None:
        """Forget all counts."""
        with self._lock:
            self.requests.clear()
            self.last_chat_request_at = None

    def as_json(self) -> dict:
        """The counts as the control API shows them."""
        with self._lock:
            return {"requests": dict(self.requests), "last_chat_request_at": self.last_chat_request_at}


class PrefixCache:
    """Moonshot's prefix cache, keyed by `prompt_cache_key`: a request whose first messages
    are those of the previous request under the same key reports them as `cached_tokens`.
    """

    MAX_KEYS = 1024

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Per key, the fingerprints of the previous request's messages (not the text).
        self._last: OrderedDict[str, list[str]] = OrderedDict()

    def lookup(self, key: str | None, messages: list[dict]) -> int:
        """The cached tokens of this request, remembering it for the next one."""
        if not key:
            return 0
        current = [_fingerprint(m) for m in messages]
        with self._lock:
            previous = self._last.pop(key, [])
            self._last[key] = current
            while len(self._last) > self.MAX_KEYS:
                self._last.popitem(last=False)
        shared = 0
        for mine, theirs in zip(current, previous, strict=False):
            if mine != theirs:
                break
            shared += 1
        return messages_tokens(messages[:shared]) if shared else 0

    def reset(self) -> None:
        """Forget every key."""
        with self._lock:
            self._last.clear()


def _fingerprint(message: dict) -> str:
    return hashlib.sha256(json.dumps(message, sort_keys=True).encode()).hexdigest()


class EmulatorState:
    """Everything one app instance shares between its handlers."""

    def __init__(
        self, *, data_dir: Path, api_key: str, knobs: Knobs | None = None, limits: AccountLimits | None = None
    ) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.api_key = api_key
        self.knobs = knobs or Knobs.from_env()
        self._initial_knobs = self.knobs.as_json()
        self.store = FileStore(self.data_dir, limits)
        self.faults = FaultBook()
        self.stats = Stats()
        self.prefix_cache = PrefixCache()
        self.executor = ThreadPoolExecutor(
            max_workers=EXTRACTION_WORKERS, thread_name_prefix="emulator-extract"
        )
        # Strong references to background tasks, so the loop does not drop them mid-way.
        self.tasks: set[asyncio.Task] = set()

    def reset(self) -> None:
        """Forget files, faults and stats, stop pending extractions, restore the knobs."""
        for task in list(self.tasks):
            task.cancel()
        self.faults.clear()
        self.stats.reset()
        self.prefix_cache.reset()
        self.store.reset()
        self.knobs.update(self._initial_knobs)

    def close(self) -> None:
        """Stop background work and close the database."""
        for task in list(self.tasks):
            task.cancel()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.store.close()
