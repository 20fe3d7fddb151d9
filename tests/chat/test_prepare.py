"""Preparing an answer's request: one token budget for the ask and the task, the exact bytes sent."""

from __future__ import annotations

import re

import pytest

from docqa.chat import generation, prepare
from docqa.chat.context import Turn
from docqa.chat.generation import GenerationOutcome
from docqa.chat.models import Message, State
from docqa.chat.refusals import ChatRefused
from docqa.documents.models import StoredFile
from docqa.moonshot import MoonshotClient
from tests.chat.helpers import ask, finished
from tests.conftest import wait_for
from tests.factories import exchange_create


def test_documents_too_long_are_refused_in_the_same_words_at_the_ask_and_in_the_task(
    db, user, make_document, make_conversation
):
    small, big = make_document(user, "small.txt", tokens=1000), make_document(user, "huge.txt", tokens=1000)
    conversation = make_conversation(user, [small, big])
    StoredFile.objects.filter(pk=big.stored_file_id).update(token_count=300_000)
    documents = list(conversation.ordered_documents())
    with pytest.raises(ChatRefused) as refused:
        prepare.request_fit(
            model=conversation.model,
            system_prompt=conversation.system_prompt,
            documents=documents,
            question="What grew?",
        )
    shown = str(refused.value)
    assert "“huge.txt”" in shown.split("Leave out")[1] and "small.txt" not in shown
    assert re.search(
        rf"too long for {conversation.model} \(30\d,\d{{3}} tokens; the window holds [\d,]+\)", shown
    )
    # The task preparing an answer in the meantime fails it with the same (stored) refusal.
    _question, answer = exchange_create(
        conversation=conversation, question="What grew?", state=State.STREAMING
    )
    assert generation.answer_generate(answer_id=answer.pk) == GenerationOutcome.FAILED
    answer.refresh_from_db()
    assert answer.state == State.FAILED and answer.error == refused.value.message
    assert answer.error_display == shown


def test_earlier_turns_never_refuse_the_oldest_are_dropped(db, user, make_document, make_conversation):
    conversation = make_conversation(user, [make_document(user, tokens=1000)], model="moonshot-v1-8k")
    turns = [Turn("q" * 3000, "a" * 3000) for _ in range(6)]
    fit = prepare.request_fit(
        model=conversation.model,
        system_prompt=conversation.system_prompt,
        documents=list(conversation.ordered_documents()),
        turns=turns,
        question="And now?",
    )
    assert fit.budget.fits and 0 < fit.budget.dropped_turns < len(turns)
    assert fit.system_prompt.startswith(conversation.system_prompt)


def test_request_carries_documents_byte_for_byte_cache_key_and_hashed_user(
    celery_worker, conversation, user, monkeypatch
):
    seen = []
    original = MoonshotClient.chat_completion_stream_batches

    def spy(self, **kwargs):
        seen.append(kwargs)
        return original(self, **kwargs)

    monkeypatch.setattr(MoonshotClient, "chat_completion_stream_batches", spy)
    first = ask(conversation, "What grew?")
    wait_for(lambda: finished(first.pk), message="first answer")
    second = ask(conversation, "And the rain?")
    wait_for(lambda: finished(second.pk), message="second answer")
    one, two = seen
    raws = [d.stored_file.content_raw for d in conversation.ordered_documents()]
    assert [m["content"] for m in one["messages"][1:3]] == raws
    assert one["messages"][0]["content"].startswith("You are Kimi")
    assert two["messages"][:3] == one["messages"][:3]
    assert two["messages"][3:] == [
        {"role": "user", "content": "What grew?"},
        {"role": "assistant", "content": Message.objects.get(pk=first.pk).content},
        {"role": "user", "content": "And the rain?"},
    ]
    assert one["prompt_cache_key"] == two["prompt_cache_key"] == str(conversation.pk)
    assert one["safety_identifier"] == two["safety_identifier"]
    assert user.username not in one["safety_identifier"] and str(user.pk) != one["safety_identifier"]
