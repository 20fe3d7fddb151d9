"""One kind of lock for every job that must not run twice at once: a Redis lease.

A lease has a short time to live and is renewed while its holder works, so a worker killed at
any line (SIGKILL, OOM, a lost machine) frees it within one TTL instead of holding it for a
whole task time limit. Ingest, answers and housekeeping all take theirs through here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from docqa.connections import redis_client

logger = logging.getLogger("docqa.locks")


class Lease:
    """A non-blocking Redis lock with a TTL; any thread may renew or release it."""

    def __init__(self, name: str, *, ttl: float) -> None:
        self.name = name
        self.ttl = ttl
        # Not thread-local: a renewal thread (or the answers' saver) extends what another took.
        self._lock = redis_client().lock(name, timeout=ttl, blocking=False, thread_local=False)

    def acquire(self) -> bool:
        return bool(self._lock.acquire())

    def renew(self) -> None:
        """Give the lease a whole TTL again; raises redis' LockError when it is no longer ours."""
        self._lock.reacquire()

    def release(self) -> None:
        try:
            self._lock.release()
        except Exception:  # noqa: BLE001 - an expired lease is already free
            pass

    @contextmanager
    def renewed(self, every: float | None = None) -> Iterator[None]:
        """Renew the lease from a background thread (every TTL/3) while the block runs."""
        stopped = threading.Event()
        interval = every if every is not None else self.ttl / 3

        def renew_until_stopped() -> None:
            while not stopped.wait(interval):
                try:
                    self.renew()
                except Exception:  # noqa: BLE001 - Redis away for a moment: try again next time
                    logger.warning("could not renew %s", self.name, exc_info=True)

        thread = threading.Thread(target=renew_until_stopped, name=f"lease:{self.name}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stopped.set()
            thread.join(timeout=5)


@contextmanager
def lease_held(name: str, *, ttl: float, renew: bool = True) -> Iterator[Lease | None]:
    """Hold the lease `name` for the block, renewed while it runs; None when someone else has it."""
    lease = Lease(name, ttl=ttl)
    if not lease.acquire():
        yield None
        return
    try:
        if renew:
            with lease.renewed():
                yield lease
        else:
            yield lease
    finally:
        lease.release()


def lease_is_held(name: str) -> bool:
    return bool(redis_client().exists(name))
