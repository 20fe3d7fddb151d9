"""/healthz and /readyz: anonymous, outside Django's middleware, and quick to say what is down."""

from __future__ import annotations

import json
import socket
import time

import requests
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder

from tests.conftest import free_port
from tests.ops.conftest import asgi_request

ALL_OK = {"database": "ok", "migrations": "ok", "redis": "ok", "broker": "ok"}


def test_both_answer_anonymously_over_http(asgi_server):
    health = requests.get(f"{asgi_server}/healthz", timeout=10)
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert health.headers["Content-Type"] == "application/json"
    assert "Set-Cookie" not in health.headers

    ready = requests.get(f"{asgi_server}/readyz", timeout=10)
    assert (ready.status_code, ready.json()) == (200, ALL_OK)
    assert ready.headers["Cache-Control"] == "no-store"


def test_a_load_balancers_host_header_is_fine_for_probes_only(asgi_server):
    # Probers call by IP; ALLOWED_HOSTS still refuses that Host everywhere else.
    foreign = {"Host": "10.1.2.3:8000"}
    assert requests.get(f"{asgi_server}/readyz", headers=foreign, timeout=10).status_code == 200
    assert requests.get(f"{asgi_server}/accounts/login/", headers=foreign, timeout=10).status_code == 400


def test_no_trailing_slash_redirect_and_head_has_no_body(app):
    assert asgi_request(app, "/healthz/").status == 404  # exact paths, nothing to redirect
    head = asgi_request(app, "/readyz", method="HEAD")
    assert (head.status, head.body) == (200, b"")
    post = asgi_request(app, "/healthz", method="POST")
    assert (post.status, post.headers[b"allow"]) == (405, b"GET, HEAD")


def test_unreachable_redis_names_the_check_within_two_seconds(app, settings):
    port = free_port()  # bound and released: nothing listens there
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    started = time.monotonic()
    reply = asgi_request(app, "/readyz")
    elapsed = time.monotonic() - started
    assert reply.status == 503
    assert json.loads(reply.body) == {**ALL_OK, "redis": "failed"}
    assert str(port).encode() not in reply.body and b"127.0.0.1" not in reply.body
    assert elapsed < 2.5, elapsed


def test_a_redis_that_never_answers_fails_within_two_seconds(app, settings):
    with socket.socket() as silent:  # accepts connections (the backlog), never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        settings.REDIS_URL = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        started = time.monotonic()
        reply = asgi_request(app, "/readyz")
        elapsed = time.monotonic() - started
    assert (reply.status, json.loads(reply.body)) == (503, {**ALL_OK, "redis": "failed"})
    assert elapsed < 2.5, elapsed


def test_unreachable_broker_is_named(app, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    reply = asgi_request(app, "/readyz")
    assert (reply.status, json.loads(reply.body)) == (503, {**ALL_OK, "broker": "failed"})


def test_an_unapplied_migration_is_named(app):
    recorder = MigrationRecorder(connection)
    app_label, name = max(key for key in recorder.applied_migrations() if key[0] == "chat")
    recorder.record_unapplied(app_label, name)
    try:
        reply = asgi_request(app, "/readyz")
    finally:
        recorder.record_applied(app_label, name)
    assert (reply.status, json.loads(reply.body)) == (503, {**ALL_OK, "migrations": "failed"})
    assert asgi_request(app, "/readyz").status == 200


def test_other_requests_carry_a_request_id(app):
    fresh = asgi_request(app, "/accounts/login/")
    assert fresh.status == 200
    assert len(fresh.headers[b"x-request-id"]) == 32
    honoured = asgi_request(app, "/accounts/login/", headers=[(b"x-request-id", b"lb-7f3a.42")])
    assert honoured.headers[b"x-request-id"] == b"lb-7f3a.42"
    refused = asgi_request(app, "/accounts/login/", headers=[(b"x-request-id", b"<script>" + b"x" * 300)])
    assert len(refused.headers[b"x-request-id"]) == 32
