"""The model catalogue: which Kimi models exist, their windows, which think, how long they may answer.

Moonshot's `GET /v1/models` is cached in Redis; pages and asks read the cache and never wait
on Moonshot. A cold cache queues the `models_refresh` task by its registered name (this module
is called by the tasks, so it does not import them).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _

from docqa import keys
from docqa.celery import app as celery_app
from docqa.chat import context
from docqa.connections import moonshot_client, redis_client

logger = logging.getLogger("docqa.chat.catalogue")

# Before the first `/v1/models` answer: the models known to think (afterwards the list's
# `supports_reasoning` decides).
THINKING_MODEL_PREFIXES = ("kimi-k2-thinking", "kimi-k2.5", "kimi-k2.6")
# The families whose request schema (seed 004: KimiK25ChatRequest, KimiK26ChatRequest) takes
# `thinking: {"type": "enabled" | "disabled"}`.
THINKING_SWITCH_PREFIXES = ("kimi-k2.5", "kimi-k2.6")
# Preferred stand-ins, in order, when the configured default is not in the account's list.
DEFAULT_STAND_INS = ("kimi-k2-turbo-preview", "kimi-k2.5", "kimi-k2-0905-preview", "moonshot-v1-auto")
# The name `docqa.chat.tasks.models_refresh` is registered under (tasks.py names it so).
MODELS_REFRESH_TASK = "docqa.chat.tasks.models_refresh"


def models_available() -> dict[str, int]:
    """Model ids and their context windows, from the cached `GET /v1/models`.

    Never calls Moonshot (views must not wait on it): when the cache is cold a refresh is
    queued and the configured default plus the moonshot-v1 family stand in.
    """
    try:
        cached = redis_client().get(keys.MODELS_CACHE)
    except Exception:  # noqa: BLE001 - a page still renders without the list
        cached = None
    if cached:
        return json.loads(cached)
    try:
        celery_app.signature(MODELS_REFRESH_TASK).delay()
    except Exception:  # noqa: BLE001
        logger.warning("could not queue a models refresh", exc_info=True)
    fallback = {settings.MOONSHOT_MODEL: context.FALLBACK_CONTEXT_LENGTH}
    fallback.update(dict(context.MOONSHOT_V1_SIZES))
    return fallback


def models_refresh() -> dict[str, int]:
    """Fetch the model list from Moonshot and cache it for a few minutes.

    When the configured default is not in the list, a stand-in is chosen, logged, and kept
    where the admin shows it (`default_model_replaced`).
    """
    infos = moonshot_client().models_list()
    models = {info.id: info.context_length or context.FALLBACK_CONTEXT_LENGTH for info in infos}
    reasoning = sorted(info.id for info in infos if info.supports_reasoning)
    ttl = settings.DOCQA_MODELS_CACHE_SECONDS
    pipe = redis_client().pipeline()
    pipe.set(keys.MODELS_CACHE, json.dumps(models), ex=ttl)
    pipe.set(keys.MODELS_REASONING, json.dumps(reasoning), ex=ttl)
    stand_in = _stand_in(models)
    if stand_in:
        logger.warning(
            "MOONSHOT_MODEL %s is not among this account's models; new conversations use %s",
            settings.MOONSHOT_MODEL,
            stand_in,
        )
        pipe.set(keys.MODELS_DEFAULT_REPLACED, stand_in, ex=ttl)
    else:
        pipe.delete(keys.MODELS_DEFAULT_REPLACED)
    pipe.execute()
    return models


def _stand_in(models: dict[str, int]) -> str:
    """The model to use for the configured default when the account's list lacks it ("" if not)."""
    if not models or settings.MOONSHOT_MODEL in models:
        return ""
    chat = [m for m in sorted(models) if "vision" not in m]
    for candidate in DEFAULT_STAND_INS:
        if candidate in models:
            return candidate
    return chat[0] if chat else ""


def default_model_replaced() -> str:
    """The stand-in for a configured default the account does not have, or ""."""
    try:
        return redis_client().get(keys.MODELS_DEFAULT_REPLACED) or ""
    except Exception:  # noqa: BLE001 - a page still renders without the notice
        return ""


def default_model() -> str:
    """The model a new conversation uses: MOONSHOT_MODEL, or its stand-in when the account lacks it."""
    return default_model_replaced() or settings.MOONSHOT_MODEL


def model_choices() -> list[tuple[str, str]]:
    """(value, label) pairs for the model picker: the chat models, with moonshot-v1 auto-sized."""
    ids = sorted(m for m in models_available() if "vision" not in m and m != context.MOONSHOT_V1_AUTO)
    choices = [(m, m) for m in ids if not m.startswith("moonshot-v1-")]
    choices.append((context.MOONSHOT_V1_AUTO, _("moonshot-v1 (smallest window that fits)")))
    choices += [(m, m) for m in ids if m.startswith("moonshot-v1-")]
    default = default_model()
    if default not in dict(choices):
        choices.insert(0, (default, default))
    return choices


def is_thinking_model(model: str) -> bool:
    """Whether the model reasons: `supports_reasoning` from the cached `/v1/models`, or the
    known thinking families before the list has been fetched."""
    try:
        cached = redis_client().get(keys.MODELS_REASONING)
    except Exception:  # noqa: BLE001 - the names stand in
        cached = None
    if cached:
        return model in json.loads(cached)
    return model.startswith(THINKING_MODEL_PREFIXES)


def thinking_switchable(model: str) -> bool:
    """Whether a conversation may switch thinking on or off for this model (seed 004's schemas)."""
    return model.startswith(THINKING_SWITCH_PREFIXES)


def max_completion_tokens_for(model: str) -> int:
    """The completion budget: thinking models get a larger one (their reasoning counts too)."""
    if is_thinking_model(model):
        return settings.DOCQA_MAX_COMPLETION_TOKENS_THINKING
    return settings.DOCQA_MAX_COMPLETION_TOKENS


# Room a request needs besides the document: the system prompt, the question, a few turns.
FIT_OVERHEAD_TOKENS = 2_000


@dataclass(frozen=True)
class DocumentFit:
    """Which chat models' windows hold a document of some size (smallest window first)."""

    models: list[str]
    largest: int


def document_fit(tokens: int, windows: dict[str, int] | None = None) -> DocumentFit:
    """The chat models a document alone fits, leaving room for the answer and a question.

    An estimate shown up front in the documents list (the exact check is `prepare.request_fit`
    when a conversation starts); `windows` is `models_available()` read once per page.
    """
    windows = models_available() if windows is None else windows
    chat = {m: w for m, w in windows.items() if "vision" not in m and m != context.MOONSHOT_V1_AUTO}
    fitting = sorted(
        (w, m) for m, w in chat.items() if tokens + max_completion_tokens_for(m) + FIT_OVERHEAD_TOKENS <= w
    )
    return DocumentFit(models=[m for _w, m in fitting], largest=max(chat.values(), default=0))
