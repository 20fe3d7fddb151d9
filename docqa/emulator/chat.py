"""`/v1/chat/completions` (plain and SSE) and `/v1/tokenizers/estimate-token-count`."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from docqa.emulator.answer import offline_answer
from docqa.emulator.errors import error_body, invalid_request
from docqa.emulator.faults import Fault
from docqa.emulator.state import EmulatorState, Knobs
from docqa.emulator.tokens import CJK_CHAR, messages_tokens, text_tokens
from docqa.emulator.validation import ChatRequest, chat_request_parse, estimate_request_parse

FINISH_LENGTH = "length"

# Units a delta is made of: one CJK character, or one run of other non-space characters,
# each with the whitespace after it, so the units joined give back the text exactly.
_UNIT = re.compile(f"[{CJK_CHAR}]\\s*|[^\\s{CJK_CHAR}]+\\s*|\\s+")


@dataclass(frozen=True)
class Delta:
    """One piece of the reply: text for `content` or `reasoning_content`."""

    field: str
    text: str


async def json_body(request: Request) -> dict:
    """The request's JSON object, or the API's 400."""
    try:
        body = await request.json()
    except ValueError:
        raise invalid_request("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise invalid_request("the request body must be a JSON object")
    return body


def deltas_plan(chat: ChatRequest, knobs: Knobs) -> tuple[list[Delta], str]:
    """The reply as deltas cut to `max_tokens`, and its finish reason.

    In Partial Mode the answer continues the assistant prefix: the part of the offline
    answer after the prefix (the whole answer if it does not start that way), no reasoning.
    """
    answer = offline_answer(chat.messages)
    pieces: list[Delta] = []
    content = answer.content
    if chat.partial_prefix is not None:
        if content.startswith(chat.partial_prefix):
            content = content[len(chat.partial_prefix) :]
    elif chat.thinking:
        pieces += _split("reasoning_content", answer.reasoning, knobs.chunk_size_words)
    pieces += _split("content", content, knobs.chunk_size_words)

    budget = chat.max_tokens
    used = 0
    planned: list[Delta] = []
    for piece in pieces:
        cost = text_tokens(piece.text)
        if used + cost <= budget:
            planned.append(piece)
            used += cost
            continue
        # Keep as many units of this piece as still fit, then stop: the reply was cut.
        kept = ""
        for unit in _UNIT.findall(piece.text):
            if used + text_tokens(kept + unit) > budget:
                break
            kept += unit
        if kept:
            planned.append(Delta(piece.field, kept))
        return planned, FINISH_LENGTH
    return planned, "stop"


def _split(field: str, text: str, words: int) -> list[Delta]:
    units = _UNIT.findall(text)
    return [Delta(field, "".join(units[i : i + words])) for i in range(0, len(units), words)]


def _usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        # Not in the spec's `usage`; what Moonshot adds for its prefix cache.
        "cached_tokens": cached_tokens,
    }


async def chat_completions(request: Request) -> Response:
    """POST /v1/chat/completions."""
    state: EmulatorState = request.app.state.emulator
    chat = chat_request_parse(await json_body(request))
    knobs = state.knobs
    deltas, finish_reason = deltas_plan(chat, knobs)
    fault: Fault | None = request.scope.get("state", {}).get("chat_fault")
    if fault is not None and fault.kind == "finish":
        deltas = deltas[: fault.after_deltas]
        finish_reason = fault.finish_reason
    cached = state.prefix_cache.lookup(chat.prompt_cache_key, chat.messages)
    completion_tokens = sum(text_tokens(d.text) for d in deltas)
    usage = _usage(messages_tokens(chat.messages), completion_tokens, cached)
    completion_id = "chatcmpl-" + secrets.token_hex(12)
    created = int(time.time())
    if chat.stream:
        stream_error = fault if fault is not None and fault.kind == "stream_error" else None
        plan = _StreamPlan(chat, deltas, finish_reason, usage, completion_id, created, stream_error)
        return StreamingResponse(
            _events(plan, knobs),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    message: dict = {"role": "assistant", "content": "".join(d.text for d in deltas if d.field == "content")}
    if chat.thinking and chat.partial_prefix is None:
        message["reasoning_content"] = "".join(d.text for d in deltas if d.field == "reasoning_content")
    await asyncio.sleep(knobs.first_token_delay)
    return JSONResponse(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": chat.model.id,
            "choices": [
                {"index": index, "message": message, "finish_reason": finish_reason}
                for index in range(chat.n)
            ],
            "usage": usage,
        }
    )


def _sse(payload: dict | str) -> bytes:
    data = (
        payload
        if isinstance(payload, str)
        else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    )
    return f"data: {data}\n\n".encode()


@dataclass(frozen=True)
class _StreamPlan:
    chat: ChatRequest
    deltas: list[Delta]
    finish_reason: str
    usage: dict
    completion_id: str
    created: int
    error: Fault | None


async def _events(plan: _StreamPlan, knobs: Knobs) -> AsyncIterator[bytes]:
    """Moonshot's SSE stream: a role chunk, the deltas, a final chunk, then (only with
    `stream_options.include_usage`) a chunk with empty `choices` and the usage, and [DONE].

    With include_usage every other chunk carries `"usage": null`, as the spec says. An
    injected `stream_error` sends an `{"error": ...}` event after `after_deltas` deltas
    (0: as the first event) and ends the stream there, without [DONE].
    """
    chat = plan.chat

    def chunk(choices: list[dict], usage: dict | None = None) -> dict:
        body = {
            "id": plan.completion_id,
            "object": "chat.completion.chunk",
            "created": plan.created,
            "model": chat.model.id,
            "choices": choices,
        }
        if chat.include_usage:
            body["usage"] = usage
        return body

    def choice(delta: dict, reason: str | None = None) -> list[dict]:
        return [{"index": 0, "delta": delta, "finish_reason": reason}]

    def error_event(fault: Fault) -> bytes:
        return _sse(error_body(fault.error_type, fault.error_message))

    await asyncio.sleep(knobs.first_token_delay)
    if plan.error is not None and plan.error.after_deltas <= 0:
        yield error_event(plan.error)
        return
    yield _sse(chunk(choice({"role": "assistant", "content": ""})))
    for index, delta in enumerate(plan.deltas):
        if index and knobs.chunk_delay:
            await asyncio.sleep(knobs.chunk_delay)
        yield _sse(chunk(choice({delta.field: delta.text})))
        if plan.error is not None and index + 1 >= plan.error.after_deltas:
            yield error_event(plan.error)
            return
    yield _sse(chunk(choice({}, plan.finish_reason)))
    if chat.include_usage:
        yield _sse(chunk([], plan.usage))
    yield _sse("[DONE]")


async def tokens_estimate(request: Request) -> Response:
    """POST /v1/tokenizers/estimate-token-count."""
    messages = estimate_request_parse(await json_body(request))
    return JSONResponse({"data": {"total_tokens": messages_tokens(messages)}})
