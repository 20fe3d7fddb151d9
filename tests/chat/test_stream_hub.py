"""The one XREAD per web process that reads every watched answer stream (real Redis)."""

from __future__ import annotations

import asyncio
import contextlib

from docqa import keys
from docqa.chat.stream_hub import StreamHub, answer_entries_shared
from docqa.connections import redis_client


def add(answer_id: int, text: str) -> str:
    return redis_client().xadd(keys.answer_stream(answer_id), {"k": "c", "t": text})


async def take(entries, n: int, timeout: float = 5) -> list[str]:
    """The texts of the next batches until `n` entries came (None batches are skipped)."""
    texts: list[str] = []
    async with asyncio.timeout(timeout):
        async for batch in entries:
            if batch is not None:
                texts += [fields["t"] for _id, fields in batch]
            if len(texts) >= n:
                return texts
    return texts


def test_many_watchers_are_served_in_order_by_few_reads():
    async def run():
        hub = StreamHub()
        readers = [
            answer_entries_shared(answer_id=900 + i, after="", wait=lambda: 10, hub=hub) for i in range(50)
        ]
        firsts = [asyncio.ensure_future(anext(r)) for r in readers]
        await asyncio.sleep(0.2)  # every reader is watching (the hub waits in Redis)
        for step in range(3):
            for i in range(50):
                add(900 + i, f"{i}.{step}")
        batches = await asyncio.gather(*firsts)
        texts = [[f["t"] for _id, f in batch] for batch in batches]
        rest = [await take(r, 3 - len(t)) if len(t) < 3 else [] for r, t in zip(readers, texts, strict=True)]
        for r in readers:
            await r.aclose()
        return [t + more for t, more in zip(texts, rest, strict=True)], hub.reads

    texts, reads = asyncio.run(run())
    assert texts == [[f"{i}.{step}" for step in range(3)] for i in range(50)]
    # 150 entries for 50 watchers: far fewer replies than one per entry.
    assert reads < 50


def test_a_new_watcher_wakes_the_waiting_read_and_resumes_after_its_cursor():
    async def run():
        hub = StreamHub()
        idle = answer_entries_shared(answer_id=1, after="", wait=lambda: 10, hub=hub)
        idle_next = asyncio.ensure_future(anext(idle))
        await asyncio.sleep(0.2)  # the hub now waits (BLOCK 5 s) on answer 1 only
        seen = add(2, "old")
        add(2, "new")
        loop = asyncio.get_running_loop()
        started = loop.time()
        late = answer_entries_shared(answer_id=2, after=seen, wait=lambda: 10, hub=hub)
        texts = await take(late, 1)
        waited = loop.time() - started
        # A second watcher of the same answer, from the start: the key is shared, cursors are not.
        again = answer_entries_shared(answer_id=2, after="", wait=lambda: 10, hub=hub)
        all_texts = await take(again, 2)
        idle_next.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await idle_next
        for r in (late, again, idle):
            await r.aclose()
        return texts, waited, all_texts

    texts, waited, all_texts = asyncio.run(run())
    assert texts == ["new"]
    assert waited < 1.0  # woken, not after the hub's 5 s block
    assert all_texts == ["old", "new"]


def test_idle_watcher_gets_none_after_its_wait():
    async def run():
        hub = StreamHub()
        entries = answer_entries_shared(answer_id=7, after="", wait=lambda: 0.05, hub=hub)
        first = await anext(entries)
        add(7, "x")
        later = await take(entries, 1)
        await entries.aclose()
        return first, later

    assert asyncio.run(run()) == (None, ["x"])


def test_a_failed_read_reaches_every_watcher():
    async def run():
        hub = StreamHub()
        watching = [answer_entries_shared(answer_id=i, after="", wait=lambda: 10, hub=hub) for i in (8, 9)]
        pending = [asyncio.ensure_future(anext(w)) for w in watching]
        await asyncio.sleep(0.2)
        # A wrong type under one key makes the hub's next XREAD fail, as a lost Redis would.
        redis_client().set(keys.answer_stream(8), "not a stream")
        woken = answer_entries_shared(answer_id=10, after="", wait=lambda: 10, hub=hub)
        pending.append(asyncio.ensure_future(anext(woken)))
        results = await asyncio.gather(*pending, return_exceptions=True)
        for w in [*watching, woken]:
            await w.aclose()
        return results

    results = asyncio.run(run())
    assert all("WRONGTYPE" in str(r) for r in results), results
