"""A Redis cache that degrades to cache misses while Redis is unreachable.

The cache only holds rebuildable values (rendered dashboard fragments, the KPI data version
that keys them), so an unreachable Redis must not turn a page into a 500: reads return the
default, writes are dropped, and the page is rendered from the database. Each failure is
logged once per interval, because a Redis outage would otherwise log on every request.
"""

import functools
import logging
import time

from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

# Seconds between two log lines about the same outage.
FAILURE_LOG_INTERVAL_SECONDS = 30.0
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


def _tolerant(default_factory):
    """Wrap a cache method so that an unreachable Redis returns `default_factory(args, kwargs)` instead of raising."""

    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except _UNREACHABLE as error:
                self._failure_log(method.__name__, error)
                return default_factory(args, kwargs)

        return wrapper

    return decorate


def _default_argument(args, kwargs):
    return kwargs.get("default", args[1] if len(args) > 1 else None)


class TolerantRedisCache(RedisCache):
    """Django's RedisCache whose reads miss and whose writes are dropped while Redis is down."""

    _last_failure_logged = float("-inf")

    def _failure_log(self, operation: str, error: Exception) -> None:
        now = time.monotonic()
        if now - TolerantRedisCache._last_failure_logged >= FAILURE_LOG_INTERVAL_SECONDS:
            TolerantRedisCache._last_failure_logged = now
            logger.warning("Redis cache unreachable, serving without cache operation=%s error=%s", operation, error)

    get = _tolerant(_default_argument)(RedisCache.get)
    set = _tolerant(lambda args, kwargs: None)(RedisCache.set)
    add = _tolerant(lambda args, kwargs: False)(RedisCache.add)
    touch = _tolerant(lambda args, kwargs: False)(RedisCache.touch)
    delete = _tolerant(lambda args, kwargs: False)(RedisCache.delete)
    has_key = _tolerant(lambda args, kwargs: False)(RedisCache.has_key)
    get_many = _tolerant(lambda args, kwargs: {})(RedisCache.get_many)
    set_many = _tolerant(lambda args, kwargs: list(args[0]) if args else [])(RedisCache.set_many)
    delete_many = _tolerant(lambda args, kwargs: None)(RedisCache.delete_many)
