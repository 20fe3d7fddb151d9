"""docqa scaled out on one machine: two web processes, two answers workers, one database, one Redis.

A launcher of the deployment test's own (the bench's `bench/stack.py` starts one of each
process, with an embedded Redis and SQLite): the emulator, two uvicorn processes on two ports,
one files worker, two answers workers with distinct node names, and beat, all pointed at one
PostgreSQL database (created here, dropped at the end) and one Redis database (flushed at
start and end), sharing one media directory as machines share a volume. The command lines
are those of `docqa.management.commands.docqa_run`. A small round-robin TCP proxy stands in
for the load balancer: each new connection goes to the next web process in turn.

Every process runs in a session of its own and is stopped by its process group id, whatever
happened; everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
import requests
from psycopg import sql

from docqa.emulator.control import EmulatorControl

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
API_KEY = "emulator-key"
# Celery's worker logs (INFO) a line per task it takes from the queue and one per task run's end.
ANSWER_RECEIVED = re.compile(r"Task docqa\.chat\.tasks\.answer_generate\[[0-9a-f-]+\] received")
ANSWER_COMPLETE = re.compile(
    r"Task docqa\.chat\.tasks\.answer_generate\[[0-9a-f-]+\] succeeded in \S+ 'complete'"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url_beside(url: str, suffix: str) -> str:
    """The URL of a database next to `url`'s on the same server, named `<name>_<suffix>`."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "postgres"
    return urlunsplit(parts._replace(path=f"/{name}_{suffix}"))


def redis_url_beside(url: str) -> str:
    """A Redis database on the same server as `url`'s but another number (`url`'s + 8, mod 16):
    the cluster flushes it, and the suite's own broker keys live in `url`'s."""
    parts = urlsplit(url)
    number = int(parts.path.lstrip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(number + 8) % 16}"))


def database_recreate(url: str, *, drop_only: bool = False) -> None:
    """Drop the database `url` names (and its sessions) and, unless `drop_only`, create it empty."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if not drop_only:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


@dataclass
class Proc:
    name: str
    command: list[str]
    log: Path
    popen: subprocess.Popen | None = None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 25) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


class RoundRobinProxy:
    """A TCP proxy on a loop in a thread: each accepted connection goes to the next upstream."""

    def __init__(self, upstream_ports: list[int]) -> None:
        self.upstream_ports = upstream_ports
        self.connections = [0] * len(upstream_ports)  # accepted, per upstream
        self.port = 0
        self._turn = itertools.count()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="scaleout-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the proxy did not start")

    def stop(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        handlers: set[asyncio.Task] = set()

        async def accepted(reader, writer):
            handlers.add(asyncio.current_task())
            try:
                await self._relay(reader, writer)
            finally:
                handlers.discard(asyncio.current_task())

        server = await asyncio.start_server(accepted, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            for task in list(handlers):
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)
            await server.wait_closed()

    async def _relay(self, client_reader, client_writer) -> None:
        index = next(self._turn) % len(self.upstream_ports)
        self.connections[index] += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.upstream_ports[index]
            )
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer)
        )

    @staticmethod
    async def _pipe(reader, writer) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            # One side done (a response read to its end, a client gone): close the other.
            with contextlib.suppress(Exception):
                writer.close()


@dataclass
class Cluster:
    """The processes of one scaled-out docqa on this machine."""

    database_url: str
    redis_url: str
    static_root: str
    var_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="docqa-scaleout-")))
    procs: dict[str, Proc] = field(default_factory=dict)
    web_ports: list[int] = field(default_factory=lambda: [free_port(), free_port()])
    emulator_port: int = field(default_factory=free_port)
    proxy: RoundRobinProxy | None = None

    WEB = ("web-a", "web-b")
    ANSWERS = ("answers-1", "answers-2")

    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.emulator_port}/v1"

    def web_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.web_ports[index]}"

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DOCQA_", "MOONSHOT_", "EMULATOR_", "DJANGO_", "DATABASE_", "CELERY_"))
            and k not in ("REDIS_URL", "PORT")
        }
        env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "DJANGO_SETTINGS_MODULE": "docqa.settings",
                # One var/ (and so one media directory) for every process, as machines share a volume.
                "DOCQA_VAR_DIR": str(self.var_dir),
                "DOCQA_STATIC_ROOT": self.static_root,
                "DATABASE_URL": self.database_url,
                "DATABASE_POOL_SIZE": "4",  # a shared machine's PostgreSQL: few connections each
                "REDIS_URL": self.redis_url,
                "MOONSHOT_BASE_URL": self.emulator_url,  # no key: offline, the emulator's
                "DJANGO_SECRET_KEY": "scaleout-test-only-secret-key-" + "s" * 40,  # one per install
                "DOCQA_LOG_LEVEL": "WARNING",
            }
        )
        return env

    def commands(self) -> dict[str, list[str]]:
        """The command lines of `docqa_run`, with web and answers workers twice (distinct names)."""
        python = shlex.quote(PYTHON)
        emulator_data, schedule = (
            shlex.quote(str(self.var_dir / n)) for n in ("emulator", "celerybeat-schedule")
        )
        celery = f"{python} -m celery -A docqa"
        commands = {
            "emulator": f"{python} -m docqa.emulator --host 127.0.0.1 --port {self.emulator_port} "
            f"--data-dir {emulator_data} --api-key {API_KEY} --log-level warning",
            "files": f"{celery} worker -Q files -n files@%h --pool prefork --concurrency 2 --loglevel INFO",
            "beat": f"{celery} beat --loglevel INFO --schedule {schedule}",
        }
        for name, port in zip(self.WEB, self.web_ports, strict=True):
            commands[name] = (
                f"{python} -m uvicorn docqa.asgi:application --host 127.0.0.1 --port {port} "
                "--lifespan off --timeout-graceful-shutdown 5 --log-level warning"
            )
        for name in self.ANSWERS:
            # One thread each (make run's default is 100): a worker then holds at most one
            # running answer and one reserved, so four answers asked at once reach both.
            commands[name] = (
                f"{celery} worker -Q answers -n {name}@%h --pool threads --concurrency 1 --loglevel INFO"
            )
        return {name: shlex.split(command) for name, command in commands.items()}

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        database_recreate(self.database_url)
        redis.Redis.from_url(self.redis_url).flushdb()
        logs = self.var_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        env = self.env()
        for name, command in self.commands().items():
            self.procs[name] = Proc(name, command, logs / f"{name}.log")
        self._spawn("emulator", env)
        subprocess.run(
            [PYTHON, str(ROOT / "manage.py"), "migrate", "--verbosity", "0"],
            env=env,
            cwd=ROOT,
            check=True,
            timeout=max(5, deadline - time.monotonic()),
        )
        for name in self.procs:
            if name != "emulator":
                self._spawn(name, env)
        for index, name in enumerate(self.WEB):
            self._wait(name, lambda i=index: self._http_ok(f"{self.web_url(i)}/healthz"), deadline)
        self._wait(
            "emulator",
            lambda: self._http_ok(f"{self.emulator_url.removesuffix('/v1')}/_emulator/health"),
            deadline,
        )
        for name in ("files", *self.ANSWERS):
            self._wait(name, lambda n=name: " ready." in self.procs[n].log_text(), deadline)
        self.proxy = RoundRobinProxy(self.web_ports)
        self.proxy.start()

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
        for proc in self.procs.values():
            if proc.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.procs.values():
            if proc.popen is None:
                continue
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            # Whatever is left of the group (a prefork child, a stuck process) is killed.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=5)
        with contextlib.suppress(Exception):
            database_recreate(self.database_url, drop_only=True)
        with contextlib.suppress(Exception):
            redis.Redis.from_url(self.redis_url).flushdb()
        shutil.rmtree(self.var_dir, ignore_errors=True)

    def emulator_control(self) -> EmulatorControl:
        return EmulatorControl(self.emulator_url, timeout=10)

    def answers_taken(self, name: str) -> tuple[int, int]:
        """(answer tasks handed to this answers worker, answers it wrote to the end), from its log."""
        text = self.procs[name].log_text()
        return len(ANSWER_RECEIVED.findall(text)), len(ANSWER_COMPLETE.findall(text))

    def report(self) -> str:
        """Each process's state and the end of its log (printed when the test fails)."""
        out = []
        for proc in self.procs.values():
            code = None if proc.popen is None else proc.popen.poll()
            out.append(f"--- {proc.name} ({'running' if code is None else f'exited {code}'})\n{proc.tail()}")
        return "\n".join(out)

    def _spawn(self, name: str, env: dict[str, str]) -> None:
        proc = self.procs[name]
        with open(proc.log, "ab") as log:
            proc.popen = subprocess.Popen(
                proc.command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def _wait(self, name: str, ready, deadline: float) -> None:
        while not ready():
            proc = self.procs[name]
            if not proc.alive():
                raise RuntimeError(f"{name} exited before it was ready:\n{proc.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready in time:\n{proc.tail()}")
            time.sleep(0.1)

    @staticmethod
    def _http_ok(url: str) -> bool:
        try:
            return requests.get(url, timeout=2).status_code == 200
        except requests.RequestException:
            return False
