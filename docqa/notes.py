"""Messages stored now and shown later, in the reader's language.

A worker records why a document failed long before (and in another process than) the page
that shows it, so it stores the untranslated message and its parameters; the page
translates them for whoever is reading.
"""

from __future__ import annotations

import json
from typing import Any

from django.utils.translation import gettext

from docqa.ops.logs import redact


def note(message: str, **params: Any) -> str:
    """Serialise a message id (marked with gettext_noop) and its parameters for storage."""
    return json.dumps({"m": message, "p": params}, ensure_ascii=False)


def note_display(stored: str) -> str:
    """The stored note translated into the active language; plain text passes through.

    Redacted on the way out too, so a note stored before redaction covered it (or by a path
    that missed it) shows no key on a page or in the admin.
    """
    return redact(_translated(stored))


def _translated(stored: str) -> str:
    if not stored:
        return ""
    try:
        data = json.loads(stored)
    except ValueError:
        return stored
    if not isinstance(data, dict) or "m" not in data:
        return stored
    params = {
        key: _translated(value) if isinstance(value, str) and value.startswith('{"m"') else value
        for key, value in (data.get("p") or {}).items()
    }
    text = gettext(data["m"])
    return text % params if params else text
