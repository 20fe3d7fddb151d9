"""Fixtures for the emulator's tests: one emulator over real HTTP and a small API client."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests

from docqa.emulator.testing import RunningEmulator, run_emulator

API_KEY = "emulator-test-key-0b5d"


class Api:
    """Just enough of a Moonshot client to drive the emulator from tests."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {api_key}"

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(self.base_url + path, timeout=30, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.session.post(self.base_url + path, timeout=30, **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return self.session.delete(self.base_url + path, timeout=30, **kwargs)

    def upload(self, filename: str, data: bytes, purpose: str = "file-extract") -> requests.Response:
        return self.post("/files", files={"file": (filename, data)}, data={"purpose": purpose})

    def upload_ok(self, filename: str, data: bytes, purpose: str = "file-extract") -> dict:
        response = self.upload(filename, data, purpose)
        assert response.status_code == 200, response.text
        return response.json()

    def wait_done(self, file_id: str, timeout: float = 20.0) -> dict:
        """Poll a file until its extraction has finished; return the file object."""
        deadline = time.monotonic() + timeout
        while True:
            file = self.get(f"/files/{file_id}").json()
            if file["status"] != "processing":
                return file
            assert time.monotonic() < deadline, f"file {file_id} still processing"
            time.sleep(0.02)

    def extracted(self, filename: str, data: bytes) -> tuple[dict, dict]:
        """Upload, wait, and return (file object, parsed content JSON)."""
        file = self.wait_done(self.upload_ok(filename, data)["id"])
        assert file["status"] == "ok", file
        response = self.get(f"/files/{file['id']}/content")
        assert response.status_code == 200, response.text
        return file, json.loads(response.text)

    def chat(self, **body) -> requests.Response:
        body.setdefault("model", "moonshot-v1-8k")
        return self.post("/chat/completions", json=body)

    def stream(self, **body) -> list[dict | str]:
        """A streamed chat: each SSE `data:` payload, parsed, with the closing "[DONE]" kept."""
        body.setdefault("model", "moonshot-v1-8k")
        with self.post("/chat/completions", json={**body, "stream": True}, stream=True) as response:
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].startswith("text/event-stream")
            return sse_events(response)


def sse_events(response: requests.Response) -> list[dict | str]:
    """Parse an SSE body into its `data:` payloads (JSON decoded, except `[DONE]`)."""
    events: list[dict | str] = []
    for line in response.iter_lines(decode_unicode=True):
        if line and line.startswith("data: "):
            payload = line[len("data: ") :]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    """One emulator for the whole run."""
    with run_emulator(data_dir=tmp_path_factory.mktemp("emulator"), api_key=API_KEY) as running:
        yield running


@pytest.fixture
def emu(emulator: RunningEmulator) -> Iterator[RunningEmulator]:
    """The emulator with an empty account, no faults and no delays for this test."""
    emulator.control.reset()
    emulator.control.configure(first_token_delay=0.0, chunk_delay=0.0, extract_delay=0.0)
    yield emulator
    emulator.control.clear_faults()


@pytest.fixture
def api(emu: RunningEmulator) -> Api:
    return Api(emu.base_url, emu.api_key)
