"""Message assembly and the token budget: pure functions, tested directly."""

import pytest

from docqa.chat import context
from docqa.chat.context import (
    DocumentSize,
    Turn,
    messages_assemble,
    system_prompt_with_names,
    token_budget_fit,
)

WINDOWS = {
    "moonshot-v1-8k": 8192,
    "moonshot-v1-32k": 32768,
    "moonshot-v1-128k": 131072,
    "kimi-k2-turbo-preview": 262144,
}


def test_assembly_order_matches_the_multi_file_example():
    raw_a = '{"content": "A \\u00e9t\\u00e9", "file_type": "application/pdf"}\n'
    raw_b = '{"content":"第二份文件"}'
    messages = messages_assemble(
        system_prompt="SYSTEM",
        documents=[raw_a, raw_b],
        turns=[Turn("q1", "a1"), Turn("q2", "a2")],
        question="q3",
    )
    assert messages == [
        {"role": "system", "content": "SYSTEM"},
        {"role": "system", "content": raw_a},
        {"role": "system", "content": raw_b},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "a2"},
        {"role": "user", "content": "q3"},
    ]
    # Byte for byte: not re-encoded, not stripped.
    assert messages[1]["content"] is raw_a


def test_prefix_is_identical_across_turns():
    first = messages_assemble(system_prompt="S", documents=["D1", "D2"], turns=[], question="q1")
    second = messages_assemble(
        system_prompt="S", documents=["D1", "D2"], turns=[Turn("q1", "a1")], question="q2"
    )
    assert second[: len(first) - 1] == first[:-1]
    assert second[len(first) - 1] == first[-1]


def test_default_system_prompt_follows_language_and_is_moonshots():
    assert context.system_prompt_default("zh-hans").startswith("你是 Kimi，由 Moonshot AI 提供的人工智能助手")
    assert context.system_prompt_default("en").startswith(
        "You are Kimi, an AI assistant provided by Moonshot AI."
    )


def test_safety_identifier_is_a_stable_keyed_hash():
    a = context.safety_identifier(7, secret="s1")
    assert a == context.safety_identifier(7, secret="s1")
    assert a != context.safety_identifier(8, secret="s1")
    assert a != context.safety_identifier(7, secret="s2")
    assert len(a) == 32 and int(a, 16) >= 0


def fit(model="moonshot-v1-auto", docs=(1000,), turns=(), question=10, completion=1000, fixed=50):
    return token_budget_fit(
        model=model,
        context_lengths=WINDOWS,
        fixed_tokens=fixed,
        documents=[DocumentSize(f"d{i}.pdf", t) for i, t in enumerate(docs)],
        turn_tokens=list(turns),
        question_tokens=question,
        max_completion_tokens=completion,
    )


@pytest.mark.parametrize(
    ("docs", "expected"),
    [((1000,), "moonshot-v1-8k"), ((7200,), "moonshot-v1-32k"), ((20000, 20000), "moonshot-v1-128k")],
)
def test_auto_chooses_the_smallest_window_that_fits(docs, expected):
    budget = fit(docs=docs)
    assert budget.fits and budget.model == expected and budget.dropped_turns == 0
    assert budget.prompt_tokens + budget.max_completion_tokens <= budget.context_length


def test_history_moves_up_a_window_before_dropping_turns():
    budget = fit(docs=(5000,), turns=(1500, 1500))
    assert budget.model == "moonshot-v1-32k" and budget.dropped_turns == 0


def test_oldest_turns_are_dropped_when_history_does_not_fit_the_largest_window():
    budget = fit(docs=(126000,), turns=(4000, 3000, 2000))
    assert budget.fits and budget.model == "moonshot-v1-128k"
    assert budget.dropped_turns == 2
    assert budget.prompt_tokens == 50 + 126000 + 10 + 2000
    assert budget.prompt_tokens + budget.max_completion_tokens <= 131072


def test_fixed_model_is_never_changed():
    budget = fit(model="moonshot-v1-8k", docs=(3000,), turns=(3000, 3000))
    assert budget.model == "moonshot-v1-8k" and budget.dropped_turns == 1


def test_completion_shrinks_before_refusing():
    budget = fit(model="moonshot-v1-8k", docs=(7500,), completion=4096)
    assert budget.fits and budget.max_completion_tokens == 8192 - 7560


def test_documents_too_long_name_the_largest_to_drop():
    budget = fit(docs=(90000, 30000, 20000))
    assert not budget.fits
    assert budget.documents_to_drop == ["d0.pdf"]
    budget = fit(model="moonshot-v1-8k", docs=(5000, 4000, 100))
    assert budget.documents_to_drop == ["d0.pdf"]


def test_exact_count_only_near_the_edge():
    assert not context.needs_exact_count(fit(docs=(1000,)))
    assert context.needs_exact_count(fit(docs=(6500,), model="moonshot-v1-8k", completion=1000))


def test_local_estimate_is_generous():
    assert context.text_tokens_estimate("") == 0
    assert context.text_tokens_estimate("abc") == 1
    assert context.text_tokens_estimate("你好世界") == 4
    assert context.text_tokens_estimate("hello world, this is English") >= 28 / 4


def test_system_prompt_names_each_document_as_the_user_knows_it():
    assert system_prompt_with_names("Be helpful.", []) == "Be helpful."
    prompt = system_prompt_with_names(
        "Be helpful.", [("docqa-1.pdf", "plan.pdf"), ("docqa-2.md", "notes.md")]
    )
    assert prompt.startswith("Be helpful.\n\n")
    assert "1. docqa-1.pdf = “plan.pdf”\n2. docqa-2.md = “notes.md”\n\n" in prompt
    assert prompt.endswith(context.CITATION_INSTRUCTION_EN)


def test_the_citation_instruction_is_in_the_conversations_language_and_stable():
    names = [("docqa-1.pdf", "plan.pdf")]
    english = system_prompt_with_names(context.system_prompt_default("en"), names)
    chinese = system_prompt_with_names(context.system_prompt_default("zh-hans"), names)
    assert english.endswith(context.CITATION_INSTRUCTION_EN) and "【n†" in english
    assert chinese.endswith(context.CITATION_INSTRUCTION_ZH) and "【n†" in chinese
    # The same inputs give the same bytes on every turn (the prompt cache's prefix).
    assert system_prompt_with_names(context.system_prompt_default("zh-hans"), names) == chinese
