"""How error responses map to typed errors, without a server."""

from __future__ import annotations

import json
import pickle

import pytest

from docqa.moonshot import (
    AuthenticationError,
    ContentFilterError,
    ContextLengthError,
    EngineOverloadedError,
    InvalidRequestError,
    MoonshotConnectionError,
    MoonshotError,
    MoonshotTimeout,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
    StreamInterrupted,
)
from docqa.moonshot.errors import error_for_event, error_for_response


def body(error_type: str, message: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": error_type}}).encode()


@pytest.mark.parametrize(
    ("status", "error_type", "message", "expected"),
    [
        (401, "invalid_authentication_error", "Invalid Authentication", AuthenticationError),
        (403, "permission_denied_error", "not allowed", PermissionDeniedError),
        (400, "invalid_request_error", "temperature must be <= 1", InvalidRequestError),
        (
            400,
            "invalid_request_error",
            "Invalid request: Your request exceeded model token limit: 8192",
            ContextLengthError,
        ),
        (400, "invalid_request_error", "Input is TOO LONG for this model", ContextLengthError),
        (400, "invalid_request_error", "maximum context length is 8192", ContextLengthError),
        (404, "resource_not_found_error", "file not found", NotFoundError),
        (429, "rate_limit_reached_error", "slow down", RateLimitError),
        (429, "exceeded_current_quota_error", "no money", QuotaExceededError),
        (500, "server_error", "boom", ServerError),
        (503, "server_error", "overloaded", ServerError),
    ],
)
def test_status_and_type_choose_the_class(status, error_type, message, expected):
    error = error_for_response(status, body(error_type, message))
    assert type(error) is expected
    assert error.status == status
    assert error.type == error_type
    assert error.message == message


def test_context_length_error_is_an_invalid_request_error():
    error = error_for_response(400, body("invalid_request_error", "exceeded model token limit"))
    assert isinstance(error, InvalidRequestError)
    assert not error.retryable


@pytest.mark.parametrize(
    ("cls", "retryable"),
    [
        (MoonshotError, False),
        (AuthenticationError, False),
        (PermissionDeniedError, False),
        (InvalidRequestError, False),
        (ContextLengthError, False),
        (NotFoundError, False),
        (QuotaExceededError, False),
        (RateLimitError, True),
        (ServerError, True),
        (MoonshotTimeout, True),
        (MoonshotConnectionError, True),
        (StreamInterrupted, True),
    ],
)
def test_retryable_flags(cls, retryable):
    assert cls("x").retryable is retryable


def test_html_error_page_gives_server_error_with_readable_message():
    page = (
        b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>"
        + (b"<p>nginx</p>" * 100)
        + b"</body></html>"
    )
    error = error_for_response(502, page, reason="Bad Gateway")
    assert isinstance(error, ServerError)
    assert error.message.startswith("502 Bad Gateway 502 Bad Gateway nginx")
    assert "<" not in error.message
    assert len(error.message) <= 200
    assert str(error).endswith("(HTTP 502)")


def test_empty_body_falls_back_to_status_line():
    error = error_for_response(429, b"", reason="Too Many Requests")
    assert isinstance(error, RateLimitError)
    assert str(error) == "Too Many Requests (HTTP 429)"


def test_error_as_plain_string_and_other_json_shapes():
    assert error_for_response(400, b'{"error": "bad thing"}').message == "bad thing"
    assert error_for_response(404, b'{"detail": "Not Found"}').message == "Not Found"
    assert error_for_response(500, b"[1, 2]").message == "[1, 2]"


def test_retry_after_is_kept():
    error = error_for_response(429, body("rate_limit_reached_error", "x"), retry_after=7.0)
    assert error.retry_after == 7.0


def test_error_event_inside_a_stream_maps_by_type():
    error = error_for_event({"message": "slow", "type": "rate_limit_reached_error"})
    assert isinstance(error, RateLimitError)
    assert error.status is None


def test_errors_survive_pickling_for_task_queues():
    error = StreamInterrupted("cut", partial_content="Hel", partial_reasoning="hm", status=None)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.message, copy.partial_content, copy.partial_reasoning) == ("cut", "Hel", "hm")
    quota = pickle.loads(pickle.dumps(error_for_response(429, body("exceeded_current_quota_error", "q"))))
    assert isinstance(quota, QuotaExceededError) and quota.status == 429


# Every error type of the table (seed 002's four, plus the rest of Moonshot's docs), as an
# HTTP answer and as an event inside a 200 stream: its class, and whether it is retried.
ERROR_TABLE = [
    ("invalid_authentication_error", 401, AuthenticationError, False),
    ("invalid_request_error", 400, InvalidRequestError, False),
    ("rate_limit_reached_error", 429, RateLimitError, True),
    ("exceeded_current_quota_error", 429, QuotaExceededError, False),
    ("permission_denied_error", 403, PermissionDeniedError, False),
    ("resource_not_found_error", 404, NotFoundError, False),
    ("engine_overloaded_error", 429, EngineOverloadedError, True),
    ("server_error", 500, ServerError, True),
    ("content_filter", 400, ContentFilterError, False),
    ("content_filter_error", 400, ContentFilterError, False),
]


@pytest.mark.parametrize(("error_type", "status", "expected", "retryable"), ERROR_TABLE)
def test_every_error_type_maps_to_its_class_and_retry_decision(error_type, status, expected, retryable):
    for error in (
        error_for_response(status, body(error_type, "m")),
        error_for_event({"message": "m", "type": error_type}),
    ):
        assert type(error) is expected
        assert error.retryable is retryable
        assert error.type == error_type


def test_an_unknown_error_type_is_not_retried_in_or_out_of_a_stream():
    event = error_for_event({"message": "something new", "type": "brand_new_error"})
    assert type(event) is MoonshotError and not event.retryable
    assert event.type == "brand_new_error"
    # Over HTTP the status still decides for an unknown type (a 5xx is worth another try).
    assert type(error_for_response(400, body("brand_new_error", "x"))) is InvalidRequestError
