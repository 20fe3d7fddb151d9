"""The HTTP client for Moonshot AI's API (and docqa's local emulator, which speaks the same):
one method per endpoint — files, chat, models, token estimates, balance.

How a request is sent, retried and turned into a typed error is `transport`'s job; how a
streamed answer is read is `streaming`'s. Two calls narrow the retries. `files_create` does
not retry a timeout or a broken connection: the upload may have landed, and a blind retry
could leave a second remote file nobody knows about; only answers that came back with a
status (429, 5xx) are retried, and the caller decides the rest (it can list files to
reconcile). `chat_completion_stream` retries only while opening.
"""

from __future__ import annotations

import mimetypes
import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from typing import Any
from urllib.parse import quote

from requests_toolbelt.multipart.encoder import MultipartEncoder

from docqa.moonshot.errors import MoonshotError, NotDeletedError
from docqa.moonshot.streaming import stream_chunks
from docqa.moonshot.transport import AttemptObserver, Transport, response_text
from docqa.moonshot.types import Balance, ChatChunk, FileObject, ModelInfo

DEFAULT_BASE_URL = "https://api.moonshot.cn/v1"

# Seed 004, `EstimateTokenRequest.model`: the only ids the estimate endpoint takes.
ESTIMATE_TOKEN_MODELS = frozenset(
    {
        "kimi-k2.6",
        "kimi-k2.5",
        "kimi-k2-0905-preview",
        "kimi-k2-0711-preview",
        "kimi-k2-turbo-preview",
        "moonshot-v1-8k",
        "moonshot-v1-32k",
        "moonshot-v1-128k",
        "moonshot-v1-auto",
        "moonshot-v1-8k-vision-preview",
        "moonshot-v1-32k-vision-preview",
        "moonshot-v1-128k-vision-preview",
    }
)


def estimate_model_for(model: str) -> str:
    """A model id the estimate endpoint takes, counting like `model`.

    kimi-k2-thinking* are kimi-k2 models (same tokenizer) that the endpoint does not list;
    any other unlisted id is sent as it is (the caller falls back on a 400).
    """
    if model in ESTIMATE_TOKEN_MODELS:
        return model
    if model.startswith("kimi-k2-thinking"):
        return "kimi-k2-0905-preview"
    return model


def _transport_setting(name: str) -> property:
    """A client attribute that is the transport's setting of the same name."""
    return property(
        lambda self: getattr(self._transport, name),
        lambda self, value: setattr(self._transport, name, value),
    )


class MoonshotClient:
    """A client for one Moonshot account.

    One `requests.Session` per client keeps connections alive between calls; build one
    client per thread (or per task) rather than sharing one across threads. Every HTTP
    attempt first takes a slot from `limiter` (see `RedisLimiter`) when one is given.
    `max_retries` counts the attempts after the first. `sleep` is injectable only so tests
    can record the waits.
    """

    base_url = _transport_setting("base_url")
    connect_timeout = _transport_setting("connect_timeout")
    read_timeout = _transport_setting("read_timeout")
    max_retries = _transport_setting("max_retries")
    limiter = _transport_setting("limiter")

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
        observe: AttemptObserver | None = None,
    ) -> None:
        self._transport = Transport(
            base_url,
            api_key,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_retries=max_retries,
            limiter=limiter,
            sleep=sleep,
            observe=observe,
        )

    def __repr__(self) -> str:
        key = "***" if self._transport.has_key else "None"
        return f"MoonshotClient(base_url={self.base_url!r}, api_key={key})"

    def close(self) -> None:
        """Close pooled connections."""
        self._transport.close()

    def __enter__(self) -> MoonshotClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def waits_reported(self, on_wait: Callable[[MoonshotError | None], None]) -> Iterator[None]:
        """Within the block, `on_wait(error)` is called before each retry wait (a 429, a 5xx…)
        and `on_wait(None)` before waiting for the limiter, so a caller can say why it waits."""
        previous = self._transport.on_wait
        self._transport.on_wait = on_wait
        try:
            yield
        finally:
            self._transport.on_wait = previous

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

        response = self._transport.request(
            "POST", "/files", body_factory=open_body, retry_transport_errors=False
        )
        return FileObject.from_api(self._transport.json(response))

    def files_list(self) -> list[FileObject]:
        """All files of the account."""
        data = self._get_json("/files")
        return [FileObject.from_api(item) for item in data.get("data") or []]

    def files_retrieve(self, file_id: str) -> FileObject:
        """One file's metadata, including its extraction `status`."""
        return FileObject.from_api(self._get_json(_file_path(file_id)))

    def files_content(self, file_id: str) -> str:
        """The extracted text exactly as the API returns it (usually a JSON string).

        The endpoint answers `text/plain` (seed 003), so that is what is asked for.
        """
        response = self._transport.request(
            "GET", _file_path(file_id) + "/content", headers={"Accept": "text/plain, */*"}
        )
        return response_text(response)

    def files_delete(self, file_id: str) -> bool:
        """Delete a file; True once deleted. A missing file raises `NotFoundError`.

        `deleted: false` (the file is still there) is tried again like a server error, then
        raised as `NotDeletedError` (retryable: the caller's task may come back later); it
        never counts as done.
        """
        attempt = 0
        while True:
            data = self._transport.json(self._transport.request("DELETE", _file_path(file_id)))
            if data.get("deleted") is not False:
                return True
            error = NotDeletedError(f"Moonshot answered deleted: false for {file_id}", status=200)
            attempt += 1
            delay = self._transport.retry_delay(error, attempt)
            if delay is None:
                raise error
            self._transport.log_retry("DELETE", _file_path(file_id), error, attempt, delay)
            self._transport.sleep(delay)

    # Chat

    def chat_completion(self, *, model: str, messages: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
        """A whole (non-streamed) chat completion, as the API's JSON."""
        if params.pop("stream", False):
            raise ValueError("use chat_completion_stream() for streamed completions")
        payload = {"model": model, "messages": messages, **params}
        return self._post_json("/chat/completions", payload)

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
        return stream_chunks(self._transport, payload, on_sent)

    # Models, tokens, balance

    def models_list(self) -> list[ModelInfo]:
        """The models this key may use."""
        data = self._get_json("/models")
        return [ModelInfo.from_api(item) for item in data.get("data") or []]

    def estimate_token_count(self, *, model: str, messages: list[dict[str, Any]]) -> int:
        """How many tokens `messages` take for `model`, counted by the API (for a model the
        endpoint does not list, by its listed sibling: see `estimate_model_for`)."""
        payload = {"model": estimate_model_for(model), "messages": messages}
        data = self._post_json("/tokenizers/estimate-token-count", payload)
        try:
            return int(data["data"]["total_tokens"])
        except (KeyError, TypeError, ValueError) as exc:
            raise MoonshotError("Token estimate response has no data.total_tokens") from exc

    def balance(self) -> Balance:
        """The account's balance in yuan."""
        data = self._get_json("/users/me/balance")
        return Balance.from_api(data.get("data") or {})

    def _get_json(self, path: str) -> dict[str, Any]:
        return self._transport.json(self._transport.request("GET", path))

    def _post_json(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self._transport.json(self._transport.request("POST", path, json_body=payload))


def _file_path(file_id: str) -> str:
    if not file_id:
        raise ValueError("file_id must not be empty")
    return "/files/" + quote(file_id, safe="")
