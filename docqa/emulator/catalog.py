"""The models the emulator offers: every id in the OpenAPI spec's chat request enums."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Model:
    """One chat model as `GET /v1/models` describes it."""

    id: str
    context_length: int
    supports_reasoning: bool = False
    supports_image_in: bool = False
    # Thinking-only models always reason; kimi-k2.5/k2.6 reason unless the request says
    # `"thinking": {"type": "disabled"}` (the spec gives `enabled` as their default).
    always_thinks: bool = False
    thinking_switch: bool = False


MODELS: tuple[Model, ...] = (
    Model("kimi-k2.6", 262144, supports_reasoning=True, supports_image_in=True, thinking_switch=True),
    Model("kimi-k2.5", 262144, supports_reasoning=True, supports_image_in=True, thinking_switch=True),
    Model("kimi-k2-turbo-preview", 262144),
    Model("kimi-k2-0905-preview", 262144),
    Model("kimi-k2-0711-preview", 131072),
    Model("kimi-k2-thinking", 262144, supports_reasoning=True, always_thinks=True),
    Model("kimi-k2-thinking-turbo", 262144, supports_reasoning=True, always_thinks=True),
    Model("moonshot-v1-8k", 8192),
    Model("moonshot-v1-32k", 32768),
    Model("moonshot-v1-128k", 131072),
    # The real `auto` picks 8k/32k/128k by prompt length, so its ceiling is 128k.
    Model("moonshot-v1-auto", 131072),
    Model("moonshot-v1-8k-vision-preview", 8192, supports_image_in=True),
    Model("moonshot-v1-32k-vision-preview", 32768, supports_image_in=True),
    Model("moonshot-v1-128k-vision-preview", 131072, supports_image_in=True),
)

MODELS_BY_ID = {model.id: model for model in MODELS}

# A fixed timestamp so the list is the same on every run.
MODELS_CREATED_AT = 1_700_000_000


def model_get(model_id: str) -> Model | None:
    """Return the model with this id, or None if the emulator does not know it."""
    return MODELS_BY_ID.get(model_id)


def model_as_json(model: Model) -> dict:
    """The model object of `GET /v1/models`."""
    return {
        "id": model.id,
        "object": "model",
        "created": MODELS_CREATED_AT,
        "owned_by": "moonshot",
        "root": model.id,
        "parent": None,
        "permission": [],
        "context_length": model.context_length,
        "supports_image_in": model.supports_image_in,
        "supports_video_in": model.supports_image_in and model.id.startswith("kimi"),
        "supports_reasoning": model.supports_reasoning,
    }
