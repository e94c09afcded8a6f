"""Token hash files, constant-time checks and the failed-attempt rate limiter."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dockyard_tunnel.auth import FailureRateLimiter, TokenHashFile, hash_token, parse_token_hashes
from dockyard_tunnel.config import RateLimitConfig
from dockyard_tunnel.errors import ConfigError
from dockyard_tunnel.server.app import rate_limit_key


async def test_file_authenticator_accepts_only_the_right_pair(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"# comment\nh1 {hash_token('t-one')}\n\nh2 {hash_token('t-two')}  # trailing\n")
    auth = TokenHashFile(path)
    assert await auth.authenticate("h1", "t-one")
    assert await auth.authenticate("h2", "t-two")
    assert not await auth.authenticate("h1", "t-two")
    assert not await auth.authenticate("h3", "t-one")
    assert not await auth.authenticate("h1", "")
    assert "t-one" not in path.read_text()  # only hashes are stored


async def test_file_authenticator_reloads_on_change(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"h1 {hash_token('old')}\n")
    auth = TokenHashFile(path)
    assert await auth.authenticate("h1", "old")
    path.write_text(f"h1 {hash_token('new')}\n")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert await auth.authenticate("h1", "new")
    assert not await auth.authenticate("h1", "old")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("h1\n", "expected '<host> sha256:<hex>'"),
        ("h1 plain-token\n", "not a token"),
        ("H1 sha256:" + "0" * 64 + "\n", "invalid host name"),
        (f"h1 {'sha256:' + '0' * 64}\nh1 {'sha256:' + '1' * 64}\n", "appears twice"),
    ],
)
def test_bad_token_files_name_the_line_and_never_echo_values(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_token_hashes(text, source="tokens")
    assert "plain-token" not in str(info.value)


def test_missing_token_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read token hash file"):
        TokenHashFile(tmp_path / "absent")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_blocks_after_burst_and_refills() -> None:
    clock = FakeClock()
    limiter = FailureRateLimiter(RateLimitConfig(burst=3, refill_per_second=0.5), clock=clock)
    for _ in range(3):
        assert limiter.allowed("10.0.0.1")
        limiter.record_failure("10.0.0.1")
    assert not limiter.allowed("10.0.0.1")
    assert limiter.allowed("10.0.0.2")  # per source
    clock.now += 1.0  # half a token
    assert not limiter.allowed("10.0.0.1")
    clock.now += 1.0  # one token
    assert limiter.allowed("10.0.0.1")
    limiter.record_failure("10.0.0.1")
    assert not limiter.allowed("10.0.0.1")


def test_rate_limiter_memory_is_bounded() -> None:
    limiter = FailureRateLimiter(RateLimitConfig(burst=1, max_sources=100), clock=FakeClock())
    for i in range(1000):
        limiter.record_failure(f"10.0.{i // 256}.{i % 256}")
    assert limiter.tracked_sources == 100
    assert not limiter.allowed("10.0.3.231")  # the most recent source is still tracked


@pytest.mark.parametrize("kwargs", [{"burst": 0}, {"refill_per_second": 0}, {"max_sources": 0}])
def test_rate_limit_config_is_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        RateLimitConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("remote", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        (None, "unknown"),
    ],
)
def test_rate_limit_key_groups_ipv6_by_64(remote: str | None, key: str) -> None:
    assert rate_limit_key(remote) == key
