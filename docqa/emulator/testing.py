"""Run the emulator inside a test process: uvicorn in a background thread on a free port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from docqa.emulator.app import create_app
from docqa.emulator.control import EmulatorControl
from docqa.emulator.state import Knobs
from docqa.emulator.store import AccountLimits

_START_TIMEOUT = 15.0


@dataclass(frozen=True)
class RunningEmulator:
    """A started emulator: where it listens, the key it wants, and its control client."""

    base_url: str
    api_key: str
    control: EmulatorControl
    data_dir: Path
    app: Starlette


@contextmanager
def run_emulator(
    *,
    data_dir: Path,
    api_key: str = "emulator-key",
    knobs: Knobs | None = None,
    limits: AccountLimits | None = None,
) -> Iterator[RunningEmulator]:
    """Serve the emulator on 127.0.0.1 (a free port) for the duration of the block."""
    app = create_app(data_dir=Path(data_dir), api_key=api_key, knobs=knobs, limits=limits)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        # Room for a thousand streams connecting at once.
        backlog=2048,
        # Streams still open at exit are cut after this, so a test never hangs on teardown.
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"emulator-{port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + _START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"the emulator did not start on 127.0.0.1:{port}")
        time.sleep(0.01)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        yield RunningEmulator(
            base_url=base_url,
            api_key=api_key,
            control=EmulatorControl(base_url),
            data_dir=Path(data_dir),
            app=app,
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
