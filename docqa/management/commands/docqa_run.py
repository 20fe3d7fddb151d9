"""Run every docqa process until Ctrl-C: web, workers, beat, and what the machine lacks.

Starts the embedded Redis when REDIS_URL is unset and the offline Moonshot emulator when
MOONSHOT_API_KEY is unset, then supervises them all with honcho's process manager, which
stops every process it started on Ctrl-C or SIGTERM.

A busy port never ends in a traceback after start-up: the web port is checked first and named
in one line with the variable that changes it, and the emulator moves to a free port when its
default one is taken (the web and workers are told through MOONSHOT_BASE_URL).
"""

from __future__ import annotations

import os
import shlex
import socket
import sys
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from honcho.manager import Manager

from docqa.embedded_redis import embedded_redis_command, socket_path_from_url

EMULATOR_DEFAULT_PORT = 8765


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now (bound as uvicorn binds: SO_REUSEADDR,
    so a port left in TIME_WAIT by a previous run counts as free)."""
    family, kind, proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError:
            return False
    return True


def free_port(host: str) -> int:
    """A port the system says is free on host right now."""
    family, kind, proto, _name, address = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as probe:
        probe.bind(address)
        return probe.getsockname()[1]


def emulator_base_url(base_url: str, *, chosen: bool, web_port: int | None = None) -> tuple[str, str]:
    """Where the offline emulator will listen, and a line to say about it ("" if nothing).

    `chosen` is whether MOONSHOT_BASE_URL was set: a port someone chose is not moved behind
    their back, it is named; the default one gives way to a free port. `web_port` is the web's
    own port, free a moment ago but the web's all the same (PORT=8765 is the emulator's default).
    """
    base = urlsplit(base_url)
    host, port = base.hostname or "127.0.0.1", base.port or EMULATOR_DEFAULT_PORT
    if port != web_port and port_is_free(host, port):
        return base_url, ""
    taken = "is the web's port" if port == web_port else "is taken"
    if chosen:
        raise CommandError(
            f"Port {port} on {host} {taken}, and MOONSHOT_BASE_URL={base_url} puts the offline "
            "emulator there: stop what uses it or set MOONSHOT_BASE_URL to another port."
        )
    moved = free_port(host)
    while moved == web_port:
        moved = free_port(host)
    url = base._replace(netloc=f"{base.hostname}:{moved}").geturl()
    return url, f"Port {port} {taken}: the offline emulator listens on {moved} instead."


class Command(BaseCommand):
    help = "Run web, workers and beat (plus embedded Redis and the emulator when needed)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=settings.PORT)
        parser.add_argument("--answer-threads", type=int, default=settings.DOCQA_ANSWER_THREADS)
        parser.add_argument("--file-workers", type=int, default=settings.DOCQA_FILE_WORKERS)

    def handle(self, *args, **options):
        host, port = options["host"], options["port"]
        if not port_is_free(host, port):
            raise CommandError(
                f"Port {port} on {host} is taken: stop what uses it or choose another, "
                f"e.g. PORT={port + 1} make run."
            )
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        base_url = settings.MOONSHOT_BASE_URL
        note = ""
        if settings.MOONSHOT_OFFLINE:
            base_url, note = emulator_base_url(
                base_url, chosen=bool(os.environ.get("MOONSHOT_BASE_URL")), web_port=port
            )
            env["MOONSHOT_BASE_URL"] = base_url

        self.stdout.write(
            self.style.SUCCESS(f"docqa on http://{host}:{port}/") + "  (Ctrl-C stops everything)"
        )
        if settings.MOONSHOT_OFFLINE:
            self.stdout.write(
                self.style.WARNING("Offline: no MOONSHOT_API_KEY, so Moonshot is the local emulator")
                + f" at {base_url}"
            )
            if note:
                self.stdout.write(note)
        else:
            self.stdout.write(f"Online: talking to Moonshot at {base_url}")

        call_command("migrate", interactive=False, verbosity=0)
        if not settings.DEBUG:
            call_command("collectstatic", interactive=False, verbosity=0)

        python = sys.executable
        processes: dict[str, list[str]] = {}

        if settings.REDIS_EMBEDDED:
            socket = socket_path_from_url(settings.REDIS_URL)
            socket.unlink(missing_ok=True)
            processes["redis"] = embedded_redis_command(
                socket_path=socket, data_dir=settings.VAR_DIR / "redis"
            )
        if settings.MOONSHOT_OFFLINE:
            base = urlsplit(base_url)
            processes["emulator"] = [
                python,
                "-m",
                "docqa.emulator",
                "--host",
                base.hostname or "127.0.0.1",
                "--port",
                str(base.port or EMULATOR_DEFAULT_PORT),
                "--data-dir",
                str(settings.VAR_DIR / "emulator"),
                "--api-key",
                settings.MOONSHOT_API_KEY,
            ]
        processes["web"] = [
            python,
            "-m",
            "uvicorn",
            "docqa.asgi:application",
            "--host",
            host,
            "--port",
            str(port),
            "--lifespan",
            "off",
            "--timeout-graceful-shutdown",
            "5",
        ]
        celery = [python, "-m", "celery", "-A", "docqa"]
        processes["files"] = [
            *celery,
            "worker",
            "-Q",
            "files",
            "-n",
            "files@%h",
            "--pool",
            "prefork",
            "--concurrency",
            str(options["file_workers"]),
            "--loglevel",
            "INFO",
        ]
        processes["answers"] = [
            *celery,
            "worker",
            "-Q",
            "answers",
            "-n",
            "answers@%h",
            "--pool",
            "threads",
            "--concurrency",
            str(options["answer_threads"]),
            "--loglevel",
            "INFO",
        ]
        processes["beat"] = [
            *celery,
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(settings.VAR_DIR / "celerybeat-schedule"),
        ]

        manager = Manager()
        for name, command in processes.items():
            manager.add_process(name, shlex.join(command), env=env, quiet=False)
        manager.loop()
        sys.exit(manager.returncode)
