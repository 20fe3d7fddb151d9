"""Helpers shared by the chat tests that run answers for real (worker, Redis, the emulator)."""

from __future__ import annotations

import threading

from django.db import connection

from docqa import keys
from docqa.chat import services
from docqa.chat.models import Message, State
from docqa.connections import redis_client


def finished(answer_id: int) -> Message | None:
    answer = Message.objects.get(pk=answer_id)
    return answer if answer.state != State.STREAMING else None


def ask(conversation, question="How much did the quarterly revenue grow?") -> Message:
    return services.conversation_ask(conversation=conversation, question=question)[1]


def stream_text(answer_id: int) -> tuple[str, str]:
    """The content and reasoning published to the answer's Redis Stream so far."""
    entries = redis_client().xrange(keys.answer_stream(answer_id))
    content = "".join(f.get("t", "") for _i, f in entries if f.get("k") == "c")
    reasoning = "".join(f.get("t", "") for _i, f in entries if f.get("k") == "r")
    return content, reasoning


def run_in_thread(fn) -> tuple[threading.Thread, dict]:
    """Run `fn` in a thread of its own (as a worker thread would), closing its connection after."""
    result: dict = {}

    def target():
        try:
            result["value"] = fn()
        finally:
            connection.close()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, result
