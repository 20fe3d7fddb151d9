"""Small things the seeds say that the client must do (issue 12): `deleted: false`, the
content endpoint's media type, the estimate endpoint's model list, usage only when asked."""

from __future__ import annotations

import pytest

from docqa.moonshot import InvalidRequestError, NotDeletedError
from docqa.moonshot.client import estimate_model_for
from tests.moonshot.rawserver import send_response

MESSAGES = [{"role": "user", "content": "How many legs has a spider?"}]


def test_deleted_false_is_retried_and_not_counted_as_done(client, emu, sleep, tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"keep me for a while")
    file_id = client.files_create(path, filename="a.txt").id
    emu.control.add_fault(method="DELETE", path="/v1/files/*", kind="not_deleted", count=2)
    assert client.files_delete(file_id) is True
    assert len(sleep.waits) == 2  # two answers of deleted: false, each waited out
    assert file_id not in {f.id for f in client.files_list()}


def test_deleted_false_every_time_is_raised_for_the_caller_to_retry(client, emu, tmp_path):
    path = tmp_path / "b.txt"
    path.write_bytes(b"stubborn")
    file_id = client.files_create(path, filename="b.txt").id
    emu.control.add_fault(method="DELETE", path="/v1/files/*", kind="not_deleted", count=None)
    with pytest.raises(NotDeletedError) as caught:
        client.files_delete(file_id)
    assert caught.value.retryable
    assert file_id in {f.id for f in client.files_list()}


def test_the_content_endpoint_is_asked_for_text(raw_server, make_client):
    def handler(request, conn):
        send_response(conn, 200, '{"content": "text"}', content_type="text/plain; charset=utf-8")

    server = raw_server(handler)
    assert make_client(server.base_url).files_content("file-1") == '{"content": "text"}'
    accept = server.requests[-1].headers["accept"]
    assert accept.startswith("text/plain") and "application/json" not in accept


def test_estimates_for_thinking_models_use_a_listed_sibling(client):
    assert estimate_model_for("kimi-k2-thinking") == "kimi-k2-0905-preview"
    assert estimate_model_for("kimi-k2.5") == "kimi-k2.5"
    assert client.estimate_token_count(model="kimi-k2-thinking-turbo", messages=MESSAGES) > 0
    with pytest.raises(InvalidRequestError):  # the caller falls back to its own estimate
        client.estimate_token_count(model="kimi-unlisted-preview", messages=MESSAGES)


def test_usage_arrives_in_a_stream_only_when_asked_for(client):
    plain = list(client.chat_completion_stream(model="moonshot-v1-8k", messages=MESSAGES))
    assert all(chunk.usage is None for chunk in plain)
    asked = list(
        client.chat_completion_stream(
            model="moonshot-v1-8k", messages=MESSAGES, stream_options={"include_usage": True}
        )
    )
    assert asked[-1].raw["choices"] == [] and asked[-1].usage["completion_tokens"] > 0
