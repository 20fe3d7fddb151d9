"""Leases: short, renewed while their holder works, free by themselves once it dies."""

import uuid

import pytest
from redis.exceptions import LockNotOwnedError

from docqa.connections import redis_client
from docqa.locks import Lease, lease_held, lease_is_held
from tests.conftest import wait_for


def _name() -> str:
    return f"docqa:lock:test:{uuid.uuid4().hex}"


def test_a_working_holder_keeps_renewing_its_lease():
    lease = Lease(_name(), ttl=30)
    assert lease.acquire()
    client = redis_client()
    client.pexpire(lease.name, 2_000)  # as if most of the TTL had run out
    with lease.renewed(every=0.05):
        wait_for(lambda: client.pttl(lease.name) > 20_000, message="the renewal thread renewed the lease")
    lease.release()
    assert not lease_is_held(lease.name)


def test_a_dead_holders_lease_expires_by_itself():
    lease = Lease(_name(), ttl=60)
    assert lease.acquire()
    # The holder dies here without releasing: Redis still drops the key within one TTL.
    assert 0 < redis_client().pttl(lease.name) <= 60_000


def test_a_second_holder_is_refused_until_the_first_releases():
    name = _name()
    with lease_held(name, ttl=30) as first:
        assert first is not None and lease_is_held(name)
        with lease_held(name, ttl=30) as second:
            assert second is None
    assert not lease_is_held(name)
    with lease_held(name, ttl=30) as again:
        assert again is not None


def test_renewing_a_lease_someone_else_took_over_fails():
    lease = Lease(_name(), ttl=30)
    assert lease.acquire()
    redis_client().set(lease.name, "someone-else")
    with pytest.raises(LockNotOwnedError):
        lease.renew()
