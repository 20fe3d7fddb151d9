"""Chat completions: validation, the offline answer, streaming shape, thinking, limits."""

from __future__ import annotations

import json
import time

import pytest

from tests.emulator.conftest import sse_events

DOCUMENT = json.dumps(
    {
        "content": (
            "Tides are caused by the moon's gravity pulling on the oceans.\n\n"
            "The harbour master publishes a tide table every Monday.\n\n"
            "Lighthouses use Fresnel lenses to focus their beams."
        ),
        "file_type": "text/plain",
        "filename": "harbour.txt",
        "title": "",
        "type": "file",
    },
    ensure_ascii=False,
)
QUESTION = [
    {"role": "system", "content": "You are Kimi."},
    {"role": "system", "content": DOCUMENT},
    {"role": "user", "content": "What causes the tides?"},
]


def content_of(events: list) -> str:
    return "".join(
        e["choices"][0]["delta"].get("content") or "" for e in events if isinstance(e, dict) and e["choices"]
    )


def reasoning_of(events: list) -> str:
    return "".join(
        e["choices"][0]["delta"].get("reasoning_content") or ""
        for e in events
        if isinstance(e, dict) and e["choices"]
    )


def test_plain_completion_shape_and_honest_answer(api):
    response = api.chat(messages=QUESTION, temperature=0.3)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert body["model"] == "moonshot-v1-8k"
    assert isinstance(body["created"], int)
    [choice] = body["choices"]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    answer = choice["message"]["content"]
    assert "Offline mode" in answer and "no language model was called" in answer
    assert "harbour.txt" in answer
    # The best passage is quoted first, and passages sharing nothing are left out.
    assert answer.index("moon's gravity") < answer.index("tide table")
    assert "Fresnel" not in answer
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens"] > 0


def test_chinese_question_gets_chinese_framing(api):
    messages = [
        {"role": "system", "content": "潮汐是由月球引力引起的。\n\n灯塔使用菲涅耳透镜。"},
        {"role": "user", "content": "潮汐是什么引起的？"},
    ]
    answer = api.chat(messages=messages).json()["choices"][0]["message"]["content"]
    assert "离线模式" in answer
    assert "潮汐是由月球引力引起的" in answer
    assert "菲涅耳" not in answer


def test_no_matching_passage_is_said_plainly(api):
    messages = [
        {"role": "system", "content": "Apples are red."},
        {"role": "user", "content": "Quantum chromodynamics?"},
    ]
    answer = api.chat(messages=messages).json()["choices"][0]["message"]["content"]
    assert "No passage" in answer


def test_stream_shape_and_no_usage_unless_asked(api):
    # Was: usage in the last chunk regardless. Seed 004 sends it only with include_usage.
    events = api.stream(messages=QUESTION)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert len(chunks) > 5  # several-word deltas, not one blob
    final = chunks[-1]
    assert final["choices"][0]["finish_reason"] == "stop"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    assert not any("usage" in c or "usage" in c["choices"][0] for c in chunks)
    plain = api.chat(messages=QUESTION).json()
    assert content_of(chunks) == plain["choices"][0]["message"]["content"]
    usage = plain["usage"]  # a whole completion always has it
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_stream_include_usage_ends_with_a_choiceless_usage_chunk(api):
    events = api.stream(messages=QUESTION, stream_options={"include_usage": True})
    assert events[-1] == "[DONE]"
    last = events[-2]
    assert last["choices"] == []
    assert (
        last["usage"]["total_tokens"] == last["usage"]["prompt_tokens"] + last["usage"]["completion_tokens"]
    )
    assert last["usage"]["cached_tokens"] == 0
    # Every other chunk carries "usage": null, as the spec says.
    assert all(c["usage"] is None for c in events[:-2])
    assert events[-3]["choices"][0]["finish_reason"] == "stop"
    plain = api.chat(messages=QUESTION).json()
    assert last["usage"] == plain["usage"]


def test_include_usage_false_sends_no_usage(api):
    events = api.stream(messages=QUESTION, stream_options={"include_usage": False})
    assert not any("usage" in c for c in events[:-1])


def test_prompt_cache_key_reports_the_shared_prefix_as_cached_tokens(api):
    first = api.chat(messages=QUESTION, prompt_cache_key="conversation-7").json()["usage"]
    assert first["cached_tokens"] == 0
    follow_up = [
        *QUESTION,
        {"role": "assistant", "content": "The moon."},
        {"role": "user", "content": "Why?"},
    ]
    second = api.chat(messages=follow_up, prompt_cache_key="conversation-7").json()["usage"]
    # The whole first prompt is the prefix of the second.
    assert second["cached_tokens"] == first["prompt_tokens"] < second["prompt_tokens"]
    other_key = api.chat(messages=follow_up, prompt_cache_key="conversation-8").json()["usage"]
    assert other_key["cached_tokens"] == 0
    assert api.chat(messages=follow_up).json()["usage"]["cached_tokens"] == 0  # no key, no cache


def test_partial_mode_continues_from_the_assistant_prefix(api):
    whole = api.chat(messages=QUESTION).json()["choices"][0]["message"]["content"]
    prefix = whole[:60]
    partial = [*QUESTION, {"role": "assistant", "content": prefix, "partial": True}]
    body = api.chat(messages=partial).json()
    rest = body["choices"][0]["message"]["content"]
    assert rest == whole[60:] and not rest.startswith(prefix)
    events = api.stream(model="kimi-k2-thinking", messages=partial)
    assert content_of(events) == rest
    assert reasoning_of(events) == ""  # it continues the answer, not the thinking


@pytest.mark.parametrize(
    "messages, words",
    [
        ([{"role": "user", "content": "hi", "partial": True}], "Partial Mode"),
        (
            [{"role": "assistant", "content": "so", "partial": True}, {"role": "user", "content": "hi"}],
            "Partial Mode",
        ),
        ([{"role": "user", "content": "hi", "partial": "yes"}], "partial"),
        ([{"role": "user", "content": "hi", "weight": 2}], "weight"),
    ],
)
def test_partial_mode_and_message_fields_are_checked(api, messages, words):
    response = api.chat(messages=messages)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert words in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "model, thinking, reasons",
    [
        ("kimi-k2-thinking", None, True),
        ("kimi-k2-thinking-turbo", None, True),
        ("kimi-k2.5", {"type": "enabled"}, True),
        ("kimi-k2.6", None, True),  # the spec's default for k2.5/k2.6 is enabled
        ("kimi-k2.6", {"type": "disabled"}, False),
        ("kimi-k2-turbo-preview", None, False),
    ],
)
def test_thinking_models_stream_reasoning_before_content(api, model, thinking, reasons):
    body = {"model": model, "messages": QUESTION}
    if thinking:
        body["thinking"] = thinking
    events = api.stream(**body)
    reasoning = reasoning_of(events)
    if not reasons:
        assert reasoning == ""
        return
    assert reasoning.startswith("Offline mode: no model is running. Ranking")
    fields = [next(iter(e["choices"][0]["delta"])) for e in events[1:-2]]
    assert fields == sorted(fields, key=lambda f: f != "reasoning_content")  # all reasoning first
    message = api.chat(**body).json()["choices"][0]["message"]
    assert message["reasoning_content"] == reasoning


def test_max_tokens_cuts_the_answer_with_finish_reason_length(api):
    body = api.chat(messages=QUESTION, max_tokens=10).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert 0 < body["usage"]["completion_tokens"] <= 10
    events = api.stream(messages=QUESTION, max_completion_tokens=10)
    assert events[-2]["choices"][0]["finish_reason"] == "length"
    assert content_of(events) == body["choices"][0]["message"]["content"]


def test_prompt_over_the_context_window_is_refused(api):
    long_document = "word " * 8000  # about 10,000 tokens, over moonshot-v1-8k's 8,192
    messages = [{"role": "system", "content": long_document}, {"role": "user", "content": "Summarise."}]
    response = api.chat(messages=messages)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "exceeded model token limit" in response.json()["error"]["message"]
    assert api.chat(model="moonshot-v1-32k", messages=messages).status_code == 200


def test_max_tokens_counts_toward_the_context_window(api):
    messages = [{"role": "user", "content": "hello"}]
    assert api.chat(messages=messages, max_tokens=8000).status_code == 200
    refused = api.chat(messages=messages, max_tokens=8192)
    assert refused.status_code == 400
    assert "exceeded model token limit" in refused.json()["error"]["message"]


@pytest.mark.parametrize(
    "body, words",
    [
        ({"model": "gpt-4"}, "gpt-4"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "role"),
        ({"messages": [{"role": "user", "content": ""}]}, "empty"),
        ({"temperature": 1.5}, "temperature"),
        ({"n": 6}, "n must"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_completion_tokens": "1024"}, "max_completion_tokens"),
        ({"seed": 42}, "unexpected parameter(s) seed"),
        ({"user": "u-1"}, "unexpected parameter(s) user"),
        ({"logprobs": True}, "logprobs"),
        ({"thinking": {"type": "enabled"}}, "thinking"),  # moonshot-v1 has no thinking switch
        ({"model": "kimi-k2.5", "temperature": 0.6}, "temperature"),  # k2.5 lists no sampling fields
        ({"model": "kimi-k2.5", "thinking": {"type": "enabled", "keep": "all"}}, "keep"),
        ({"model": "kimi-k2.6", "thinking": {"type": "enabled", "keep": "some"}}, "keep"),
        ({"model": "kimi-k2.6", "thinking": {"type": "on"}}, "thinking"),
        ({"stream": "yes"}, "stream"),
        ({"stream_options": {"include_usage": "yes"}}, "include_usage"),
        ({"stream_options": {"continuous_usage_stats": True}}, "continuous_usage_stats"),
        ({"stream_options": True}, "stream_options"),
        ({"prompt_cache_key": 7}, "prompt_cache_key"),
        ({"safety_identifier": ["a"]}, "safety_identifier"),
        ({"stop": ["a", "b", "c", "d", "e", "f"]}, "stop"),
        ({"response_format": {"type": "xml"}}, "response_format"),
        ({"tools": [{"type": "function", "function": {"name": "x", "parameters": {}}}]}, "tools[0]"),
    ],
)
def test_invalid_requests_are_400_invalid_request_error(api, body, words):
    full = {"model": "moonshot-v1-8k", "messages": [{"role": "user", "content": "hi"}], **body}
    response = api.post("/chat/completions", json=full)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert words in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "extra",
    [
        {"max_completion_tokens": 500, "prompt_cache_key": "c-1", "safety_identifier": "h-1"},
        {"max_tokens": 500, "stop": ["\n\n"], "response_format": {"type": "text"}},
        {"stream": False, "stream_options": {"include_usage": True}, "n": 1, "top_p": 0.9},
        {"model": "kimi-k2.6", "thinking": {"type": "enabled", "keep": "all"}},
        {"model": "kimi-k2.5", "thinking": {"type": "disabled"}, "prompt_cache_key": None},
        {"model": "kimi-k2-thinking", "temperature": 1.0, "presence_penalty": 0, "frequency_penalty": 0},
        {"tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]},
    ],
)
def test_the_specs_fields_are_accepted(api, extra):
    body = {
        "model": "moonshot-v1-8k",
        "messages": [{"role": "user", "content": "hi", "name": "ann"}],
        **extra,
    }
    response = api.post("/chat/completions", json=body)
    assert response.status_code == 200, response.text


def test_body_that_is_not_json_is_refused(api):
    response = api.post("/chat/completions", data=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400


def test_first_token_delay_and_chunk_delay_pace_the_stream(emu, api):
    emu.control.configure(first_token_delay=0.3, chunk_delay=0.02, chunk_size_words=50)
    started = time.monotonic()
    with api.post(
        "/chat/completions",
        json={"model": "moonshot-v1-8k", "messages": QUESTION, "stream": True},
        stream=True,
    ) as response:
        headers_at = time.monotonic() - started
        events = sse_events(response)
    total = time.monotonic() - started
    assert headers_at < 0.25  # headers come at once; the wait is for the first token
    assert total >= 0.3 + 0.02 * (len(events) - 4)
    assert events[-1] == "[DONE]"


def test_offline_answer_quotes_files_not_the_system_prompt():
    from docqa.emulator.answer import documents_from_messages

    messages = [
        {"role": "system", "content": "You are Kimi, an assistant that refuses terrorism questions."},
        {"role": "system", "content": json.dumps({"content": "Revenue grew 12%.", "filename": "r.pdf"})},
        {"role": "user", "content": "How did revenue grow?"},
    ]
    assert documents_from_messages(messages) == [("r.pdf", "Revenue grew 12%.")]
    # Without file messages, every system message is material.
    assert len(documents_from_messages(messages[:1] + messages[2:])) == 1


def test_offline_answer_names_files_as_the_prompt_maps_them():
    from docqa.emulator.answer import documents_from_messages

    messages = [
        {"role": "system", "content": "You are Kimi.\n\nDocuments:\n1. docqa-ab12.pdf = “Q3 report.pdf”"},
        {"role": "system", "content": json.dumps({"content": "Revenue grew.", "filename": "docqa-ab12.pdf"})},
        {"role": "user", "content": "Revenue?"},
    ]
    assert documents_from_messages(messages) == [("Q3 report.pdf", "Revenue grew.")]


def test_offline_answer_cites_passages_verbatim_so_they_verify(api):
    from docqa.chat.citations import citations_check

    answer = api.chat(messages=QUESTION).json()["choices"][0]["message"]["content"]
    assert "【1†Tides are caused by the moon's gravity pulling on the oceans.】" in answer
    assert "score" not in answer.lower()
    citations = citations_check(answer, [json.loads(DOCUMENT)["content"]], [7])
    assert len(citations) == 2
    assert all(c.verified and c.score == 1.0 and c.document_id == 7 for c in citations)


def test_offline_citations_number_documents_as_sent():
    from docqa.chat.citations import citations_check
    from docqa.emulator.answer import offline_answer

    texts = ["Apples are red and grow on trees.", "Bananas are yellow and grow in bunches."]
    messages = [
        {"role": "system", "content": "You are Kimi."},
        *(
            {"role": "system", "content": json.dumps({"content": t, "filename": f"{i}.txt"})}
            for i, t in enumerate(texts)
        ),
        {"role": "user", "content": "What colour are bananas?"},
    ]
    answer = offline_answer(messages).content
    assert "【2†Bananas are yellow and grow in bunches.】" in answer
    assert all(c.verified for c in citations_check(answer, texts, [1, 2]))
    # A lone system message is document 1; in Chinese too.
    chinese = offline_answer(
        [
            {"role": "system", "content": "潮汐是由月球引力引起的。"},
            {"role": "user", "content": "潮汐是什么引起的？"},
        ]
    )
    assert "【1†潮汐是由月球引力引起的。】" in chinese.content
    assert "得分" not in chinese.content and "得分" not in chinese.reasoning
