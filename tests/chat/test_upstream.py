"""What a real key does that a forgiving emulator would hide (issue 12), against the strict one.

Usage only when asked for, answers cut at the length limit (and continued with Partial Mode),
error events inside a 200 stream, the content filter, the thinking switch, the answer deadline
and a default model the account does not have. Faults are injected over the control API.
"""

from __future__ import annotations

import logging

import pytest

from docqa.chat import catalogue, services
from docqa.chat.models import FinishReason, Message, State, Thinking
from docqa.pricing import model_prices
from tests.chat.helpers import ask, finished, stream_text
from tests.conftest import wait_for

COMPLETIONS = "POST /v1/chat/completions"


def done(answer, timeout=30):
    return wait_for(lambda: finished(answer.pk), timeout=timeout, message="answer finished")


def requests_to_chat(emu) -> int:
    return emu.control.stats()["requests"].get(COMPLETIONS, 0)


def test_usage_is_asked_for_and_cached_tokens_and_cost_are_shown(
    celery_worker, conversation, client, user, settings
):
    first = done(ask(conversation))
    assert first.state == State.COMPLETE and first.prompt_tokens and first.completion_tokens
    # The same conversation again: its prefix (system prompt, documents) is in Moonshot's cache.
    second = done(ask(conversation, "And what drove it?"))
    assert second.cached_tokens and 0 < second.cached_tokens <= second.prompt_tokens
    client.force_login(user)
    page = client.get(f"/chat/answers/{second.pk}/").content.decode()
    assert "cached tokens" in page and "answer-cost" not in page  # no price configured, no cost
    settings.DOCQA_MODEL_PRICES = model_prices(f"{second.model}=4/16/1", name="x")
    page = client.get(f"/chat/answers/{second.pk}/").content.decode()
    expected = (
        (second.prompt_tokens - second.cached_tokens) * 4
        + second.cached_tokens
        + second.completion_tokens * 16
    )
    assert f"¥{expected / 1_000_000:.4f}" in page


def test_an_answer_cut_at_the_length_limit_says_so_and_continues_in_the_same_row(
    celery_worker, conversation, emu, client, user
):
    emu.control.add_fault(
        "POST", "/v1/chat/completions", kind="finish", finish_reason="length", after_deltas=2
    )
    cut = done(ask(conversation))
    assert cut.state == State.COMPLETE and cut.finish_reason == FinishReason.LENGTH and cut.is_cut_at_length
    client.force_login(user)
    page = client.get(f"/chat/answers/{cut.pk}/").content.decode()
    assert 'data-role="answer-cut"' in page and 'data-role="continue"' in page
    response = client.post(f"/chat/answers/{cut.pk}/continue/", headers={"HX-Request": "true"})
    assert response.status_code == 200 and 'data-state="streaming"' in response.content.decode()
    whole = done(cut)
    assert whole.pk == cut.pk and whole.state == State.COMPLETE and whole.finish_reason == FinishReason.STOP
    assert whole.content.startswith(cut.content) and len(whole.content) > len(cut.content)
    assert "twelve percent" in whole.content
    # The continuation's tokens are added to the first part's.
    assert whole.completion_tokens > cut.completion_tokens
    assert stream_text(cut.pk)[0] == whole.content[len(cut.content) :]
    assert Message.objects.filter(conversation=conversation).count() == 2


def test_reasoning_only_answer_offers_a_larger_budget_or_thinking_off(
    celery_worker, conversation, emu, client, user
):
    catalogue.models_refresh()
    services.conversation_set_model(conversation=conversation, model="kimi-k2.5")
    emu.control.add_fault(
        "POST", "/v1/chat/completions", kind="finish", finish_reason="length", after_deltas=2
    )
    thought = done(ask(conversation))
    assert thought.reasoning and not thought.content and thought.budget_went_on_thinking
    client.force_login(user)
    page = client.get(f"/chat/answers/{thought.pk}/").content.decode()
    assert 'data-role="retry-larger"' in page and 'data-role="retry-no-thinking"' in page
    assert 'data-role="continue"' not in page
    client.post(f"/chat/answers/{thought.pk}/regenerate/", {"budget": "larger"})
    larger = Message.objects.filter(conversation=conversation, role="assistant").latest("pk")  # a new version
    assert larger.max_completion_tokens == 2 * thought.max_completion_tokens
    done(larger)
    client.post(f"/chat/answers/{larger.pk}/regenerate/", {"thinking": "disabled"})
    conversation.refresh_from_db()
    assert conversation.thinking == Thinking.DISABLED
    plain = done(Message.objects.filter(conversation=conversation, role="assistant").latest("pk"))
    assert plain.state == State.COMPLETE and plain.content and not plain.reasoning


@pytest.mark.parametrize(
    ("error_type", "words"),
    [("content_filter", "content filter"), ("brand_new_error", "does not know (brand_new_error)")],
)
def test_an_error_event_first_in_the_stream_is_not_retried_blindly(
    celery_worker, conversation, emu, error_type, words
):
    emu.control.add_fault(
        "POST", "/v1/chat/completions", kind="stream_error", error_type=error_type, message="no", count=None
    )
    before = requests_to_chat(emu)
    answer = done(ask(conversation))
    assert answer.state == State.FAILED and words in answer.error_display
    assert requests_to_chat(emu) == before + 1


def test_an_error_event_mid_stream_is_reported_as_itself_with_the_text_kept(celery_worker, conversation, emu):
    emu.control.add_fault(
        "POST",
        "/v1/chat/completions",
        kind="stream_error",
        after_deltas=3,
        error_type="server_error",
        message="x",
    )
    answer = done(ask(conversation))
    assert answer.state == State.INTERRUPTED and answer.content
    assert "server error" in answer.error_display and "cut mid-way" not in answer.error_display


def test_a_content_filter_finish_is_shown_as_such(celery_worker, conversation, emu, client, user):
    emu.control.add_fault(
        "POST", "/v1/chat/completions", kind="finish", finish_reason="content_filter", after_deltas=1
    )
    answer = done(ask(conversation))
    assert answer.finish_reason == FinishReason.CONTENT_FILTER
    client.force_login(user)
    assert 'data-role="answer-filtered"' in client.get(f"/chat/answers/{answer.pk}/").content.decode()


def test_the_thinking_switch_is_sent_for_models_that_take_it(celery_worker, conversation, client, user):
    catalogue.models_refresh()
    client.force_login(user)
    # kimi-k2-turbo-preview has no switch: refused.
    client.post(f"/chat/{conversation.pk}/thinking/", {"thinking": "disabled"})
    conversation.refresh_from_db()
    assert conversation.thinking == Thinking.DEFAULT
    services.conversation_set_model(conversation=conversation, model="kimi-k2.6")
    page = client.get(f"/chat/{conversation.pk}/").content.decode()
    assert 'data-role="thinking"' in page
    response = client.post(f"/chat/{conversation.pk}/thinking/", {"thinking": "disabled"})
    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.thinking == Thinking.DISABLED
    answer = done(ask(conversation))
    assert answer.state == State.COMPLETE, answer.error
    assert answer.content and not answer.reasoning


def test_an_answer_past_its_deadline_ends_interrupted_with_what_arrived(
    celery_worker, conversation, emu, settings
):
    settings.DOCQA_ANSWER_DEADLINE = 1
    emu.control.configure(chunk_delay=0.2, chunk_size_words=1)
    answer = done(ask(conversation))
    assert answer.state == State.INTERRUPTED and answer.content
    assert "took too long" in answer.error_display
    assert len(answer.content.split()) < 30  # far from the whole answer


def test_a_default_model_the_account_lacks_falls_back_with_a_log_line(db, emu, settings, caplog, user):
    settings.MOONSHOT_MODEL = "kimi-gone-preview"
    with caplog.at_level(logging.WARNING, logger="docqa.chat.catalogue"):
        models = catalogue.models_refresh()
    assert "kimi-gone-preview" not in models
    assert catalogue.default_model() == "kimi-k2-turbo-preview"
    assert "kimi-gone-preview" in caplog.text
    settings.MOONSHOT_MODEL = "kimi-k2.5"
    catalogue.models_refresh()
    assert catalogue.default_model() == "kimi-k2.5" and not catalogue.default_model_replaced()


def test_the_admin_says_when_the_default_model_is_replaced(db, emu, settings, admin_client):
    settings.MOONSHOT_MODEL = "kimi-gone-preview"
    catalogue.models_refresh()
    page = admin_client.get("/admin/").content.decode()
    assert 'data-role="default-model-notice"' in page and "kimi-gone-preview" in page
