"""The documents' live events stream under uvicorn: a bad Last-Event-ID is ignored."""

from __future__ import annotations

import threading

import requests

from docqa.events import events_publish


def _session(client, user, base: str) -> requests.Session:
    client.force_login(user)
    session = requests.Session()
    session.cookies.set("sessionid", client.cookies["sessionid"].value)
    return session


def _publish_until(user_id: int, heard: threading.Event) -> None:
    while not heard.wait(0.1):
        events_publish(user_ids=[user_id], event="document-7")


def _first_event(lines) -> str:
    for line in lines:
        if line.startswith("event:"):
            return line.split(":", 1)[1].strip()
    return ""


def test_a_malformed_last_event_id_is_ignored(asgi_server, client, user):
    session = _session(client, user, asgi_server)
    for bad in ["not-an-id", "9" * 60, "1-2-3", "$"]:
        with session.get(
            f"{asgi_server}/documents/events/", headers={"Last-Event-ID": bad}, stream=True, timeout=20
        ) as response:
            assert response.status_code == 200
            lines = response.iter_lines(decode_unicode=True)
            assert next(lines).startswith("retry:")
            # Published until heard: the stream starts listening at "now", some moment after this.
            heard = threading.Event()
            publisher = threading.Thread(target=_publish_until, args=(user.pk, heard))
            publisher.start()
            try:
                assert _first_event(lines) == "document-7", bad
            finally:
                heard.set()
                publisher.join()
