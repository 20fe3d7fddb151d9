"""An incremental parser for server-sent events (the WHATWG `text/event-stream` format).

Bytes are fed as they come off the socket, in whatever pieces the network delivers; each
event is handed back the moment its terminating blank line has arrived. Nothing waits for a
buffer to fill, which is what keeps the first token of an answer fast.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A line ends with CRLF, LF or a lone CR.
_LINE_END = re.compile(rb"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class SSEEvent:
    """One dispatched event: its `data:` lines joined with newlines."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEParser:
    """Turn a byte stream into `SSEEvent`s, one `feed()` at a time.

    Comments (lines starting with `:`, which servers send as keep-alives) are skipped.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._started = False
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Add bytes from the network; return the events they completed."""
        self._buffer += chunk
        if not self._started:
            # A BOM may only open the stream; wait until we can tell.
            if len(self._buffer) < len(_BOM) and _BOM.startswith(self._buffer):
                return []
            self._started = True
            if self._buffer.startswith(_BOM):
                self._buffer = self._buffer[len(_BOM) :]
        return self._consume_lines(final=False)

    def close(self) -> list[SSEEvent]:
        """Signal end of stream; return what the remaining bytes complete.

        Unlike the WHATWG algorithm, which drops an event whose blank line never came,
        this dispatches it: a server that closes right after `data: [DONE]` is common,
        and a truncated JSON payload still fails loudly when the caller decodes it.
        """
        self._started = True
        events = self._consume_lines(final=True)
        if self._buffer:
            self._process_line(self._buffer, events)
            self._buffer = b""
        if self._data:
            events.append(self._dispatch())
        return events

    def _consume_lines(self, *, final: bool) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        buffer = self._buffer
        start = 0
        for match in _LINE_END.finditer(buffer):
            # A CR at the very end may be the first half of a CRLF split across chunks.
            if match.group() == b"\r" and match.end() == len(buffer) and not final:
                break
            self._process_line(buffer[start : match.start()], events)
            start = match.end()
        self._buffer = buffer[start:]
        return events

    def _process_line(self, raw_line: bytes, events: list[SSEEvent]) -> None:
        if not raw_line:
            if self._data:
                events.append(self._dispatch())
            else:
                self._event = ""
            return
        line = raw_line.decode("utf-8", errors="replace")
        if line.startswith(":"):
            return
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._last_id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)

    def _dispatch(self) -> SSEEvent:
        event = SSEEvent(
            data="\n".join(self._data),
            event=self._event or "message",
            id=self._last_id,
            retry=self._retry,
        )
        self._data = []
        self._event = ""
        return event
