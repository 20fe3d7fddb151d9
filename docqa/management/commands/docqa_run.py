"""Run every docqa process until Ctrl-C: web, workers, beat, and what the machine lacks.

Starts the embedded Redis when REDIS_URL is unset and the offline Moonshot emulator when
MOONSHOT_API_KEY is unset, then supervises them all with honcho's process manager, which
stops every process it started on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os
import shlex
import sys
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from honcho.manager import Manager

from docqa.embedded_redis import embedded_redis_command, socket_path_from_url


class Command(BaseCommand):
    help = "Run web, workers and beat (plus embedded Redis and the emulator when needed)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=settings.PORT)
        parser.add_argument("--answer-threads", type=int, default=settings.DOCQA_ANSWER_THREADS)
        parser.add_argument("--file-workers", type=int, default=settings.DOCQA_FILE_WORKERS)

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        if not settings.DEBUG:
            call_command("collectstatic", interactive=False, verbosity=0)

        python = sys.executable
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        processes: dict[str, list[str]] = {}

        if settings.REDIS_EMBEDDED:
            socket = socket_path_from_url(settings.REDIS_URL)
            socket.unlink(missing_ok=True)
            processes["redis"] = embedded_redis_command(
                socket_path=socket, data_dir=settings.VAR_DIR / "redis"
            )
        if settings.MOONSHOT_OFFLINE:
            base = urlsplit(settings.MOONSHOT_BASE_URL)
            processes["emulator"] = [
                python,
                "-m",
                "docqa.emulator",
                "--host",
                base.hostname or "127.0.0.1",
                "--port",
                str(base.port or 8765),
                "--data-dir",
                str(settings.VAR_DIR / "emulator"),
                "--api-key",
                settings.MOONSHOT_API_KEY,
            ]
            self.stdout.write(
                self.style.WARNING(
                    "No MOONSHOT_API_KEY: running offline against the local emulator at "
                    f"{settings.MOONSHOT_BASE_URL}."
                )
            )
        processes["web"] = [
            python,
            "-m",
            "uvicorn",
            "docqa.asgi:application",
            "--host",
            options["host"],
            "--port",
            str(options["port"]),
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

        self.stdout.write(f"docqa on http://{options['host']}:{options['port']}/  (Ctrl-C stops everything)")
        manager = Manager()
        for name, command in processes.items():
            manager.add_process(name, shlex.join(command), env=env, quiet=False)
        manager.loop()
        sys.exit(manager.returncode)
