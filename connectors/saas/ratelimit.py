"""Rate limits per vendor account, shared by every worker that uses the account.

A vendor counts calls per account, not per process, so the limiter's state must be shared by
the whole fleet. :func:`storage_url` picks the storage from the settings
(:attr:`dsar.settings.Settings.saas_rate_limit_url`):

- ``DSAR_RATE_LIMIT_URL`` (``redis://…``, or ``memory://`` to force per-process counting);
- else ``DSAR_BROKER_URL`` when it is ``redis://…`` (the fleet already shares that Redis);
- else in-process memory: right for the embedded default (one process), per process otherwise.

Counting uses the `limits` library's moving window (so no span of the window's length ever
holds more calls than the vendor allows, whatever the vendor's own window alignment). A vendor's
``Retry-After`` is shared too: :meth:`AccountLimiter.pause` makes every worker wait it out.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from limits import RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from connectors.saas.definition import RateLimit
from dsar.settings import Settings

# The process's: one client per storage URL (a connection pool, like an engine), and with
# memory:// storage, which counts per process by definition, the vendors' pauses too.
_LOCK = threading.Lock()
_STORAGES: dict[str, tuple[MovingWindowRateLimiter, Any]] = {}
_LOCAL_PAUSES: dict[str, float] = {}


def storage_url(environ: Mapping[str, str]) -> str:
    """Where limiter state lives, per the settings of ``environ`` (the rules in the module
    docstring)."""
    return Settings.from_env(environ).saas_rate_limit_url


def _limiter(url: str) -> tuple[MovingWindowRateLimiter, Any]:
    with _LOCK:
        if url not in _STORAGES:
            storage = storage_from_string(url)
            redis_client = None
            if url.startswith(("redis://", "rediss://")):
                import redis

                redis_client = redis.Redis.from_url(url)
            _STORAGES[url] = (MovingWindowRateLimiter(storage), redis_client)
        return _STORAGES[url]


class AccountLimiter:
    """Blocks until a call to one vendor account is allowed. ``sleep`` and ``clock`` are
    injectable for tests; :attr:`waited` adds up the seconds spent waiting."""

    def __init__(self, url: str, account: str, limit: RateLimit,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time) -> None:
        self.url, self.account = url, account
        self.item = RateLimitItemPerSecond(limit.calls, max(1, math.ceil(limit.seconds)))
        self._limiter, self._redis = _limiter(url)
        self._sleep, self._clock = sleep, clock
        self.waited = 0.0

    @property
    def _pause_key(self) -> str:
        return f"dsar:saas:pause:{self.account}"

    def _paused_until(self) -> float:
        if self._redis is not None:
            raw = self._redis.get(self._pause_key)
            return float(raw) if raw else 0.0
        return _LOCAL_PAUSES.get(self._pause_key, 0.0)

    def pause(self, seconds: float) -> None:
        """Every caller of this account waits ``seconds`` from now (a vendor's Retry-After)."""
        until = self._clock() + seconds
        if self._redis is not None:
            self._redis.set(self._pause_key, repr(until), px=max(1, int(seconds * 1000)))
        else:
            with _LOCK:
                _LOCAL_PAUSES[self._pause_key] = max(until, _LOCAL_PAUSES.get(self._pause_key, 0))

    def acquire(self) -> None:
        """Wait until both the shared pause and the moving window allow one more call."""
        while True:
            wait = self._paused_until() - self._clock()
            if wait <= 0:
                if self._limiter.hit(self.item, "dsar-saas", self.account):
                    return
                stats = self._limiter.get_window_stats(self.item, "dsar-saas", self.account)
                wait = max(stats.reset_time - self._clock(), 0.01)
            wait = min(wait, 60.0) + random.uniform(0, 0.05)  # jitter spreads the herd
            self.waited += wait
            self._sleep(wait)
