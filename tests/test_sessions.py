"""Sessions are read from Redis first (`cached_db`), and a logout still ends them everywhere."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests import factories


@pytest.mark.django_db
def test_a_logged_in_page_reads_its_session_from_redis_not_the_database(auth_client):
    auth_client.get("/documents/")  # the session is in the cache from the login on
    with CaptureQueriesContext(connection) as queries:
        assert auth_client.get("/documents/").status_code == 200
    assert not [q for q in queries.captured_queries if "django_session" in q["sql"]]


@pytest.mark.django_db
def test_a_session_survives_losing_the_cache_and_a_logout_ends_it_for_every_browser(user):
    from django.core.cache import cache

    browser = Client()
    browser.login(username=user.username, password=factories.PASSWORD)
    cookie = browser.cookies["sessionid"].value
    cache.clear()  # Redis restarted: the database still has the login
    assert browser.get("/documents/").status_code == 200
    # The same session in a second browser (another web process reads the same Redis).
    other = Client()
    other.cookies["sessionid"] = cookie
    assert other.get("/documents/").status_code == 200
    browser.post("/accounts/logout/")
    assert other.get("/documents/").status_code == 302  # to the login page
