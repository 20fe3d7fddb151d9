"""An open Server-Sent Events page must not hold a database connection.

Pages keep their event streams open for as long as they are shown; if each held the
connection its request began with, PostgreSQL would refuse new ones past max_connections
(and the connection pool would run dry) with a few dozen readers. Counted by PostgreSQL,
with and without the pool.
"""

from __future__ import annotations

import pytest
from django.db import connection

from docqa.chat import services


def _connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL counts its connections")
def test_open_event_streams_hold_no_database_connection(session, user, make_conversation):
    conversation = make_conversation(user)
    answer = services.conversation_ask(
        conversation=conversation, question="Still streaming (no worker here)?"
    )[1]
    before = _connections()
    streams = []
    for _ in range(6):
        for path in ("/documents/events/", f"/chat/answers/{answer.pk}/stream/"):
            response = session.get(session.base + path, stream=True, timeout=10)
            response.raise_for_status()
            next(response.iter_content(chunk_size=1))  # the response has begun
            streams.append(response)
    try:
        assert len(streams) == 12
        after = _connections()
        assert after - before <= 2, "each open stream kept a connection"
    finally:
        for response in streams:
            response.close()
