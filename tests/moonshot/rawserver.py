"""A tiny HTTP server on a real socket, for what the emulator cannot do on purpose.

Each connection is handed to a test's handler with the parsed request and the socket, so
the test decides byte by byte what goes back: chunk timing, a reset mid-body, an HTML 502.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = field(repr=False)

    def json(self):
        return json.loads(self.body)


Handler = Callable[[Request, socket.socket], None]


class RawServer:
    """Serve `handler` on 127.0.0.1 until `close()`; records every request."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            try:
                request = _read_request(conn)
            except (OSError, ValueError):
                return
            self.requests.append(request)
            try:
                self.handler(request, conn)
            except OSError:
                pass

    def close(self) -> None:
        self._listener.close()


def _read_request(conn: socket.socket) -> Request:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            raise ValueError("connection closed before headers")
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        piece = conn.recv(65536)
        if not piece:
            break
        body += piece
    return Request(method, target, headers, body)


def send_response(
    conn: socket.socket,
    status: int,
    body: bytes | str | dict,
    *,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> None:
    """A whole response with Content-Length."""
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    # This server handles one request per connection and says so, or the client's pool
    # would race the close when it reuses the connection.
    lines = [
        f"HTTP/1.1 {status} X",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)


def start_event_stream(conn: socket.socket, *, chunked: bool = True) -> None:
    """Headers of a `text/event-stream` answer; without chunking the body ends at close."""
    framing = "Transfer-Encoding: chunked\r\n" if chunked else ""
    conn.sendall(
        f"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n{framing}\r\n".encode()
    )


def send_chunk(conn: socket.socket, data: bytes, *, chunked: bool = True) -> None:
    """One piece of the body, flushed to the network now."""
    conn.sendall(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)


def end_chunked(conn: socket.socket) -> None:
    conn.sendall(b"0\r\n\r\n")


def reset(conn: socket.socket) -> None:
    """Close with a TCP RST, as a crashed proxy would."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def chunk_event(content: str = "", *, finish_reason: str | None = None, **extra) -> bytes:
    """One `data:` event carrying a chat.completion.chunk."""
    choice = {"index": 0, "delta": {"content": content}, "finish_reason": finish_reason}
    choice.update(extra)
    payload = {"id": "cmpl-1", "object": "chat.completion.chunk", "model": "m", "choices": [choice]}
    return b"data: " + json.dumps(payload).encode() + b"\n\n"
