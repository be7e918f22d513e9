"""Bearer API keys and a per-key rate limit.

Every ``/v1`` route needs ``Authorization: Bearer <key>``: no key or an unknown, malformed
or revoked one gets 401; a read-only key on a route that writes gets 403. Each key may make
``api_rate_per_minute`` requests a minute (a token bucket, refilled continuously); past it,
429 with ``Retry-After``. The bucket lives in the process: N replicas allow N times the rate.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from fastapi import Request

from api.problems import Problem
from core.api_keys import ApiKey, check_key

_BEARER = {"WWW-Authenticate": 'Bearer realm="veille"'}


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    def __init__(self, per_minute: int, *, clock=time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._buckets: dict[int, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key_id: int) -> float:
        """0 when the request may go ahead, else the seconds to wait before the next one."""
        if self.per_minute <= 0:
            return 0.0
        rate = self.per_minute / 60.0
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key_id)
            if bucket is None:
                bucket = self._buckets[key_id] = _Bucket(float(self.per_minute), now)
            bucket.tokens = min(float(self.per_minute), bucket.tokens + (now - bucket.stamp) * rate)
            bucket.stamp = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / rate


def authenticate(request: Request) -> ApiKey:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Problem(
            401,
            "an API key is needed: send 'Authorization: Bearer <key>' "
            "(create one with `veille api-keys create NAME`)",
            headers=_BEARER,
        )
    key = check_key(request.app.state.service.store, secret.strip())
    if key is None:
        raise Problem(401, "this API key is unknown or revoked", headers=_BEARER)
    wait = request.app.state.limiter.take(key.id)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise Problem(
            429,
            f"rate limit of {request.app.state.limiter.per_minute} requests a minute reached "
            f"for key {key.name!r}; retry in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )
    return key


def reader(request: Request) -> ApiKey:
    return authenticate(request)


def writer(request: Request) -> ApiKey:
    key = authenticate(request)
    if key.read_only:
        raise Problem(403, f"API key {key.name!r} is read-only; this route writes")
    return key
