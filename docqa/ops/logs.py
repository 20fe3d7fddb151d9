"""Log lines that say which request, task or answer they are about, and never show the API key.

Settings' LOGGING puts both filters here on every handler: `LogContextFilter` copies the
request id (set by docqa.ops.asgi), the Celery task id (set by the task_prerun signal) and the
answer id (set with `log_context(answer_id=...)`) onto each record; `SecretRedactingFilter`
takes the configured Moonshot key, and anything shaped like one, out of the message, its
arguments and any traceback. `DOCQA_LOG_FORMAT` picks `TextFormatter` or `JsonFormatter`
(python-json-logger: one JSON object per line, context fields as keys).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from docqa.moonshot.redaction import secrets_redact

# Contextvars follow a request from the event loop into the handler's thread (asgiref copies
# the context), and stay in the thread that runs a Celery task.
_request_id: ContextVar[str | None] = ContextVar("docqa_request_id", default=None)
_task_id: ContextVar[str | None] = ContextVar("docqa_task_id", default=None)
_answer_id: ContextVar[int | str | None] = ContextVar("docqa_answer_id", default=None)
_FIELDS = (("request_id", _request_id), ("task_id", _task_id), ("answer_id", _answer_id))


@contextmanager
def log_context(*, answer_id: int | str | None = None) -> Iterator[None]:
    """Log lines written inside the block carry `answer_id`."""
    token = _answer_id.set(answer_id)
    try:
        yield
    finally:
        _answer_id.reset(token)


def request_id_set(value: str | None):
    """Mark this context's log lines with a request id; returns the token to reset with."""
    return _request_id.set(value)


def request_id_reset(token) -> None:
    _request_id.reset(token)


def request_id_current() -> str | None:
    return _request_id.get()


# --- Celery signals (connected by docqa.ops.apps) -------------------------------------------


def task_started(task_id: str | None = None, **_kwargs) -> None:
    # Celery runs a task's prerun signal, the task and its postrun signal in one thread.
    _task_id.set(task_id)


def task_finished(**_kwargs) -> None:
    _task_id.set(None)


# --- filters and formatters -------------------------------------------------------------------


class LogContextFilter(logging.Filter):
    """Adds request_id / task_id / answer_id to a record when they are known."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _FIELDS:
            value = var.get()
            if value is not None and not hasattr(record, name):
                setattr(record, name, value)
        return True


def redact(text: str) -> str:
    """`text` without the configured Moonshot key (or anything shaped like a key)."""
    key = getattr(settings, "MOONSHOT_API_KEY", "") if settings.configured else ""
    return secrets_redact(text, api_key=key)


class SecretRedactingFilter(logging.Filter):
    """Takes the Moonshot key out of the message, its arguments, tracebacks and stack info.

    The message is rendered here (args merged in) so a key passed as an argument, or inside
    an object's repr, is caught too; the record then carries the redacted text and no args.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let logging report it as usual
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            # Formatters render exc_info again when it is set; the redacted text stands in.
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class TextFormatter(logging.Formatter):
    """The plain format, with the context fields appended in brackets when present."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = " ".join(f"{name}={getattr(record, name)}" for name, _ in _FIELDS if hasattr(record, name))
        if not context:
            return text
        first, sep, rest = text.partition("\n")  # before a traceback, not after it
        return f"{first} [{context}]{sep}{rest}"


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: timestamp, level, logger, message, context fields, traceback."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger", "asctime": "time"})
        # uvicorn adds its message again with terminal colours; the plain one is enough.
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, "color_message"])
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s", **kwargs)


def uvicorn_loggers_adopt() -> None:
    """Send uvicorn's own lines (started before Django's logging) through docqa's handlers."""
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
