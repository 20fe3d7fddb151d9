"""Every fault kind, as a client meets it over real HTTP."""

from __future__ import annotations

import time

import pytest
import requests

from docqa.emulator.tokens import text_tokens
from tests.emulator.conftest import sse_events

MESSAGES = [
    {"role": "system", "content": "The ferry leaves at six. The ferry returns at nine. " * 5},
    {"role": "user", "content": "When does the ferry leave?"},
]


def test_error_fault_answers_the_given_status_and_type_count_times(emu, api):
    emu.control.add_fault(
        method="POST",
        path="/v1/files",
        status=429,
        error_type="rate_limit_reached_error",
        count=2,
        retry_after=3,
    )
    for _ in range(2):
        response = api.upload("a.txt", b"hello")
        assert response.status_code == 429
        assert response.json()["error"]["type"] == "rate_limit_reached_error"
        assert response.headers["Retry-After"] == "3"
    assert api.upload("a.txt", b"hello").status_code == 200
    assert len(api.get("/files").json()["data"]) == 1  # the faulted uploads stored nothing


def test_quota_error_fault_without_retry_after(emu, api):
    emu.control.add_fault(
        method="POST",
        path="/v1/chat/completions",
        status=429,
        error_type="exceeded_current_quota_error",
        count=1,
    )
    response = api.chat(messages=MESSAGES)
    assert response.status_code == 429
    assert response.json()["error"]["type"] == "exceeded_current_quota_error"
    assert "Retry-After" not in response.headers
    assert api.chat(messages=MESSAGES).status_code == 200


def test_faults_match_method_and_path_glob_only(emu, api):
    file_id = api.upload_ok("a.txt", b"x")["id"]
    emu.control.add_fault(
        method="DELETE", path="/v1/files/*", status=500, error_type="server_error", count=None
    )
    assert api.get(f"/files/{file_id}").status_code == 200
    assert api.get("/files").status_code == 200
    assert api.delete(f"/files/{file_id}").status_code == 500
    assert api.delete(f"/files/{file_id}").status_code == 500  # count=None: forever
    emu.control.clear_faults()
    assert api.delete(f"/files/{file_id}").status_code == 200


def test_unauthenticated_requests_do_not_use_up_a_fault(emu, api):
    emu.control.add_fault(method="GET", path="/v1/models", status=429, count=1)
    assert requests.get(emu.base_url + "/models", timeout=10).status_code == 401
    assert api.get("/models").status_code == 429


def test_cut_stream_breaks_the_stream_after_n_chunks(emu, api):
    emu.control.add_fault(
        method="POST", path="/v1/chat/completions", kind="cut_stream", after_chunks=3, count=1
    )
    received = []
    with api.post(
        "/chat/completions",
        json={"model": "moonshot-v1-8k", "messages": MESSAGES, "stream": True},
        stream=True,
    ) as response:
        assert response.status_code == 200
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            for line in response.iter_lines(decode_unicode=True):
                if line:
                    received.append(line)
    assert len(received) == 3
    assert all(line.startswith("data: {") for line in received)
    events = api.stream(messages=MESSAGES)  # used up: the next stream is whole
    assert events[-1] == "[DONE]"


def test_delay_fault_holds_matching_requests(emu, api):
    file_id = api.upload_ok("a.txt", b"x")["id"]
    emu.control.add_fault(method="GET", path="/v1/files/*", kind="delay", seconds=0.5, count=1)
    started = time.monotonic()
    assert api.get(f"/files/{file_id}").status_code == 200
    assert time.monotonic() - started >= 0.5
    started = time.monotonic()
    api.get(f"/files/{file_id}")
    assert time.monotonic() - started < 0.4


def test_extract_error_fault_fails_the_next_uploads_extraction(emu, api):
    emu.control.add_fault(
        method="POST", path="/v1/files", kind="extract_error", message="file is encrypted", count=1
    )
    failed = api.wait_done(api.upload_ok("a.txt", b"readable text")["id"])
    assert failed["status"] == "error" and failed["status_details"] == "file is encrypted"
    content = api.get(f"/files/{failed['id']}/content")
    assert content.status_code == 400 and "file is encrypted" in content.json()["error"]["message"]
    assert api.wait_done(api.upload_ok("b.txt", b"readable text")["id"])["status"] == "ok"


def test_reset_fault_drops_the_connection_without_a_response(emu, api):
    emu.control.add_fault(method="POST", path="/v1/chat/completions", kind="reset", count=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        api.chat(messages=MESSAGES)
    assert api.chat(messages=MESSAGES).status_code == 200


def test_probability_fires_on_a_share_of_requests(emu, api):
    emu.control.add_fault(method="GET", path="/v1/models", status=429, probability=0.5)
    statuses = [api.get("/models").status_code for _ in range(200)]
    assert 50 < statuses.count(429) < 150
    assert statuses.count(429) + statuses.count(200) == 200
    emu.control.clear_faults()
    emu.control.add_fault(method="GET", path="/v1/models", status=429, probability=0.0)
    assert all(api.get("/models").status_code == 200 for _ in range(20))


def test_bad_fault_specs_are_refused(emu):
    with pytest.raises(RuntimeError, match="kind"):
        emu.control.add_fault(method="GET", path="/v1/models", kind="explode")


def _stream(api, **body) -> list:
    body.setdefault("model", "moonshot-v1-8k")
    with api.post("/chat/completions", json={**body, "stream": True}, stream=True) as response:
        assert response.status_code == 200  # the error arrives inside a 200 stream
        return sse_events(response)


def _deltas(events: list) -> list[dict]:
    return [
        e["choices"][0]["delta"]
        for e in events
        if isinstance(e, dict)
        and e.get("choices")
        and e["choices"][0]["delta"]
        and "role" not in e["choices"][0]["delta"]
    ]


@pytest.mark.parametrize("error_type", ["content_filter_error", "server_error", "rate_limit_reached_error"])
def test_stream_error_as_the_first_event(emu, api, error_type):
    emu.control.add_fault(
        method="POST",
        path="/v1/chat/completions",
        kind="stream_error",
        error_type=error_type,
        message="the answer was stopped",
    )
    events = _stream(api, messages=MESSAGES)
    assert events == [{"error": {"message": "the answer was stopped", "type": error_type}}]
    assert _stream(api, messages=MESSAGES)[-1] == "[DONE]"  # used up


def test_stream_error_after_n_deltas_ends_the_stream_without_done(emu, api):
    emu.control.add_fault(
        method="POST",
        path="/v1/chat/completions",
        kind="stream_error",
        after_deltas=3,
        error_type="server_error",
        message="upstream overloaded",
    )
    events = _stream(api, messages=MESSAGES, stream_options={"include_usage": True})
    assert len(_deltas(events)) == 3
    assert events[-1] == {"error": {"message": "upstream overloaded", "type": "server_error"}}
    assert "[DONE]" not in events
    assert not any(e.get("choices") == [] for e in events)  # no usage chunk either


def test_finish_length_after_n_deltas(emu, api):
    emu.control.add_fault(
        method="POST", path="/v1/chat/completions", kind="finish", finish_reason="length", after_deltas=2
    )
    events = _stream(api, messages=MESSAGES, stream_options={"include_usage": True})
    assert len(_deltas(events)) == 2
    assert events[-3]["choices"][0]["finish_reason"] == "length"
    # Usage counts what was sent, not the whole answer.
    sent = sum(text_tokens(d.get("content", "")) for d in _deltas(events))
    assert events[-2]["usage"]["completion_tokens"] == sent
    assert events[-1] == "[DONE]"


def test_finish_length_with_a_thinking_model_can_leave_reasoning_only(emu, api):
    emu.control.add_fault(
        method="POST", path="/v1/chat/completions", kind="finish", finish_reason="length", after_deltas=2
    )
    body = api.chat(model="kimi-k2-thinking", messages=MESSAGES).json()
    [choice] = body["choices"]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["content"] == ""
    assert choice["message"]["reasoning_content"].startswith("Offline mode")
    assert body["usage"]["completion_tokens"] > 0


def test_finish_content_filter_plain_and_streamed(emu, api):
    emu.control.add_fault(
        method="POST",
        path="/v1/chat/completions",
        kind="finish",
        finish_reason="content_filter",
        after_deltas=1,
        count=2,
    )
    body = api.chat(messages=MESSAGES).json()
    assert body["choices"][0]["finish_reason"] == "content_filter"
    events = _stream(api, messages=MESSAGES)
    assert len(_deltas(events)) == 1
    assert events[-2]["choices"][0]["finish_reason"] == "content_filter"
    assert api.chat(messages=MESSAGES).json()["choices"][0]["finish_reason"] == "stop"


def test_not_deleted_answers_deleted_false_and_keeps_the_file(emu, api):
    file_id = api.upload_ok("a.txt", b"keep me")["id"]
    emu.control.add_fault(method="DELETE", path="/v1/files/*", kind="not_deleted")
    response = api.delete(f"/files/{file_id}")
    assert response.status_code == 200
    assert response.json() == {"id": file_id, "object": "file", "deleted": False}
    assert api.get(f"/files/{file_id}").status_code == 200
    assert api.delete(f"/files/{file_id}").json()["deleted"] is True


def test_file_status_fault_shows_other_documented_statuses(emu, api):
    emu.control.configure(extract_delay=0.3)
    emu.control.add_fault(
        method="POST", path="/v1/files", kind="file_status", pending_status="parsing", done_status="ready"
    )
    file = api.upload_ok("a.txt", b"ready text")
    assert file["status"] == "parsing"
    still = api.get(f"/files/{file['id']}/content")
    assert still.status_code == 400 and "parsing" in still.json()["error"]["message"]
    deadline = time.monotonic() + 20
    while (status := api.get(f"/files/{file['id']}").json()["status"]) == "parsing":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert status == "ready"
    assert api.get(f"/files/{file['id']}/content").status_code == 200


@pytest.mark.parametrize(
    "spec, words",
    [
        ({"kind": "finish", "finish_reason": "tool_calls"}, "finish_reason"),
        ({"kind": "stream_error", "after_deltas": -1}, "after_deltas"),
        ({"kind": "file_status", "done_status": "done"}, "done_status"),
        ({"kind": "file_status", "pending_status": "ok"}, "pending_status"),
    ],
)
def test_bad_new_fault_specs_are_refused(emu, spec, words):
    with pytest.raises(RuntimeError, match=words):
        emu.control.add_fault(method="POST", path="/v1/chat/completions", **spec)
