"""The control API: stats, configure, reset, and the process entry point."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests

from docqa.emulator.state import Knobs


def test_stats_count_requests_by_route(emu, api):
    file_id = api.upload_ok("a.txt", b"hello")["id"]
    api.wait_done(file_id)
    api.get(f"/files/{file_id}/content")
    api.get(f"/files/{file_id}/content")
    before = time.time()
    api.chat(messages=[{"role": "user", "content": "hi"}])
    emu.control.fake_files(count=3, bytes_each=1000)
    stats = emu.control.stats()
    assert stats["requests"]["POST /v1/files"] == 1
    assert stats["requests"]["GET /v1/files/{id}/content"] == 2
    assert stats["requests"]["GET /v1/files/{id}"] >= 1
    assert stats["requests"]["POST /v1/chat/completions"] == 1
    assert before <= stats["last_chat_request_at"] <= time.time()
    assert stats["files"] == 4 and stats["bytes"] == 5 + 3000


def test_reset_forgets_files_faults_stats_and_knob_changes(emu, api):
    api.upload_ok("a.txt", b"hello")
    emu.control.add_fault(method="GET", path="/v1/models", status=429, count=None)
    emu.control.configure(chunk_size_words=9)
    emu.control.reset()
    assert emu.control.stats() == {"requests": {}, "last_chat_request_at": None, "files": 0, "bytes": 0}
    assert emu.control.faults() == []
    assert api.get("/models").status_code == 200
    assert (
        requests.get(emu.base_url.removesuffix("/v1") + "/_emulator/config", timeout=10).json()[
            "chunk_size_words"
        ]
        == Knobs().chunk_size_words
    )


def test_configure_checks_its_values(emu):
    assert emu.control.configure(chunk_delay=0.01)["chunk_delay"] == 0.01
    with pytest.raises(RuntimeError):
        emu.control.configure(chunk_delay=-1)
    with pytest.raises(RuntimeError):
        emu.control.configure(warp_speed=9)


def test_knobs_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("EMULATOR_FIRST_TOKEN_DELAY", "0.25")
    monkeypatch.setenv("EMULATOR_EXTRACT_DELAY", "1.5")
    knobs = Knobs.from_env()
    assert (knobs.first_token_delay, knobs.extract_delay) == (0.25, 1.5)
    monkeypatch.setenv("EMULATOR_CHUNK_DELAY", "soon")
    with pytest.raises(ValueError, match="EMULATOR_CHUNK_DELAY"):
        Knobs.from_env()


def test_runs_as_a_process(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "EMULATOR_EXTRACT_DELAY": "0"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "docqa.emulator",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path),
            "--api-key",
            "proc-key",
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                response = requests.get(
                    f"http://127.0.0.1:{port}/v1/models",
                    headers={"Authorization": "Bearer proc-key"},
                    timeout=1,
                )
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.stderr.read().decode()
                assert time.monotonic() < deadline, "the emulator process did not start"
                time.sleep(0.1)
        assert response.status_code == 200
        config = requests.get(f"http://127.0.0.1:{port}/_emulator/config", timeout=5).json()
        assert config["extract_delay"] == 0 and config["first_token_delay"] > 0  # env wins; demo pacing stays
    finally:
        process.terminate()
        process.wait(timeout=10)
