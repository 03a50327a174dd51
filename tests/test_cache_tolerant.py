"""The Redis cache turns an unreachable Redis into cache misses instead of errors."""

import socket

import pytest

from spm.cache import TolerantRedisCache


@pytest.fixture
def unreachable_cache():
    # A port that was free a moment ago: nothing listens there, so every connection is refused.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return TolerantRedisCache(
        f"redis://127.0.0.1:{port}/0", {"OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}
    )


def test_get_returns_default_when_redis_unreachable(unreachable_cache):
    assert unreachable_cache.get("missing") is None
    assert unreachable_cache.get("missing", "fallback") == "fallback"
    assert unreachable_cache.get("missing", default="fallback") == "fallback"


def test_writes_are_dropped_when_redis_unreachable(unreachable_cache):
    assert unreachable_cache.set("key", "value") is None
    assert unreachable_cache.add("key", "value") is False
    assert unreachable_cache.delete("key") is False
    assert unreachable_cache.get_many(["a", "b"]) == {}
    assert unreachable_cache.set_many({"a": 1, "b": 2}) == ["a", "b"]
