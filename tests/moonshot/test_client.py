"""Every endpoint of the client against the emulator over real HTTP."""

from __future__ import annotations

import json
import time

import pytest

from docqa.moonshot import (
    AuthenticationError,
    Balance,
    ChatChunk,
    ContextLengthError,
    FileObject,
    InvalidRequestError,
    ModelInfo,
    NotFoundError,
    PermissionDeniedError,
)
from tests.moonshot.rawserver import send_response

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def wait_ready(client, file_id: str, timeout: float = 10.0) -> FileObject:
    deadline = time.monotonic() + timeout
    while True:
        info = client.files_retrieve(file_id)
        if not info.is_processing or time.monotonic() > deadline:
            return info
        time.sleep(0.02)


def test_file_lifecycle(client, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("The quarterly revenue was 42 million yuan.\n", encoding="utf-8")

    created = client.files_create(path, filename="季度报告.txt")
    assert isinstance(created, FileObject)
    assert created.id
    assert created.filename == "季度报告.txt"
    assert created.purpose == "file-extract"
    assert created.bytes == path.stat().st_size
    assert created.raw["object"] == "file"

    ready = wait_ready(client, created.id)
    assert ready.is_ready, ready
    assert [f.id for f in client.files_list()] == [created.id]

    content = client.files_content(created.id)
    assert isinstance(content, str)
    assert "42 million yuan" in json.loads(content)["content"]

    assert client.files_delete(created.id) is True
    assert client.files_list() == []
    with pytest.raises(NotFoundError):
        client.files_retrieve(created.id)
    # Callers treat a 404 on delete as "already gone".
    with pytest.raises(NotFoundError):
        client.files_delete(created.id)


def test_failed_extraction_is_reported_with_details(client, emu, tmp_path):
    emu.control.add_fault("POST", "/v1/files", kind="extract_error", message="scanned PDF, no text")
    path = tmp_path / "scan.txt"
    path.write_text("x")
    created = client.files_create(path, filename="scan.txt")
    info = wait_ready(client, created.id)
    assert info.is_failed
    assert not info.is_ready and not info.is_processing
    assert info.status_details == "scanned PDF, no text"
    with pytest.raises(InvalidRequestError):
        client.files_content(created.id)


def test_file_content_of_unknown_id_is_not_found(client):
    with pytest.raises(NotFoundError) as caught:
        client.files_content("cq-does-not-exist")
    assert caught.value.status == 404
    assert not caught.value.retryable


def test_file_ids_are_escaped_into_the_path(client):
    with pytest.raises(NotFoundError):
        client.files_retrieve("../models")


def test_chat_completion(client):
    answer = client.chat_completion(model="moonshot-v1-8k", messages=MESSAGES, temperature=0.3)
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["content"]
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"]["total_tokens"] > 0


def test_chat_completion_refuses_stream_flag(client):
    with pytest.raises(ValueError):
        client.chat_completion(model="moonshot-v1-8k", messages=MESSAGES, stream=True)


def test_chat_completion_stream(client):
    chunks = list(client.chat_completion_stream(model="moonshot-v1-8k", messages=MESSAGES))
    assert all(isinstance(c, ChatChunk) for c in chunks)
    assert len(chunks) > 2
    text = "".join(c.content for c in chunks)
    assert text
    assert chunks[-1].finish_reason == "stop"
    # Seed 004: usage only when asked for (`stream_options.include_usage`).
    assert all(c.usage is None for c in chunks)
    assert all(c.finish_reason is None for c in chunks[:-1])
    assert {c.model for c in chunks} == {"moonshot-v1-8k"}
    assert len({c.id for c in chunks}) == 1


def test_stream_with_include_usage_chunk(client):
    chunks = list(
        client.chat_completion_stream(
            model="moonshot-v1-8k", messages=MESSAGES, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].raw["choices"] == []
    assert chunks[-1].usage["total_tokens"] > 0


def test_thinking_model_streams_reasoning_separately(client):
    chunks = list(client.chat_completion_stream(model="kimi-k2-thinking", messages=MESSAGES))
    reasoning = "".join(c.reasoning_content for c in chunks)
    content = "".join(c.content for c in chunks)
    assert reasoning and content
    assert reasoning not in content


def test_models_list(client):
    models = client.models_list()
    assert all(isinstance(m, ModelInfo) for m in models)
    by_id = {m.id: m for m in models}
    assert by_id["moonshot-v1-8k"].context_length == 8192
    assert not by_id["moonshot-v1-8k"].supports_reasoning
    assert by_id["kimi-k2-thinking"].supports_reasoning
    assert by_id["moonshot-v1-8k-vision-preview"].supports_image_in


def test_estimate_token_count(client):
    short = client.estimate_token_count(model="moonshot-v1-8k", messages=MESSAGES)
    longer = client.estimate_token_count(
        model="moonshot-v1-8k", messages=MESSAGES + [{"role": "user", "content": "more " * 100}]
    )
    assert isinstance(short, int) and 0 < short < longer


def test_balance(client):
    balance = client.balance()
    assert isinstance(balance, Balance)
    assert balance.available_balance == pytest.approx(49.58894)
    assert balance.voucher_balance == pytest.approx(46.58893)
    assert balance.cash_balance == pytest.approx(3.00001)


def test_wrong_key_is_authentication_error_without_retry(emu, make_client, sleep):
    client = make_client(emu.base_url, "sk-wrong-key-000000")
    with pytest.raises(AuthenticationError) as caught:
        client.models_list()
    assert caught.value.status == 401
    assert caught.value.type == "invalid_authentication_error"
    assert emu.control.stats()["requests"]["GET /v1/models"] == 1
    assert sleep.waits == []


def test_invalid_request_is_not_retried(client, emu, sleep):
    with pytest.raises(InvalidRequestError) as caught:
        client.chat_completion(model="moonshot-v1-8k", messages=MESSAGES, temperature=5)
    assert "temperature" in str(caught.value)
    assert not isinstance(caught.value, ContextLengthError)
    assert emu.control.stats()["requests"]["POST /v1/chat/completions"] == 1
    assert sleep.waits == []


def test_too_long_input_is_context_length_error(client):
    huge = [{"role": "user", "content": "lorem ipsum dolor sit amet " * 2000}]
    with pytest.raises(ContextLengthError) as caught:
        client.chat_completion(model="moonshot-v1-8k", messages=huge)
    assert "token limit" in caught.value.message
    with pytest.raises(ContextLengthError):
        next(client.chat_completion_stream(model="moonshot-v1-8k", messages=huge))


def test_permission_denied(client, emu, sleep):
    emu.control.add_fault(
        "GET", "/v1/models", status=403, error_type="permission_denied_error", message="no access"
    )
    with pytest.raises(PermissionDeniedError) as caught:
        client.models_list()
    assert caught.value.message == "no access"
    assert sleep.waits == []


# Over a raw socket server: responses the emulator does not send


def test_status_detail_spelling_from_the_wire(raw_server, make_client):
    def handler(request, conn):
        send_response(
            conn,
            200,
            {
                "id": "cq1",
                "object": "file",
                "bytes": 3,
                "created_at": 1,
                "filename": "a.pdf",
                "purpose": "file-extract",
                "status": "error",
                "status_detail": "encrypted",
            },
        )

    client = make_client(raw_server(handler).base_url)
    info = client.files_retrieve("cq1")
    assert info.is_failed and info.status_details == "encrypted"


def test_file_content_without_charset_is_decoded_as_utf8(raw_server, make_client):
    body = '{"content": "第一季度收入", "type": "file"}'

    def handler(request, conn):
        send_response(conn, 200, body.encode(), content_type="text/plain")

    client = make_client(raw_server(handler).base_url)
    assert client.files_content("cq1") == body
