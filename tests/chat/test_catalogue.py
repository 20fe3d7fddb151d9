"""The model catalogue: the cached list, the picker's choices, thinking models' budgets."""

from __future__ import annotations

import json

from docqa import keys
from docqa.chat import catalogue, context
from docqa.connections import redis_client
from tests.conftest import wait_for


def test_a_cold_cache_stands_in_and_queues_a_refresh_that_a_worker_runs(celery_worker, settings):
    redis_client().delete(keys.MODELS_CACHE)
    models = catalogue.models_available()
    assert models == {
        settings.MOONSHOT_MODEL: context.FALLBACK_CONTEXT_LENGTH,
        **dict(context.MOONSHOT_V1_SIZES),
    }
    # Queued by the task's registered name: the worker fetches the list from Moonshot (the emulator).
    cached = wait_for(lambda: redis_client().get(keys.MODELS_CACHE), message="the model list cached")
    assert "kimi-k2-thinking" in json.loads(cached)
    assert catalogue.models_available() == json.loads(cached)


def test_choices_offer_moonshot_v1_auto_and_leave_out_vision_models(db, settings):
    redis_client().set(
        keys.MODELS_CACHE,
        json.dumps(
            {"kimi-k2-turbo-preview": 262144, "moonshot-v1-8k": 8192, "moonshot-v1-8k-vision-preview": 8192}
        ),
    )
    values = [value for value, _label in catalogue.model_choices()]
    assert values == ["kimi-k2-turbo-preview", context.MOONSHOT_V1_AUTO, "moonshot-v1-8k"]


def test_thinking_models_get_the_larger_completion_budget(settings):
    assert catalogue.is_thinking_model("kimi-k2-thinking-turbo") and catalogue.is_thinking_model("kimi-k2.5")
    assert not catalogue.is_thinking_model("kimi-k2-turbo-preview")
    assert (
        catalogue.max_completion_tokens_for("kimi-k2-thinking")
        == settings.DOCQA_MAX_COMPLETION_TOKENS_THINKING
    )
    assert catalogue.max_completion_tokens_for("moonshot-v1-8k") == settings.DOCQA_MAX_COMPLETION_TOKENS
