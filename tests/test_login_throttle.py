"""Login throttling (django-axes): per account and per address, a clear translated lockout."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def limit(settings):
    settings.AXES_FAILURE_LIMIT = 3
    return 3


def _login(client, username, password, address="10.0.0.1", **headers):
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address, **headers
    )


def test_wrong_passwords_lock_the_account_even_from_other_addresses(client, user, limit):
    statuses = [_login(client, "alice", "wrong", address=f"10.0.0.{n}").status_code for n in range(limit)]
    assert statuses == [200] * (limit - 1) + [429]
    locked = _login(client, "alice", user.raw_password, address="10.9.9.9")
    assert locked.status_code == 429
    assert "too many wrong passwords" in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_one_address_guessing_many_accounts_is_locked_out(client, make_user, limit):
    make_user("victim")
    for n in range(limit):
        _login(client, f"nobody{n}", "wrong", address="10.6.6.6")
    locked = _login(client, "victim", "correct horse battery staple", address="10.6.6.6")
    assert locked.status_code == 429
    other = _login(client, "victim", "correct horse battery staple", address="10.7.7.7")
    assert other.status_code == 302  # another address may still log in


def test_the_lockout_speaks_the_readers_language(client, user, limit):
    for _ in range(limit):
        _login(client, "alice", "wrong")
    locked = _login(client, "alice", "wrong", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert locked.status_code == 429 and "密码" in locked.content.decode()


def test_a_right_password_resets_the_count(client, user, limit):
    for _ in range(limit - 1):
        _login(client, "alice", "wrong")
    assert _login(client, "alice", user.raw_password).status_code == 302
    client.logout()
    for _ in range(limit - 1):
        _login(client, "alice", "wrong")
    assert _login(client, "alice", user.raw_password).status_code == 302
