"""Shared fixtures: the emulator over real HTTP, a real Celery worker thread, live servers, users."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from django.conf import settings

from docqa.connections import redis_client
from tests import factories


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    """The Moonshot emulator on a free port for the whole run; the app is pointed at it."""
    from docqa.emulator.testing import run_emulator

    with run_emulator(data_dir=tmp_path_factory.mktemp("emulator"), api_key="emulator-key") as emu:
        old = settings.MOONSHOT_BASE_URL, settings.MOONSHOT_API_KEY
        settings.MOONSHOT_BASE_URL, settings.MOONSHOT_API_KEY = emu.base_url, emu.api_key
        try:
            yield emu
        finally:
            settings.MOONSHOT_BASE_URL, settings.MOONSHOT_API_KEY = old


@pytest.fixture
def emu(emulator):
    """The emulator with no faults, no delays and an empty account for this test."""
    emulator.control.reset()
    emulator.control.configure(first_token_delay=0.0, chunk_delay=0.0, extract_delay=0.05)
    yield emulator
    emulator.control.clear_faults()


def _django_active(request) -> bool:
    """False when a folder's tests run with `-p no:django` (the client and the emulator know no Django)."""
    return request.config.pluginmanager.has_plugin("django")


@pytest.fixture(scope="session", autouse=True)
def _collected_static(request):
    """Static files collected as `make run` does, so pages load exactly as deployed."""
    if _django_active(request):
        from django.core.management import call_command

        call_command("collectstatic", interactive=False, verbosity=0)


@pytest.fixture(autouse=True)
def _django_test_defaults(request, tmp_path):
    """Media in a temporary folder, short retries, English, and an empty Redis for every test.

    A request in Chinese leaves its language active in the thread, hence the reset.
    """
    if not _django_active(request):
        yield
        return
    from django.utils import translation

    settings_fixture = request.getfixturevalue("settings")
    settings_fixture.MEDIA_ROOT = tmp_path / "media"
    settings_fixture.MOONSHOT_MAX_RETRIES = 2
    redis_client().flushdb()  # its own embedded server, or CI's database
    translation.activate("en")
    yield
    translation.deactivate()
    # The answer writer keeps its database connection while busy; a test's end is its end
    # (the next test may flush the tables, and the last one drops the test database).
    from docqa.chat.writer import answer_writer

    answer_writer.stop()


@pytest.fixture
def celery_worker(transactional_db, emu):
    """A real Celery worker in a thread, consuming every queue (not eager mode)."""
    from celery.contrib.testing.worker import start_worker

    from docqa.celery import app

    app.conf.task_always_eager = False
    with start_worker(
        app,
        pool="threads",
        concurrency=4,
        perform_ping_check=False,
        queues=["files", "answers"],
        shutdown_timeout=30,
        loglevel="WARNING",
    ) as worker:
        yield worker


@pytest.fixture
def make_user(db):
    def make(username: str | None = None, password: str = factories.PASSWORD, **extra):
        return factories.user_create(username, password=password, **extra)

    return make


@pytest.fixture
def user(make_user):
    return make_user("alice")


@pytest.fixture
def other_user(make_user):
    return make_user("mallory")


@pytest.fixture
def auth_client(client, user):
    client.force_login(user)
    return client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def asgi_server(transactional_db, emu):
    """docqa's ASGI application under uvicorn in a thread, as `make run` serves it."""
    import uvicorn

    from docqa.asgi import application

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            application,
            host="127.0.0.1",
            port=port,
            lifespan="off",
            log_level="warning",
            timeout_graceful_shutdown=1,  # open SSE streams would otherwise hold shutdown
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def wait_for(predicate, *, timeout: float = 20.0, interval: float = 0.05, message: str = "condition"):
    """Poll `predicate` until it returns a truthy value (for state reached by other threads)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(interval)
