"""Prometheus metrics: served on their own port, counted from the database at scrape time."""

from __future__ import annotations

import pytest
import requests
from django.conf import settings
from prometheus_client import start_http_server
from prometheus_client.parser import text_string_to_metric_families

from docqa.chat.models import State
from docqa.connections import moonshot_client
from docqa.documents.models import Status
from docqa.moonshot import MoonshotClient, NotFoundError
from docqa.ops.instruments import moonshot_call_observed
from docqa.ops.metrics import registry_build
from tests import factories
from tests.conftest import free_port
from tests.ops.conftest import asgi_request


@pytest.fixture
def scrape(transactional_db):
    """Scrape an exporter serving what docqa's web process serves, as Prometheus would."""
    server, thread = start_http_server(free_port(), addr="127.0.0.1", registry=registry_build())
    url = f"http://127.0.0.1:{server.server_port}/metrics"

    def scrape() -> dict[tuple[str, tuple], float]:
        response = requests.get(url, timeout=10)
        assert response.status_code == 200
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }

    yield scrape
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def test_answers_documents_and_account_are_counted_at_scrape_time(scrape, user):
    conversation = factories.conversation_create(owner=user)  # one ready document
    factories.document_create(owner=user, status=Status.FAILED)
    factories.document_create(owner=user, status=Status.QUEUED, remote_id="")
    factories.exchange_create(conversation=conversation, state=State.COMPLETE)
    factories.exchange_create(conversation=conversation, state=State.COMPLETE)
    factories.exchange_create(conversation=conversation, state=State.STREAMING)
    factories.exchange_create(conversation=conversation, state=State.INTERRUPTED)

    samples = scrape()
    answers = {state: samples[("docqa_answers", (("state", state),))] for state in State.values}
    assert answers == {"streaming": 1, "complete": 2, "stopped": 0, "failed": 0, "interrupted": 1}
    documents = {s: samples[("docqa_documents", (("status", s),))] for s in Status.values}
    assert documents == {"queued": 1, "uploading": 0, "extracting": 0, "ready": 1, "failed": 1}
    assert samples[("docqa_stored_files", (("status", "ready"),))] == 1
    assert samples[("docqa_database_up", ())] == 1
    assert samples[("docqa_account_files_limit", ())] == settings.DOCQA_ACCOUNT_MAX_FILES
    assert samples[("docqa_account_bytes_limit", ())] == settings.DOCQA_ACCOUNT_MAX_BYTES

    factories.exchange_create(conversation=conversation, state=State.FAILED)
    assert scrape()[("docqa_answers", (("state", "failed"),))] == 1  # live, not cached


def test_account_gauges_follow_the_files_on_moonshot(scrape, user):
    before = scrape()
    factories.document_create(owner=user, remote_id="file-1", text="x" * 1000)
    after = scrape()
    assert after[("docqa_account_files", ())] == before[("docqa_account_files", ())] + 1
    assert after[("docqa_account_bytes", ())] == before[("docqa_account_bytes", ())] + 1000


def test_requests_are_counted_by_method_and_status_class(scrape, app):
    key = ("docqa_http_requests_total", (("method", "GET"), ("status", "4xx")))
    timed = ("docqa_http_request_duration_seconds_count", (("method", "GET"),))
    before = scrape()
    assert asgi_request(app, "/no-such-page/").status == 404
    assert asgi_request(app, "/healthz").status == 200  # probes are not counted
    after = scrape()
    assert after[key] - before.get(key, 0) == 1
    assert after[timed] - before.get(timed, 0) == 1


def test_metrics_are_not_on_the_public_port(app):
    assert asgi_request(app, "/metrics").status == 404


def test_moonshot_attempts_by_endpoint_and_outcome(scrape, emu):
    ok = ("docqa_moonshot_calls_total", (("endpoint", "GET /models"), ("outcome", "ok")))
    missing = (
        "docqa_moonshot_calls_total",
        (("endpoint", "GET /files/{id}"), ("outcome", "NotFoundError")),
    )
    before = scrape()
    client = moonshot_client()  # as docqa builds it: every attempt observed
    client.models_list()
    with pytest.raises(NotFoundError):
        client.files_retrieve("no-such-file")
    after = scrape()
    assert after[ok] - before.get(ok, 0) == 1
    assert after[missing] - before.get(missing, 0) == 1


def test_the_client_hook_counts_every_attempt(scrape, emu):
    """docqa's client observes every attempt (as docqa.connections builds it), retries too."""
    emu.control.add_fault("GET", "/v1/models", status=503, error_type="server_error", count=1)
    endpoint = (("endpoint", "GET /models"),)
    before = scrape()
    with MoonshotClient(
        emu.base_url, emu.api_key, max_retries=2, sleep=lambda _s: None, observe=moonshot_call_observed
    ) as client:
        assert client.models_list()
    after = scrape()
    outcomes = {
        labels[1][1]: after[(name, labels)] - before.get((name, labels), 0)
        for (name, labels) in after
        if name == "docqa_moonshot_calls_total" and labels[0] == endpoint[0]
    }
    assert outcomes.get("ok") == 1
    assert sum(n for outcome, n in outcomes.items() if outcome != "ok") == 1
