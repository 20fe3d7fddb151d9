"""The cap on a user's live streams, under uvicorn: documents' events and answers count together."""

from __future__ import annotations

import time

import requests

from docqa import keys
from docqa.chat.models import State
from docqa.connections import redis_client
from tests import factories
from tests.conftest import wait_for


def _session(client, user) -> requests.Session:
    client.force_login(user)
    session = requests.Session()
    session.cookies.set("sessionid", client.cookies["sessionid"].value)
    return session


def _open(session, url):
    return session.get(url, stream=True, timeout=20, headers={"Accept": "text/event-stream"})


def test_a_user_past_the_cap_is_refused_politely_until_a_stream_closes(
    asgi_server, client, user, other_user, settings
):
    settings.DOCQA_USER_MAX_STREAMS = 2
    conversation = factories.conversation_create(owner=user)
    _q, answer = factories.exchange_create(conversation=conversation, state=State.STREAMING)
    session = _session(client, user)
    events = f"{asgi_server}/documents/events/"
    first = _open(session, events)
    second = _open(session, f"{asgi_server}/chat/answers/{answer.pk}/stream/")
    assert first.status_code == second.status_code == 200
    third = _open(session, events)
    assert third.status_code == 429 and "2 live pages open" in third.text and third.headers["Retry-After"]
    zh = session.get(events, headers={"Accept-Language": "zh-hans"}, timeout=20)
    assert zh.status_code == 429 and "live pages" not in zh.text
    # Someone else's streams are not counted against this user.
    assert _open(_session(client, other_user), events).status_code == 200
    first.close()
    # The closed stream's slot comes back once the server notices the disconnect.
    wait_for(lambda: redis_client().zcard(keys.user_streams(user.pk)) < 2, message="slot given back")
    assert _open(_session(client, user), events).status_code == 200


def test_slots_of_a_crashed_process_expire(asgi_server, client, user, settings):
    settings.DOCQA_USER_MAX_STREAMS = 1
    # A stream whose process died without giving its slot back: expired a second ago.
    redis_client().zadd(keys.user_streams(user.pk), {"dead": time.time() - 1})
    response = _open(_session(client, user), f"{asgi_server}/documents/events/")
    assert response.status_code == 200
    response.close()
