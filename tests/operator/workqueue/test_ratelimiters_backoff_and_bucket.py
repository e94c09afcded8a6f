"""Rate limiters: per-key exponential backoff 5 ms doubling to 1000 s, the 10 qps / burst 100 bucket, and max-of."""

from __future__ import annotations

import pytest

from dockyard_operator.workqueue import FakeClock, InvalidQueueConfigError, QueueConfig
from dockyard_operator.workqueue.ratelimiters import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    default_rate_limiter,
)


def test_backoff_doubles_from_5ms_and_caps_at_1000s() -> None:
    """5 ms, 10 ms, 20 ms, ... up to 1000 s, then 1000 s forever (no overflow after many failures)."""
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(
        base_delay=0.005, max_delay=1000
    )
    delays = [limiter.when("a") for _ in range(2000)]
    assert delays[:5] == pytest.approx([0.005, 0.01, 0.02, 0.04, 0.08])
    assert delays[17] == pytest.approx(0.005 * 2**17)  # 655.36 s, the last below the cap
    assert delays[18:] == [1000.0] * (2000 - 18)
    assert limiter.num_requeues("a") == 2000


def test_backoff_is_per_key_and_forget_resets_it() -> None:
    """Another key starts from 5 ms; forget() starts a key over."""
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(
        base_delay=0.005, max_delay=1000
    )
    for _ in range(3):
        limiter.when("a")
    assert limiter.when("b") == pytest.approx(0.005)
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == pytest.approx(0.005)


def test_bucket_allows_a_burst_then_qps() -> None:
    """100 immediate retries, then one every 100 ms; tokens come back with (fake) time."""
    clock = FakeClock()
    bucket: BucketRateLimiter[str] = BucketRateLimiter(qps=10, burst=100, clock=clock)
    assert [bucket.when(f"k{i}") for i in range(100)] == [0.0] * 100
    assert bucket.when("x") == pytest.approx(0.1)
    assert bucket.when("y") == pytest.approx(0.2)
    clock.advance(0.3)  # refills 3 tokens: the two borrowed ones and one more
    assert bucket.when("z") == pytest.approx(0.0, abs=1e-9)
    assert bucket.when("w") == pytest.approx(0.1)
    clock.advance(1000)
    assert [bucket.when("v") for _ in range(100)] == [0.0] * 100  # refills up to burst, not beyond
    assert bucket.when("v") > 0


def test_default_limiter_takes_the_longer_of_backoff_and_bucket() -> None:
    """With the bucket full, a key's delay is its backoff; with the bucket empty, the bucket's delay dominates."""
    clock = FakeClock()
    limiter: MaxOfRateLimiter[str] = default_rate_limiter(config=QueueConfig(), clock=clock)
    assert limiter.when("a") == pytest.approx(0.005)
    assert limiter.when("a") == pytest.approx(0.01)
    for i in range(98):
        limiter.when(f"other-{i}")
    # 100 tokens used; the next failure of a new key waits for the bucket (0.1 s), not its 5 ms backoff.
    assert limiter.when("b") == pytest.approx(0.1)
    assert limiter.num_requeues("a") == 2
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0


@pytest.mark.parametrize(
    "kwargs",
    [{"base_delay": 0}, {"max_delay": -1}, {"qps": float("inf")}, {"burst": 0}, {"base_delay": 2, "max_delay": 1}],
)
def test_config_rejects_values_out_of_range(kwargs: dict[str, float]) -> None:
    """A bad QueueConfig fails at construction with the field's name."""
    with pytest.raises(InvalidQueueConfigError, match=next(iter(kwargs))):
        QueueConfig(**kwargs)  # type: ignore[arg-type]


def test_config_defaults_are_client_go_defaults() -> None:
    """5 ms, 1000 s, 10 qps, burst 100."""
    config = QueueConfig()
    assert (config.base_delay, config.max_delay, config.qps, config.burst) == (0.005, 1000.0, 10.0, 100)
