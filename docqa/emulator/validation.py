"""Request validation as strict as the OpenAPI spec (seed 004): unknown fields are refused.

The error table (seed 002) says a 400 `invalid_request_error` answers "unexpected
parameters" and out-of-range values; the spec's chat request is one schema per model
family (`ChatRequestBase` plus the family's own fields), so what a request may carry
depends on its model: `temperature`, `top_p`, `n` and the penalties for moonshot-v1,
kimi-k2 and kimi-k2-thinking; `thinking` for kimi-k2.5 and kimi-k2.6 (`keep` on k2.6 only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from docqa.emulator.answer import message_text
from docqa.emulator.catalog import MODELS, Model, model_get
from docqa.emulator.errors import invalid_request
from docqa.emulator.tokens import messages_tokens

# Moonshot's documented default when a request gives no max_tokens.
DEFAULT_MAX_TOKENS = 1024
ROLES = ("system", "user", "assistant")

# `ChatRequestBase` of the spec, plus the discriminating `model`.
BASE_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "response_format",
        "stop",
        "stream",
        "stream_options",
        "tools",
        "prompt_cache_key",
        "safety_identifier",
    }
)
SAMPLING_FIELDS = frozenset({"temperature", "top_p", "n", "presence_penalty", "frequency_penalty"})
# `Message` of the spec; `reasoning_content` because the spec asks it to be sent back
# unchanged on earlier assistant turns for kimi-k2.6's Preserved Thinking (`keep: "all"`).
MESSAGE_FIELDS = frozenset({"role", "content", "name", "partial", "reasoning_content"})
# `EstimateTokenRequest.model` of the spec, exactly: the thinking-only models are not there.
ESTIMATE_MODELS = (
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
)
_TOOL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9-_]{2,63}$")
_RESPONSE_FORMATS = ("text", "json_object", "json_schema")


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
    # Partial Mode: the last message is an assistant prefix the answer continues from.
    partial_prefix: str | None = None
    prompt_cache_key: str | None = None


def allowed_fields(model: Model) -> frozenset[str]:
    """The request fields the spec's schema for this model's family lists."""
    if model.thinking_switch:
        return BASE_FIELDS | {"thinking"}
    return BASE_FIELDS | SAMPLING_FIELDS


def _unknown_check(body: dict, allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise invalid_request(
            f"Invalid request: unexpected parameter(s) {', '.join(unknown)} for {where}; "
            f"accepted: {', '.join(sorted(allowed))}"
        )


def _model(body: dict) -> Model:
    model_id = body.get("model")
    if not isinstance(model_id, str) or not model_id:
        raise invalid_request("model is required")
    model = model_get(model_id)
    if model is None:
        known = ", ".join(m.id for m in MODELS)
        raise invalid_request(f"Not found the model {model_id} or Permission denied; known models: {known}")
    return model


def _content_check(index: int, content: object) -> None:
    if isinstance(content, str):
        if not content:
            raise invalid_request(f"messages[{index}].content must not be empty")
    elif isinstance(content, list):
        if not content or not all(isinstance(p, dict) and p.get("type") for p in content):
            raise invalid_request(f"messages[{index}].content must be a non-empty list of typed parts")
    else:
        raise invalid_request(f"messages[{index}].content must be a non-empty string or list of parts")


def messages_parse(body: dict) -> list[dict]:
    """The `messages` of a request, each checked against the spec's `Message`."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid_request("messages must be a non-empty list")
    last = len(messages) - 1
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid_request(f"messages[{index}] must be an object with role and content")
        _unknown_check(message, MESSAGE_FIELDS, f"messages[{index}]")
        role = message.get("role")
        if role not in ROLES:
            raise invalid_request(f"messages[{index}].role must be one of {', '.join(ROLES)}, not {role!r}")
        _content_check(index, message.get("content"))
        for name in ("name", "reasoning_content"):
            if message.get(name) is not None and not isinstance(message[name], str):
                raise invalid_request(f"messages[{index}].{name} must be a string")
        partial = message.get("partial")
        if partial is not None and not isinstance(partial, bool):
            raise invalid_request(f"messages[{index}].partial must be true or false")
        if partial and (index != last or role != "assistant"):
            raise invalid_request(
                f"messages[{index}].partial: Partial Mode is only for the last message, an assistant one"
            )
    return messages


def _number(body: dict, name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise invalid_request(f"{name} must be a number in [{low:g}, {high:g}], not {value!r}")


def _optional_string(body: dict, name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid_request(f"{name} must be a string, not {value!r}")
    return value


def _max_tokens(body: dict) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise invalid_request(f"{name} must be a positive integer, not {value!r}")
    value = body.get("max_completion_tokens")
    if value is None:
        value = body.get("max_tokens")
    return DEFAULT_MAX_TOKENS if value is None else value


def _include_usage(body: dict) -> bool:
    options = body.get("stream_options")
    if options is None:
        return False
    if not isinstance(options, dict):
        raise invalid_request('stream_options must be an object such as {"include_usage": true}')
    _unknown_check(options, frozenset({"include_usage"}), "stream_options")
    include = options.get("include_usage", False)
    if not isinstance(include, bool):
        raise invalid_request("stream_options.include_usage must be true or false")
    return include


def _thinking_enabled(body: dict, model: Model) -> bool:
    option = body.get("thinking")
    if option is None:
        return model.always_thinks or model.thinking_switch  # the spec's default is enabled
    keys = frozenset({"type", "keep"}) if model.id == "kimi-k2.6" else frozenset({"type"})
    if not isinstance(option, dict) or option.get("type") not in ("enabled", "disabled"):
        raise invalid_request('thinking must be {"type": "enabled"} or {"type": "disabled"}')
    _unknown_check(option, keys, "thinking")
    if option.get("keep") not in (None, "all"):
        raise invalid_request('thinking.keep must be "all" or null')
    return option["type"] == "enabled"


def _shapes_check(body: dict) -> None:
    """`stop`, `response_format` and `tools` as the spec types them."""
    stop = body.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if (
            not isinstance(stops, list)
            or len(stops) > 5
            or not all(isinstance(s, str) and len(s.encode()) <= 32 for s in stops)
        ):
            raise invalid_request("stop must be a string or up to 5 strings of at most 32 bytes each")
    response_format = body.get("response_format")
    if response_format is not None:
        if (
            not isinstance(response_format, dict)
            or response_format.get("type", "text") not in _RESPONSE_FORMATS
        ):
            raise invalid_request(f"response_format.type must be one of {', '.join(_RESPONSE_FORMATS)}")
        _unknown_check(response_format, frozenset({"type", "json_schema"}), "response_format")
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list) or len(tools) > 128:
            raise invalid_request("tools must be a list of at most 128 tool definitions")
        for index, tool in enumerate(tools):
            function = tool.get("function") if isinstance(tool, dict) else None
            if (
                not isinstance(function, dict)
                or tool.get("type") != "function"
                or not isinstance(function.get("name"), str)
                or not _TOOL_NAME.match(function["name"])
                or not isinstance(function.get("parameters"), dict)
            ):
                raise invalid_request(
                    f"tools[{index}] must be {{type: function, function: {{name, parameters}}}} "
                    "with a name matching ^[a-zA-Z_][a-zA-Z0-9-_]{2,63}$"
                )


def chat_request_parse(body: dict) -> ChatRequest:
    """Validate a chat request as the spec describes; raise the API's 400 otherwise."""
    model = _model(body)
    _unknown_check(body, allowed_fields(model), f"model {model.id}")
    messages = messages_parse(body)
    _number(body, "temperature", 0, 1)
    _number(body, "top_p", 0, 1)
    _number(body, "presence_penalty", -2, 2)
    _number(body, "frequency_penalty", -2, 2)
    n = body.get("n")
    if n is None:
        n = 1
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 5:
        raise invalid_request(f"n must be an integer from 1 to 5, not {n!r}")
    max_tokens = _max_tokens(body)
    stream = body.get("stream")
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise invalid_request("stream must be true or false")
    include_usage = _include_usage(body)
    thinking = model.always_thinks or (model.thinking_switch and _thinking_enabled(body, model))
    prompt_cache_key = _optional_string(body, "prompt_cache_key")
    _optional_string(body, "safety_identifier")
    _shapes_check(body)

    prompt_tokens = messages_tokens(messages)
    if prompt_tokens + max_tokens > model.context_length:
        raise invalid_request(
            f"Invalid request: Your request exceeded model token limit: {model.context_length} "
            f"(prompt {prompt_tokens} tokens + max_tokens {max_tokens})"
        )
    last = messages[-1]
    partial_prefix = None
    if last.get("partial"):
        partial_prefix = message_text(last["content"])
    return ChatRequest(
        model=model,
        messages=messages,
        max_tokens=max_tokens,
        stream=stream,
        include_usage=include_usage,
        thinking=thinking,
        n=n,
        partial_prefix=partial_prefix,
        prompt_cache_key=prompt_cache_key or None,
    )


def estimate_request_parse(body: dict) -> list[dict]:
    """Validate an `EstimateTokenRequest`; return its messages."""
    _unknown_check(body, frozenset({"model", "messages"}), "the token estimate")
    model_id = body.get("model")
    if model_id not in ESTIMATE_MODELS:
        raise invalid_request(
            f"Invalid request: model {model_id!r} is not accepted by the token estimate; "
            f"accepted: {', '.join(ESTIMATE_MODELS)}"
        )
    return messages_parse(body)
