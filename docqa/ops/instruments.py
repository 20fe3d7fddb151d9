"""The metrics docqa's code observes as it runs (prometheus_client counters and histograms).

This module imports nothing from Django or from docqa, so the Moonshot client can observe its
calls here without depending on the apps. What is counted from the database at scrape time
lives in docqa.ops.metrics.

Labels have a few values each (methods, status classes, endpoint templates, error class
names), never ids or user input, so the series stay few.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter(
    "docqa_http_requests",
    "HTTP requests answered by the web process, by method and status class.",
    ["method", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "docqa_http_request_duration_seconds",
    "Time from a request's arrival to the start of its response (an event stream counts "
    "until its headers are sent, not while it streams).",
    ["method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
MOONSHOT_CALLS = Counter(
    "docqa_moonshot_calls",
    "HTTP attempts to the Moonshot API (each retry counts), by endpoint and outcome "
    "(ok, or the error's class name).",
    ["endpoint", "outcome"],
)
MOONSHOT_CALL_SECONDS = Histogram(
    "docqa_moonshot_call_duration_seconds",
    "Time one HTTP attempt to the Moonshot API took to answer (until its headers; a streamed "
    "completion's body is not included).",
    ["endpoint"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_FILE_ID = re.compile(r"^/files/[^/]+")


def http_request_observe(*, method: str, status: int, seconds: float) -> None:
    method = method if method in _METHODS else "other"
    HTTP_REQUESTS.labels(method=method, status=f"{status // 100}xx").inc()
    HTTP_REQUEST_SECONDS.labels(method=method).observe(seconds)


def moonshot_endpoint(method: str, path: str, *, stream: bool = False) -> str:
    """`GET /files/{id}/content` for `GET /files/cn1abc/content`: one series per endpoint."""
    template = path.split("?", 1)[0]
    if template.startswith("/files/"):
        template = _FILE_ID.sub("/files/{id}", template)
    return f"{method} {template}" + (" stream" if stream else "")


@contextmanager
def moonshot_call_observed(method: str, path: str, *, stream: bool = False) -> Iterator[None]:
    """Count one Moonshot HTTP attempt and time it, whether it succeeds or raises."""
    endpoint = moonshot_endpoint(method, path, stream=stream)
    started = time.perf_counter()
    outcome = "ok"
    try:
        yield
    except BaseException as exc:
        outcome = type(exc).__name__
        raise
    finally:
        MOONSHOT_CALLS.labels(endpoint=endpoint, outcome=outcome).inc()
        MOONSHOT_CALL_SECONDS.labels(endpoint=endpoint).observe(time.perf_counter() - started)
