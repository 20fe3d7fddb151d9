"""Hundreds of streams at once in one emulator process."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.emulator.conftest import sse_events

STREAMS = 200


def test_200_concurrent_streams_all_complete(emu):
    emu.control.configure(first_token_delay=0.2, chunk_delay=0.01)
    messages = [
        {"role": "system", "content": "Buoys mark the channel. Red buoys are to port when entering."},
        {"role": "user", "content": "Which side are red buoys?"},
    ]

    def one_stream(_: int) -> list:
        with requests.post(
            emu.base_url + "/chat/completions",
            headers={"Authorization": f"Bearer {emu.api_key}"},
            json={"model": "kimi-k2-turbo-preview", "messages": messages, "stream": True},
            stream=True,
            timeout=60,
        ) as response:
            assert response.status_code == 200
            return sse_events(response)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=STREAMS) as pool:
        results = list(pool.map(one_stream, range(STREAMS)))
    elapsed = time.monotonic() - started
    assert all(events[-1] == "[DONE]" for events in results)
    assert all(events[-2]["choices"][0]["finish_reason"] == "stop" for events in results)
    chunks = len(results[0]) - 3
    # Were streams served one after another, this would take 200 × (0.2 + chunks × 0.01) s.
    assert elapsed < (0.2 + chunks * 0.01) * STREAMS / 10
    assert emu.control.stats()["requests"]["POST /v1/chat/completions"] == STREAMS
