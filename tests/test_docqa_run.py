"""`manage.py docqa_run` (what `make run` calls) on busy ports: one clear line, never a traceback."""

import os
import socket
import subprocess
import sys
from contextlib import contextmanager

import pytest
from django.core.management.base import CommandError

from docqa.management.commands.docqa_run import emulator_base_url, free_port, port_is_free


@contextmanager
def listening():
    """A port something is listening on, for the length of the block."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def test_a_taken_web_port_is_named_with_the_variable_that_changes_it(tmp_path):
    environ = {k: v for k, v in os.environ.items() if k not in ("PORT", "MOONSHOT_BASE_URL")}
    environ["DOCQA_VAR_DIR"] = str(tmp_path)
    with listening() as port:
        result = subprocess.run(
            [sys.executable, "-m", "django", "docqa_run", "--port", str(port)],
            capture_output=True,
            text=True,
            env={**environ, "DJANGO_SETTINGS_MODULE": "docqa.settings"},
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"CommandError: Port {port} on 127.0.0.1 is taken: stop what uses it or choose another, "
        f"e.g. PORT={port + 1} make run."
    ]
    assert not (tmp_path / "docqa.sqlite3").exists()  # it said so before doing anything


def test_the_emulator_moves_off_its_default_port_when_it_is_taken():
    with listening() as port:
        url, note = emulator_base_url(f"http://127.0.0.1:{port}/v1", chosen=False)
        moved = int(url.removeprefix("http://127.0.0.1:").removesuffix("/v1"))
        assert moved != port and port_is_free("127.0.0.1", moved)
        assert note == f"Port {port} is taken: the offline emulator listens on {moved} instead."


def test_a_chosen_emulator_port_is_not_moved_but_named():
    with listening() as port, pytest.raises(CommandError) as refused:
        emulator_base_url(f"http://127.0.0.1:{port}/v1", chosen=True)
    assert f"Port {port} on 127.0.0.1 is taken" in str(refused.value)
    assert "set MOONSHOT_BASE_URL to another port" in str(refused.value)
    # Free again: used as it is, nothing to say.
    assert emulator_base_url(f"http://127.0.0.1:{port}/v1", chosen=True) == (
        f"http://127.0.0.1:{port}/v1",
        "",
    )


def test_the_emulator_never_takes_the_webs_own_port():
    """`PORT=8765 make run` put the web and the emulator on one port (the web lost)."""
    port = free_port("127.0.0.1")
    url, note = emulator_base_url(f"http://127.0.0.1:{port}/v1", chosen=False, web_port=port)
    moved = int(url.removeprefix("http://127.0.0.1:").removesuffix("/v1"))
    assert moved != port
    assert note == f"Port {port} is the web's port: the offline emulator listens on {moved} instead."
    with pytest.raises(CommandError, match="is the web's port"):
        emulator_base_url(f"http://127.0.0.1:{port}/v1", chosen=True, web_port=port)
