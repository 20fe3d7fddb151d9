"""The one way docqa takes a secret out of text that came from upstream.

Moonshot (or a proxy before it) sometimes echoes the Authorization header it rejected: in an
HTTP error body, a file's `status_details`, an error event inside a stream. Every such text
passes here before it is stored, shown or logged. Pure (no Django): the client uses it
directly, the rest of docqa through `docqa.ops.logs.redact`, which supplies the key.
"""

from __future__ import annotations

import re

REDACTED = "[redacted]"
# Moonshot's keys (and OpenAI-style ones) start with "sk-".
KEY_SHAPED = re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}")


def secrets_redact(text: str, *, api_key: str = "", replacement: str = REDACTED) -> str:
    """`text` without the API key and without anything shaped like one."""
    if api_key and len(api_key) >= 4:
        text = text.replace(api_key, replacement)
    return KEY_SHAPED.sub(replacement, text)
