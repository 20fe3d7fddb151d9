"""The dataclasses built from API JSON, and the package's independence from Django."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import docqa.moonshot
from docqa.moonshot import Balance, ChatChunk, FileObject, ModelInfo

FILE_JSON = {
    "id": "cq123",
    "object": "file",
    "bytes": 761790,
    "created_at": 1700815879,
    "filename": "xlnet.pdf",
    "purpose": "file-extract",
    "status": "ok",
}


@pytest.mark.parametrize("key", ["status_details", "status_detail"])
def test_file_object_reads_both_spellings_of_status_details(key):
    info = FileObject.from_api({**FILE_JSON, "status": "error", key: "password-protected PDF"})
    assert info.status_details == "password-protected PDF"
    assert info.is_failed


def test_file_object_prefers_the_spelling_that_has_text():
    info = FileObject.from_api({**FILE_JSON, "status_details": "", "status_detail": "why"})
    assert info.status_details == "why"


@pytest.mark.parametrize(
    ("status", "ready", "failed", "processing"),
    [
        ("ok", True, False, False),
        ("ready", True, False, False),
        ("processed", True, False, False),
        ("success", True, False, False),
        ("error", False, True, False),
        ("failed", False, True, False),
        ("processing", False, False, True),
        ("uploaded", False, False, True),
        ("", False, False, True),
    ],
)
def test_file_status_properties(status, ready, failed, processing):
    info = FileObject.from_api({**FILE_JSON, "status": status})
    assert (info.is_ready, info.is_failed, info.is_processing) == (ready, failed, processing)


def test_file_object_is_frozen_and_keeps_raw():
    info = FileObject.from_api(FILE_JSON)
    assert info.raw == FILE_JSON
    assert info.status_details == ""
    with pytest.raises(AttributeError):
        info.status = "error"  # type: ignore[misc]


def test_chat_chunk_fields():
    chunk = ChatChunk.from_api(
        {
            "id": "c1",
            "model": "kimi-k2-thinking",
            "choices": [
                {"index": 0, "delta": {"reasoning_content": "hm", "content": None}, "finish_reason": None}
            ],
        }
    )
    assert (chunk.content, chunk.reasoning_content, chunk.finish_reason, chunk.usage) == (
        "",
        "hm",
        None,
        None,
    )
    assert (chunk.id, chunk.model) == ("c1", "kimi-k2-thinking")


def test_model_info_without_optional_fields():
    info = ModelInfo.from_api({"id": "moonshot-v1-auto", "object": "model"})
    assert (info.context_length, info.supports_reasoning, info.supports_image_in) == (None, False, False)


def test_balance_floats():
    balance = Balance.from_api({"available_balance": 1, "voucher_balance": "2.5", "cash_balance": -1.5})
    assert (balance.available_balance, balance.voucher_balance, balance.cash_balance) == (1.0, 2.5, -1.5)


def test_public_api_names():
    assert set(docqa.moonshot.__all__) == {
        "ContentFilterError",
        "EngineOverloadedError",
        "NotDeletedError",
        "MoonshotClient",
        "FileObject",
        "ChatChunk",
        "ModelInfo",
        "Balance",
        "MoonshotError",
        "AuthenticationError",
        "PermissionDeniedError",
        "InvalidRequestError",
        "ContextLengthError",
        "NotFoundError",
        "RateLimitError",
        "QuotaExceededError",
        "ServerError",
        "MoonshotTimeout",
        "MoonshotConnectionError",
        "StreamInterrupted",
        "RedisLimiter",
    }


def test_package_imports_no_django():
    """Loaded on its own (the parent `docqa` package sets up Celery and Django), the client
    package must pull in no Django module."""
    package_dir = Path(docqa.moonshot.__file__).parent
    for source in package_dir.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n == "django" or n.startswith("django.") for n in names), source
    script = (
        "import sys, types\n"
        f"stub = types.ModuleType('docqa'); stub.__path__ = [{str(package_dir.parent)!r}]\n"
        "sys.modules['docqa'] = stub\n"
        "import docqa.moonshot\n"
        "loaded = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
