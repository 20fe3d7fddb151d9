"""The ingest lock: short, renewed while a run lives, gone soon after its worker dies."""

import time

from docqa.connections import redis_client
from docqa.documents import tasks


def test_a_running_ingest_keeps_its_lock_past_the_ttl():
    lock = redis_client().lock("docqa:lock:ingest:test-renew", timeout=1, blocking=False, thread_local=False)
    assert lock.acquire()
    renewal = tasks._LockRenewal(lock, every=0.2)
    try:
        time.sleep(1.6)
        assert lock.owned(), "the renewal thread let a live run's lock expire"
    finally:
        renewal.stop()
    time.sleep(1.2)
    assert not lock.owned(), "a stopped (dead) run's lock must expire by itself"
