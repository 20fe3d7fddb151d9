"""docqa.bodylimit against the live ASGI server: raw sockets, declared and chunked bodies."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest

CHUNK = 64 * 1024


def _request(base: str, path: str, *, headers: dict[str, str], chunks=(), declared: int | None = None):
    """Send a POST by hand; returns (status, body). Stops sending once the server has answered."""
    url = urlsplit(base)
    lines = [f"POST {path} HTTP/1.1", f"Host: {url.hostname}"]
    if declared is None:
        lines.append("Transfer-Encoding: chunked")
    else:
        lines.append(f"Content-Length: {declared}")
    lines += [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection((url.hostname, url.port), timeout=20) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        sent = 0
        try:
            for chunk in chunks:
                frame = chunk if declared is not None else f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
                sock.sendall(frame)
                sent += len(chunk)
            if declared is None:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: what a guard should do
        data = b""
        try:
            while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
                more = sock.recv(65536)
                if not more:
                    break
                data += more
        except ConnectionResetError:
            pass
    head, _sep, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else None
    return status, body.decode("utf-8", errors="replace"), sent


def _length(data: bytes) -> int:
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    for line in head.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


def _body(megabytes: float):
    total = int(megabytes * 1024 * 1024)
    for start in range(0, total, CHUNK):
        yield b"x" * min(CHUNK, total - start)


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_a_huge_declared_login_post_is_refused_before_it_is_read(asgi_server):
    status, body, sent = _request(asgi_server, "/accounts/login/", headers=FORM, declared=400 * 1024**2)
    assert status == 413 and "2 MB limit" in body and sent == 0


def test_a_chunked_login_post_is_cut_off_at_the_limit(asgi_server):
    status, body, sent = _request(asgi_server, "/accounts/login/", headers=FORM, chunks=_body(50))
    assert status == 413 and "larger than the 2 MB limit" in body
    assert sent < 20 * 1024**2, "the server kept reading far past the limit"


def test_a_chunked_upload_over_the_limit_gets_413_not_500(asgi_server, settings):
    settings.DOCQA_MAX_UPLOAD_BYTES = 1024 * 1024
    headers = {"Content-Type": "multipart/form-data; boundary=x"}
    status, body, _sent = _request(asgi_server, "/documents/upload/", headers=headers, chunks=_body(4))
    assert status == 413 and "larger than the 1 MB limit per file" in body


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Accept-Language": "zh-CN,zh;q=0.9"}, "2 MB"),
        ({"Accept-Language": "en", "Cookie": "django_language=zh-hans"}, "2 MB"),
    ],
)
def test_the_refusal_is_in_the_readers_language(asgi_server, headers, expected):
    status, body, _sent = _request(asgi_server, "/chat/new/", headers={**FORM, **headers}, chunks=_body(3))
    assert status == 413 and expected in body and "larger" not in body


def test_a_small_chunked_body_still_reaches_django(asgi_server):
    status, body, _sent = _request(asgi_server, "/accounts/login/", headers=FORM, chunks=[b"username=a"])
    assert status == 403  # Django read it: no CSRF token
