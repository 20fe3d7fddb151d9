"""The API key never shows: not in errors, not in reprs, not in log lines."""

from __future__ import annotations

import json
import logging
import pickle

import pytest

from docqa.moonshot import AuthenticationError, MoonshotError, StreamInterrupted
from tests.moonshot.conftest import API_KEY
from tests.moonshot.rawserver import chunk_event, end_chunked, send_chunk, send_response, start_event_stream

MESSAGES = [{"role": "user", "content": "hi"}]


def test_client_repr_hides_the_key(make_client):
    client = make_client("http://127.0.0.1:1/v1")
    assert API_KEY not in repr(client)
    assert API_KEY not in str(client)
    assert "***" in repr(client)


def test_key_only_travels_in_the_authorization_header(raw_server, make_client):
    server = raw_server(lambda request, conn: send_response(conn, 200, {"data": []}))
    make_client(server.base_url).models_list()
    request = server.requests[0]
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert API_KEY not in request.path
    assert API_KEY.encode() not in request.body


def test_key_echoed_by_a_server_is_redacted_from_errors(raw_server, make_client):
    def handler(request, conn):
        send_response(
            conn,
            401,
            {
                "error": {
                    "message": f"Incorrect API key provided: {API_KEY}",
                    "type": "invalid_authentication_error",
                }
            },
        )

    client = make_client(raw_server(handler).base_url)
    with pytest.raises(AuthenticationError) as caught:
        client.models_list()
    for text in (
        str(caught.value),
        repr(caught.value),
        caught.value.message,
        str(pickle.dumps(caught.value)),
    ):
        assert API_KEY not in text
    assert "Incorrect API key provided: ***" in str(caught.value)


def test_no_key_in_any_log_line_or_error_across_failures(emu, make_client, caplog, tmp_path):
    """Drive every failure path with DEBUG logging on (urllib3's included) and look for it."""
    caplog.set_level(logging.DEBUG)
    client = make_client(emu.base_url, emu.api_key, read_timeout=0.3, max_retries=1)
    errors: list[MoonshotError] = []

    def attempt(call):
        try:
            result = call()
            if hasattr(result, "__iter__") and not isinstance(result, (list, dict, str)):
                list(result)
        except MoonshotError as error:
            errors.append(error)

    path = tmp_path / "a.txt"
    path.write_text("text")
    emu.control.add_fault("GET", "/v1/models", status=500, error_type="server_error", count=None)
    emu.control.add_fault("GET", "/v1/files", kind="delay", seconds=1.0, count=None)
    emu.control.add_fault("POST", "/v1/files", status=429, count=1)
    emu.control.add_fault("POST", "/v1/chat/completions", kind="cut_stream", after_chunks=2, count=1)
    attempt(client.models_list)
    attempt(client.files_list)
    attempt(lambda: client.files_create(path, filename="a.txt"))
    attempt(lambda: client.chat_completion_stream(model="moonshot-v1-8k", messages=MESSAGES))
    attempt(lambda: client.files_retrieve("cq-unknown"))
    wrong = make_client(emu.base_url, "sk-another-secret-key-99")
    attempt(wrong.balance)

    assert {type(e).__name__ for e in errors} >= {
        "ServerError",
        "MoonshotTimeout",
        "StreamInterrupted",
        "NotFoundError",
        "AuthenticationError",
    }
    assert caplog.records, "expected retry warnings to be logged"
    assert any(r.name == "docqa.moonshot.client" for r in caplog.records)
    for secret in (API_KEY, "sk-another-secret-key-99"):
        assert secret not in caplog.text
        for error in errors:
            assert secret not in str(error) and secret not in repr(error)
            assert secret not in repr(vars(error))


def test_stream_interrupted_str_is_short():
    error = StreamInterrupted("Stream broke", partial_content="x" * 10_000)
    assert str(error) == "Stream broke"


@pytest.mark.parametrize("first", [True, False], ids=["first-event", "mid-stream"])
def test_key_echoed_in_a_stream_error_event_is_redacted(raw_server, make_client, first):
    error = json.dumps(
        {"error": {"message": f"bad key {API_KEY} and sk-abcdefghijklmnop", "type": "server_error"}}
    )

    def handler(request, conn):
        start_event_stream(conn)
        if not first:
            send_chunk(conn, chunk_event("Hel"))
        send_chunk(conn, f"data: {error}\n\n".encode())
        end_chunked(conn)

    client = make_client(raw_server(handler).base_url, max_retries=0)
    with pytest.raises(MoonshotError) as caught:
        list(client.chat_completion_stream(model="m", messages=[{"role": "user", "content": "hi"}]))
    text = str(caught.value) + repr(caught.value) + str(getattr(caught.value, "message", ""))
    assert API_KEY not in text and "sk-abcdefghijklmnop" not in text
