"""Reconnect delays: exponential bounds, full jitter, reset after a stable connection."""

from __future__ import annotations

import random

import pytest

from dockyard_tunnel.agent.backoff import Backoff
from dockyard_tunnel.config import BackoffConfig
from dockyard_tunnel.errors import ConfigError


def test_bounds_grow_to_the_cap_and_delays_stay_inside() -> None:
    backoff = Backoff(BackoffConfig(), rng=random.Random(7))
    bounds = []
    for _ in range(12):
        bound = backoff.bound()
        bounds.append(bound)
        delay = backoff.next_delay()
        assert 0.0 <= delay <= bound
    assert bounds[:7] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert bounds[-1] == 30.0


def test_first_retry_is_within_half_a_second_and_jittered() -> None:
    delays = [Backoff(BackoffConfig(), rng=random.Random(seed)).next_delay() for seed in range(200)]
    assert max(delays) <= 0.5
    assert len({round(d, 6) for d in delays}) > 150  # full jitter, not a fixed value


def test_stable_connection_resets_and_a_short_one_does_not() -> None:
    backoff = Backoff(BackoffConfig(stable_after=30.0), rng=random.Random(1))
    for _ in range(5):
        backoff.next_delay()
    backoff.connection_ended(lived=2.0)
    assert backoff.bound() == 16.0
    backoff.connection_ended(lived=31.0)
    assert backoff.bound() == 0.5


def test_no_overflow_after_very_many_failures() -> None:
    backoff = Backoff(BackoffConfig(), rng=random.Random(2))
    for _ in range(10_000):
        assert backoff.next_delay() <= 30.0


@pytest.mark.parametrize("kwargs", [{"initial": 0}, {"cap": 0.1}, {"multiplier": 0.5}, {"stable_after": 0}])
def test_config_is_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        BackoffConfig(**kwargs)
