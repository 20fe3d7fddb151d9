"""A small asyncio HTTP/1.1 client for the bench: plain requests, streamed uploads and SSE.

Written on bare asyncio streams so that a thousand streaming clients cost the 2-core machine
as little as possible, and so that the direct-to-emulator baseline and the through-docqa
stream are read by exactly the same code. One connection per request (`Connection: close`).
Every timestamp is `time.perf_counter()` taken when the bytes were parsed.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

now = time.perf_counter


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes = b""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.body)


@dataclass
class SSEEvent:
    event: str
    data: str
    id: str | None
    at: float


@dataclass
class Upload:
    """A multipart body streamed from a file on disk (never read whole into memory)."""

    field: str
    path: Path
    filename: str
    fields: dict[str, str] = field(default_factory=dict)
    boundary: str = field(default_factory=lambda: "bench" + secrets.token_hex(12))

    def parts(self) -> tuple[bytes, bytes]:
        head = b""
        for name, value in self.fields.items():
            head += (
                f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            ).encode()
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{self.field}"; '
            f'filename="{self.filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        tail = f"\r\n--{self.boundary}--\r\n".encode()
        return head, tail

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def length(self) -> int:
        head, tail = self.parts()
        return len(head) + os.path.getsize(self.path) + len(tail)


class HTTPError(Exception):
    pass


async def _open(url: str, method: str, headers: dict[str, str], body_length: int | None):
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if host not in ("127.0.0.1", "localhost"):
        raise HTTPError(f"the bench only talks to loopback, not {host}")
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    if body_length is not None:
        lines.append(f"Content-Length: {body_length}")
    lines += [f"{k}: {v}" for k, v in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    return reader, writer


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers and name == "set-cookie" else value
    return status, headers


async def _body_chunks(reader: asyncio.StreamReader, headers: dict[str, str]) -> AsyncIterator[bytes]:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                with _suppress():
                    await reader.readuntil(b"\r\n")
                return
            data = await reader.readexactly(size + 2)
            yield data[:-2]
    elif "content-length" in headers:
        remaining = int(headers["content-length"])
        while remaining:
            data = await reader.read(min(remaining, 1 << 16))
            if not data:
                raise HTTPError("connection closed before the body ended")
            remaining -= len(data)
            yield data
    else:
        while data := await reader.read(1 << 16):
            yield data


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        return exc_type is not None and issubclass(exc_type, (asyncio.IncompleteReadError, ConnectionError))


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with _suppress():
        await writer.wait_closed()


async def request(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    upload: Upload | None = None,
    write_delay: float = 0.0,
    chunk_size: int = 256 * 1024,
    timeout: float = 300.0,
) -> Response:
    """One request; `upload` streams a file in `chunk_size` blocks, pausing `write_delay` between them."""
    headers = dict(headers or {})
    if upload is not None:
        headers["Content-Type"] = upload.content_type
        length = upload.length()
    else:
        length = len(body) if body is not None else (0 if method in ("POST", "PUT") else None)

    async def run() -> Response:
        reader, writer = await _open(url, method, headers, length)
        try:
            if upload is not None:
                head, tail = upload.parts()
                writer.write(head)
                with open(upload.path, "rb") as source:
                    while block := source.read(chunk_size):
                        writer.write(block)
                        await writer.drain()
                        if write_delay:
                            await asyncio.sleep(write_delay)
                writer.write(tail)
            elif body:
                writer.write(body)
            await writer.drain()
            status, response_headers = await _read_head(reader)
            chunks = [chunk async for chunk in _body_chunks(reader, response_headers)]
            return Response(status, response_headers, b"".join(chunks))
        finally:
            await _close(writer)

    return await asyncio.wait_for(run(), timeout)


async def sse(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    on_open=None,
) -> AsyncIterator[SSEEvent]:
    """The events of one Server-Sent Events response, each stamped when it was parsed.

    Raises HTTPError for a non-200 answer; ends when the server closes the stream.
    """
    headers = {"Accept": "text/event-stream", **(headers or {})}
    reader, writer = await _open(url, method, headers, len(body) if body is not None else None)
    try:
        if body:
            writer.write(body)
        await writer.drain()
        status, response_headers = await _read_head(reader)
        if status != 200:
            chunks = [chunk async for chunk in _body_chunks(reader, response_headers)]
            raise HTTPError(f"{method} {url}: {status} {b''.join(chunks)[:300]!r}")
        if on_open is not None:
            on_open(response_headers)
        buffer = b""
        async for chunk in _body_chunks(reader, response_headers):
            buffer += chunk
            while True:
                cut = buffer.find(b"\n\n")
                if cut < 0:
                    break
                block, buffer = buffer[:cut], buffer[cut + 2 :]
                event = _parse_block(block.decode("utf-8"))
                if event is not None:
                    yield event
    finally:
        await _close(writer)


def _parse_block(block: str) -> SSEEvent | None:
    event, event_id, data = "message", None, []
    for line in block.split("\n"):
        if not line or line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event_id = value
    if not data and event == "message":
        return None
    return SSEEvent(event, "\n".join(data), event_id, now())
