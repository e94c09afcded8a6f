"""Agent authentication: who may connect as which host, and a brake on token guessing.

Tokens are stored only as SHA-256 hashes (a leaked token file does not leak tokens) and compared in constant
time. Failed attempts are rate-limited per source address with a token bucket; the server answers 401 or 429
and never says which part was wrong.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dockyard_tunnel.config import RateLimitConfig, validate_host_name
from dockyard_tunnel.errors import ConfigError

_PREFIX = "sha256:"
# Compared against when the host is unknown, so an unknown host costs the same time as a wrong token.
_DUMMY_HASH = _PREFIX + "0" * 64


def hash_token(token: str) -> str:
    """The stored form of a token: `sha256:<hex>`. Tokens are high-entropy, so a plain hash suffices."""
    return _PREFIX + hashlib.sha256(token.encode()).hexdigest()


class Authenticator(Protocol):
    """Decides whether `token` proves the caller is `host`. Implementations must compare in constant time.

    An implementation that cannot decide yet raises AuthenticatorNotReadyError (the server answers 503).
    """

    async def authenticate(self, host: str, token: str) -> bool: ...


class TokenHashFile:
    """An Authenticator backed by a text file of `<host> sha256:<hex>` lines (`#` starts a comment).

    The file is re-read when its modification time changes, so tokens can be rotated without a restart.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._mtime_ns: int | None = None
        self._hashes: dict[str, str] = {}
        self._reload()

    def _reload(self) -> None:
        try:
            stat = self._path.stat()
            if stat.st_mtime_ns == self._mtime_ns:
                return
            text = self._path.read_text()
        except OSError as e:
            raise ConfigError(f"cannot read token hash file {self._path}: {e}") from e
        self._hashes = parse_token_hashes(text, source=str(self._path))
        self._mtime_ns = stat.st_mtime_ns

    async def authenticate(self, host: str, token: str) -> bool:
        self._reload()
        stored = self._hashes.get(host)
        matched = hmac.compare_digest(hash_token(token), stored or _DUMMY_HASH)
        return matched and stored is not None


def parse_token_hashes(text: str, *, source: str) -> dict[str, str]:
    """Parse `<host> sha256:<hex>` lines; errors name file and line, never echo a value (it may be secret)."""
    hashes: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ConfigError(f"{source}:{number}: expected '<host> sha256:<hex>'")
        host, digest = parts
        validate_host_name(host)
        digest = digest.lower()
        hexpart = digest[len(_PREFIX) :]
        if not digest.startswith(_PREFIX) or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
            raise ConfigError(f"{source}:{number}: the hash must be 'sha256:' and 64 hex digits (not a token)")
        if host in hashes:
            raise ConfigError(f"{source}:{number}: host {host!r} appears twice")
        hashes[host] = digest
    return hashes


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class FailureRateLimiter:
    """A token bucket of failed attempts per source address, bounded to `max_sources` addresses (LRU).

    `allowed(source)` is asked before authenticating; `record_failure(source)` spends one token. A source
    with an empty bucket is refused (429) until it refills, whatever it sends, so guessing cannot outrun the
    refill.
    """

    def __init__(self, config: RateLimitConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._clock = clock  # test seam: a fake clock makes refill deterministic
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _refilled(self, source: str) -> _Bucket | None:
        bucket = self._buckets.get(source)
        if bucket is None:
            return None
        now = self._clock()
        bucket.tokens = min(
            float(self._config.burst), bucket.tokens + (now - bucket.updated) * self._config.refill_per_second
        )
        bucket.updated = now
        self._buckets.move_to_end(source)
        return bucket

    def allowed(self, source: str) -> bool:
        bucket = self._refilled(source)
        return bucket is None or bucket.tokens >= 1.0

    def record_failure(self, source: str) -> None:
        bucket = self._refilled(source)
        if bucket is None:
            bucket = _Bucket(tokens=float(self._config.burst), updated=self._clock())
            self._buckets[source] = bucket
            while len(self._buckets) > self._config.max_sources:
                self._buckets.popitem(last=False)
        bucket.tokens = max(0.0, bucket.tokens - 1.0)

    @property
    def tracked_sources(self) -> int:
        return len(self._buckets)
