"""The transport's retries against the emulator's injected faults; waits are recorded,
not slept. (A stream's retries, which stop at its first event, are in test_streaming.)"""

from __future__ import annotations

import socket
import time

import pytest

from docqa.moonshot import (
    AuthenticationError,
    InvalidRequestError,
    MoonshotClient,
    MoonshotConnectionError,
    MoonshotTimeout,
    NotFoundError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
)

MESSAGES = [{"role": "user", "content": "Tell me a story about a lighthouse."}]


def requests_to(emu, route: str) -> int:
    return emu.control.stats()["requests"].get(route, 0)


@pytest.fixture
def small_file(tmp_path):
    path = tmp_path / "small.txt"
    path.write_text("hello")
    return path


def test_rate_limit_waits_at_least_three_seconds_then_succeeds(client, emu, sleep, small_file):
    emu.control.add_fault("POST", "/v1/files", status=429, error_type="rate_limit_reached_error", count=2)
    created = client.files_create(small_file, filename="small.txt")
    assert created.id
    assert requests_to(emu, "POST /v1/files") == 3
    assert len(sleep.waits) == 2
    assert all(wait >= 3.0 for wait in sleep.waits), sleep.waits
    # The file was reopened for the third attempt and arrived whole.
    assert client.files_retrieve(created.id).bytes == 5


def test_rate_limit_honours_a_longer_retry_after(client, emu, sleep):
    emu.control.add_fault("GET", "/v1/models", status=429, retry_after=7)
    client.models_list()
    assert len(sleep.waits) == 1
    assert sleep.waits[0] >= 7.0


def test_retry_after_beyond_a_minute_is_left_to_the_caller(client, emu, sleep):
    emu.control.add_fault("GET", "/v1/models", status=429, retry_after=600)
    with pytest.raises(RateLimitError) as caught:
        client.models_list()
    assert caught.value.retry_after == 600
    assert sleep.waits == []


def test_rate_limit_exhausted_raises_the_last_error(emu, make_client, sleep):
    client = make_client(emu.base_url, emu.api_key, max_retries=2)
    emu.control.add_fault("GET", "/v1/users/me/balance", status=429, count=None)
    with pytest.raises(RateLimitError) as caught:
        client.balance()
    assert caught.value.status == 429
    assert caught.value.retryable
    assert requests_to(emu, "GET /v1/users/me/balance") == 3
    assert len(sleep.waits) == 2


def test_quota_exceeded_is_never_retried(client, emu, sleep, small_file):
    emu.control.add_fault(
        "POST", "/v1/files", status=429, error_type="exceeded_current_quota_error", count=None
    )
    with pytest.raises(QuotaExceededError) as caught:
        client.files_create(small_file, filename="small.txt")
    assert not caught.value.retryable
    assert requests_to(emu, "POST /v1/files") == 1
    assert sleep.waits == []


@pytest.mark.parametrize(
    ("status", "error_type", "expected"),
    [
        (400, "invalid_request_error", InvalidRequestError),
        (401, "invalid_authentication_error", AuthenticationError),
        (429, "exceeded_current_quota_error", QuotaExceededError),
    ],
)
def test_client_errors_are_never_retried(client, emu, sleep, status, error_type, expected):
    emu.control.add_fault("POST", "/v1/chat/completions", status=status, error_type=error_type, count=None)
    with pytest.raises(expected):
        client.chat_completion(model="moonshot-v1-8k", messages=MESSAGES)
    with pytest.raises(expected):
        next(client.chat_completion_stream(model="moonshot-v1-8k", messages=MESSAGES))
    assert requests_to(emu, "POST /v1/chat/completions") == 2
    assert sleep.waits == []


def test_server_error_is_retried_with_backoff_then_succeeds(client, emu, sleep):
    emu.control.add_fault("GET", "/v1/models", status=500, error_type="server_error", count=3)
    assert client.models_list()
    assert requests_to(emu, "GET /v1/models") == 4
    assert len(sleep.waits) == 3
    # Full jitter: each wait is somewhere in [0, 2^attempt) seconds.
    for attempt, wait in enumerate(sleep.waits):
        assert 0 <= wait <= 2**attempt


def test_server_error_exhausted(emu, make_client, sleep):
    client = make_client(emu.base_url, emu.api_key, max_retries=3)
    emu.control.add_fault("GET", "/v1/files", status=503, error_type="server_error", count=None)
    with pytest.raises(ServerError) as caught:
        client.files_list()
    assert caught.value.status == 503
    assert requests_to(emu, "GET /v1/files") == 4
    assert len(sleep.waits) == 3


def test_backoff_is_capped_at_thirty_seconds(emu, make_client, sleep):
    client = make_client(emu.base_url, emu.api_key, max_retries=9)
    emu.control.add_fault("GET", "/v1/models", status=502, error_type="server_error", count=9)
    client.models_list()
    assert len(sleep.waits) == 9
    assert max(sleep.waits) <= 30.0


def test_read_timeout_is_retried(emu, make_client, sleep):
    client = make_client(emu.base_url, emu.api_key, read_timeout=0.3)
    emu.control.add_fault("GET", "/v1/files/*", kind="delay", seconds=1.0, count=1)
    # The retry reaches the server, which answers the truth: no such file.
    with pytest.raises(NotFoundError):
        client.files_retrieve("cq-missing")
    assert len(sleep.waits) == 1
    assert requests_to(emu, "GET /v1/files/{id}") == 2


def test_read_timeout_exhausted(emu, make_client, sleep):
    client = make_client(emu.base_url, emu.api_key, read_timeout=0.2, max_retries=1)
    emu.control.add_fault("GET", "/v1/models", kind="delay", seconds=0.6, count=None)
    started = time.monotonic()
    with pytest.raises(MoonshotTimeout) as caught:
        client.models_list()
    assert time.monotonic() - started < 2
    assert caught.value.retryable
    assert "0.2 s" in str(caught.value)
    assert len(sleep.waits) == 1


def test_connection_refused(make_client, sleep):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port now.
    client = make_client(f"http://127.0.0.1:{port}/v1", max_retries=2)
    with pytest.raises(MoonshotConnectionError) as caught:
        client.models_list()
    assert "refused" in str(caught.value).lower()
    assert caught.value.retryable
    assert len(sleep.waits) == 2


def test_connection_reset_is_retried(client, emu, sleep):
    emu.control.add_fault("GET", "/v1/models", kind="reset", count=1)
    assert client.models_list()
    assert len(sleep.waits) == 1


def test_upload_is_not_retried_after_a_timeout(emu, make_client, sleep, small_file):
    """The file may have landed: retrying blindly could create a second remote file."""
    client = make_client(emu.base_url, emu.api_key, read_timeout=0.3)
    emu.control.add_fault("POST", "/v1/files", kind="delay", seconds=1.0, count=1)
    with pytest.raises(MoonshotTimeout):
        client.files_create(small_file, filename="small.txt")
    assert requests_to(emu, "POST /v1/files") == 1
    assert sleep.waits == []


def test_upload_is_not_retried_after_a_connection_reset(client, emu, sleep, small_file):
    emu.control.add_fault("POST", "/v1/files", kind="reset", count=1)
    with pytest.raises(MoonshotConnectionError):
        client.files_create(small_file, filename="small.txt")
    assert requests_to(emu, "POST /v1/files") == 1
    assert sleep.waits == []


def test_upload_is_retried_after_a_server_error(client, emu, sleep, small_file):
    emu.control.add_fault("POST", "/v1/files", status=500, error_type="server_error", count=1)
    assert client.files_create(small_file, filename="small.txt").bytes == 5
    assert requests_to(emu, "POST /v1/files") == 2
    assert len(sleep.waits) == 1


def test_the_default_sleep_really_waits(emu):
    """Once, with the real `time.sleep`: the 3 s pause after a 429 is not just recorded."""
    emu.control.add_fault("GET", "/v1/models", status=429, count=1)
    with MoonshotClient(emu.base_url, emu.api_key) as client:
        started = time.monotonic()
        client.models_list()
        assert time.monotonic() - started >= 3.0
