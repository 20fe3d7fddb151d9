"""Log lines: text or one JSON object per line, with request / task / answer ids, never the key."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys

import pytest

from docqa import env
from docqa.celery import app as celery_app
from docqa.ops.logs import JsonFormatter, LogContextFilter, SecretRedactingFilter, TextFormatter, log_context
from tests.conftest import wait_for
from tests.ops.conftest import asgi_request

KEY = "moonshot-test-key-0123456789abcdef"
KEY_SHAPED = "sk-" + "AbCdEf0123456789GhIjKl"  # made up; split so no scanner takes it for a real key

SCRIPT = f"""
import logging, django
django.setup()
log = logging.getLogger("docqa.tests")

class Account:
    def __repr__(self):
        return "Account(key={KEY!r})"

log.warning("calling Moonshot with %s", "{KEY}")
log.warning("an account %r", Account())
log.warning("a key-shaped string {KEY_SHAPED} in the message")
try:
    raise RuntimeError("refused: Authorization: Bearer {KEY}")
except RuntimeError:
    log.exception("the call failed")
"""


def _run(log_format: str) -> str:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(env.PREFIXES) or k == "DOCQA_VAR_DIR"}
    environ.update(
        DJANGO_SETTINGS_MODULE="docqa.settings",
        MOONSHOT_API_KEY=KEY,
        DOCQA_LOG_FORMAT=log_format,
        DJANGO_SECRET_KEY="tests-only-secret-key-not-used-anywhere-else-0123456789",
    )
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=environ, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_the_key_is_redacted_in_text_lines():
    output = _run("text")
    assert "calling Moonshot with [redacted]" in output
    assert "Account(key='[redacted]')" in output
    assert "a key-shaped string [redacted] in the message" in output
    assert "RuntimeError: refused: Authorization: Bearer [redacted]" in output
    assert KEY not in output and KEY_SHAPED not in output


def test_the_key_is_redacted_in_json_lines():
    output = _run("json")
    lines = [json.loads(line) for line in output.splitlines()]  # every line one JSON object
    assert [line["message"] for line in lines] == [
        "calling Moonshot with [redacted]",
        "an account Account(key='[redacted]')",
        "a key-shaped string [redacted] in the message",
        "the call failed",
    ]
    assert lines[0]["level"] == "WARNING" and lines[0]["logger"] == "docqa.tests" and lines[0]["time"]
    assert "Bearer [redacted]" in lines[3]["exc_info"]
    assert KEY not in output and KEY_SHAPED not in output


def test_a_bad_log_format_is_refused_at_start_up():
    environ = {k: v for k, v in os.environ.items() if not k.startswith(env.PREFIXES) or k == "DOCQA_VAR_DIR"}
    environ.update(DJANGO_SETTINGS_MODULE="docqa.settings", DOCQA_LOG_FORMAT="xml")
    code = "import django; django.setup()"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=60
    )
    assert result.returncode != 0
    assert "DOCQA_LOG_FORMAT must be one of text, json (got 'xml')" in result.stderr


@pytest.fixture
def captured():
    """Lines of the named loggers, through docqa's filters, in JSON."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(LogContextFilter())
    handler.addFilter(SecretRedactingFilter())
    handler.setFormatter(JsonFormatter())
    names = ("django.request", "docqa.tests")
    for name in names:
        logging.getLogger(name).addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    for name in names:
        logging.getLogger(name).removeHandler(handler)


def test_web_lines_carry_the_request_id(app, captured):
    reply = asgi_request(app, "/no-such-page/", headers=[(b"x-request-id", b"probe-1")])
    assert reply.status == 404
    (line,) = [line for line in captured() if line["logger"] == "django.request"]
    assert line["message"] == "Not Found: /no-such-page/"
    assert line["request_id"] == "probe-1"


def test_answer_lines_carry_the_answer_id(captured):
    log = logging.getLogger("docqa.tests")
    with log_context(answer_id=42):
        log.warning("streaming")
    log.warning("after")
    streaming, after = captured()
    assert streaming["answer_id"] == 42
    assert "answer_id" not in after and "request_id" not in after


def test_text_lines_show_the_context_in_brackets():
    formatter = TextFormatter("%(levelname)s %(name)s: %(message)s")
    record = logging.LogRecord("docqa.tests", logging.WARNING, __file__, 1, "streaming", None, None)
    with log_context(answer_id=7):
        LogContextFilter().filter(record)
    assert formatter.format(record) == "WARNING docqa.tests: streaming [answer_id=7]"


@celery_app.task(name="tests.ops.log_a_line")
def log_a_line() -> None:
    logging.getLogger("docqa.tests").warning("inside the task")


def test_task_lines_carry_the_task_id(celery_worker, captured):
    result = log_a_line.delay()
    lines = wait_for(lambda: [line for line in captured() if line["message"] == "inside the task"])
    assert lines[0]["task_id"] == result.id
