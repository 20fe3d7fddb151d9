"""A 100 MB upload streams from disk: the process's memory barely moves.

The emulator runs in a thread of this same process, so buffering on either side (the
client reading the file whole, or the server holding the body) would show here.
"""

from __future__ import annotations

import gc
import threading
import time

import psutil

MB = 1024 * 1024
# Moonshot's "100 MB" is decimal (seed README): the largest file it takes.
SIZE = 100_000_000
MAX_GROWTH = 40 * MB


class PeakRss:
    """Sample this process's resident memory every few milliseconds in a thread."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self.baseline = self._process.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


def test_hundred_megabyte_upload_uses_constant_memory(client, emu, tmp_path):
    path = tmp_path / "big.txt"
    with path.open("wb") as handle:
        handle.truncate(SIZE)  # sparse: no disk blocks, but 100 MB to read and send
    # Keep the emulator's text extraction of 100 MB of NULs out of the measurement (and
    # out of the run): it starts only after the file is deleted below.
    emu.control.configure(extract_delay=120.0)
    # Warm up connection pools, imports and the emulator's code paths first.
    warm = tmp_path / "warm.txt"
    warm.write_bytes(b"x" * 1024)
    client.files_delete(client.files_create(warm, filename="warm.txt").id)
    gc.collect()

    with PeakRss() as memory:
        created = client.files_create(path, filename="big.txt")

    assert created.bytes == SIZE
    client.files_delete(created.id)
    assert memory.growth < MAX_GROWTH, f"peak RSS grew by {memory.growth / MB:.1f} MB"
