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
from docqa.emulator.catalog import MODELS, Model, model_get
from docqa.emulator.errors import invalid_request
from docqa.emulator.state import EmulatorState, Knobs
from docqa.emulator.tokens import CJK_CHAR, messages_tokens, text_tokens

# Moonshot's documented default when a request gives no max_tokens.
DEFAULT_MAX_TOKENS = 1024
ROLES = ("system", "user", "assistant")

# Units a delta is made of: one CJK character, or one run of other non-space characters,
# each with the whitespace after it, so the units joined give back the text exactly.
_UNIT = re.compile(f"[{CJK_CHAR}]\\s*|[^\\s{CJK_CHAR}]+\\s*|\\s+")


@dataclass(frozen=True)
class ChatRequest:
    """A validated chat completion request."""

    model: Model
    messages: list[dict]
    max_tokens: int
    stream: bool
    include_usage: bool
    thinking: bool
    n: int


@dataclass(frozen=True)
class Delta:
    """One piece of the reply: text for `content` or `reasoning_content`."""

    field: str
    text: str


async def _json_body(request: Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise invalid_request("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise invalid_request("the request body must be a JSON object")
    return body


def _model(body: dict) -> Model:
    model_id = body.get("model")
    if not isinstance(model_id, str) or not model_id:
        raise invalid_request("model is required")
    model = model_get(model_id)
    if model is None:
        known = ", ".join(m.id for m in MODELS)
        raise invalid_request(f"Not found the model {model_id} or Permission denied; known models: {known}")
    return model


def _messages(body: dict) -> list[dict]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid_request("messages must be a non-empty list")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid_request(f"messages[{index}] must be an object with role and content")
        role = message.get("role")
        if role not in ROLES:
            raise invalid_request(f"messages[{index}].role must be one of {', '.join(ROLES)}, not {role!r}")
        content = message.get("content")
        if isinstance(content, str):
            if not content:
                raise invalid_request(f"messages[{index}].content must not be empty")
        elif isinstance(content, list):
            if not content or not all(isinstance(p, dict) and p.get("type") for p in content):
                raise invalid_request(f"messages[{index}].content must be a non-empty list of typed parts")
        else:
            raise invalid_request(f"messages[{index}].content must be a non-empty string or list of parts")
    return messages


def _number(body: dict, name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise invalid_request(f"{name} must be a number in [{low:g}, {high:g}], not {value!r}")


def chat_request_parse(body: dict) -> ChatRequest:
    """Validate a chat request as the spec describes; raise the API's 400 otherwise."""
    model = _model(body)
    messages = _messages(body)
    _number(body, "temperature", 0, 1)
    _number(body, "top_p", 0, 1)
    _number(body, "presence_penalty", -2, 2)
    _number(body, "frequency_penalty", -2, 2)
    n = body.get("n", 1)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 5:
        raise invalid_request(f"n must be an integer from 1 to 5, not {n!r}")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is None:
        max_tokens = DEFAULT_MAX_TOKENS
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise invalid_request(f"max_tokens must be a positive integer, not {max_tokens!r}")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise invalid_request("stream must be true or false")
    thinking_option = body.get("thinking")
    thinking_type = "enabled"
    if thinking_option is not None:
        if not isinstance(thinking_option, dict) or thinking_option.get("type") not in (
            "enabled",
            "disabled",
        ):
            raise invalid_request('thinking must be {"type": "enabled"} or {"type": "disabled"}')
        thinking_type = thinking_option["type"]
    thinking = model.always_thinks or (model.thinking_switch and thinking_type == "enabled")
    stream_options = body.get("stream_options") or {}
    include_usage = bool(isinstance(stream_options, dict) and stream_options.get("include_usage"))

    prompt_tokens = messages_tokens(messages)
    if prompt_tokens + max_tokens > model.context_length:
        raise invalid_request(
            f"Invalid request: Your request exceeded model token limit: {model.context_length} "
            f"(prompt {prompt_tokens} tokens + max_tokens {max_tokens})"
        )
    return ChatRequest(
        model=model,
        messages=messages,
        max_tokens=max_tokens,
        stream=stream,
        include_usage=include_usage,
        thinking=thinking,
        n=n,
    )


def deltas_plan(chat: ChatRequest, knobs: Knobs) -> tuple[list[Delta], str, int]:
    """The reply as deltas cut to `max_tokens`; also its finish reason and completion tokens."""
    answer = offline_answer(chat.messages)
    pieces: list[Delta] = []
    if chat.thinking:
        pieces += _split("reasoning_content", answer.reasoning, knobs.chunk_size_words)
    pieces += _split("content", answer.content, knobs.chunk_size_words)

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
            used += text_tokens(kept)
        return planned, "length", used
    return planned, "stop", used


def _split(field: str, text: str, words: int) -> list[Delta]:
    units = _UNIT.findall(text)
    return [Delta(field, "".join(units[i : i + words])) for i in range(0, len(units), words)]


def _usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


async def chat_completions(request: Request) -> Response:
    """POST /v1/chat/completions."""
    state: EmulatorState = request.app.state.emulator
    chat = chat_request_parse(await _json_body(request))
    knobs = state.knobs
    deltas, finish_reason, completion_tokens = deltas_plan(chat, knobs)
    usage = _usage(messages_tokens(chat.messages), completion_tokens)
    completion_id = "chatcmpl-" + secrets.token_hex(12)
    created = int(time.time())
    if chat.stream:
        events = _events(chat, deltas, finish_reason, usage, completion_id, created, knobs)
        return StreamingResponse(
            events,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    message: dict = {"role": "assistant", "content": "".join(d.text for d in deltas if d.field == "content")}
    if chat.thinking:
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


async def _events(
    chat: ChatRequest,
    deltas: list[Delta],
    finish_reason: str,
    usage: dict,
    completion_id: str,
    created: int,
    knobs: Knobs,
) -> AsyncIterator[bytes]:
    """Moonshot's SSE stream: a role chunk, the deltas, a final chunk with usage, [DONE]."""

    def chunk(delta: dict, reason: str | None = None, chunk_usage: dict | None = None) -> dict:
        choice: dict = {"index": 0, "delta": delta, "finish_reason": reason}
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": chat.model.id,
            "choices": [choice],
        }
        if chunk_usage is not None:
            # Moonshot puts usage inside the final choice; OpenAI-style clients look at the top.
            choice["usage"] = chunk_usage
            body["usage"] = chunk_usage
        return body

    await asyncio.sleep(knobs.first_token_delay)
    yield _sse(chunk({"role": "assistant", "content": ""}))
    for index, delta in enumerate(deltas):
        if index and knobs.chunk_delay:
            await asyncio.sleep(knobs.chunk_delay)
        yield _sse(chunk({delta.field: delta.text}))
    yield _sse(chunk({}, finish_reason, usage))
    if chat.include_usage:
        yield _sse(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": chat.model.id,
                "choices": [],
                "usage": usage,
            }
        )
    yield _sse("[DONE]")


async def tokens_estimate(request: Request) -> Response:
    """POST /v1/tokenizers/estimate-token-count."""
    body = await _json_body(request)
    _model(body)
    messages = _messages(body)
    return JSONResponse({"data": {"total_tokens": messages_tokens(messages)}})
