"""run_workers: N tasks that take keys from a RateLimitingQueue and hand them to a handler.

The handler has exactly three outcomes (controller-runtime's reconcile contract):

* it raises an Exception: the key is retried after the rate limiter's delay (per-key backoff, overall bucket);
* it returns a number of seconds: the key's backoff is reset and it is handled again after that long
  (periodic re-checks such as health and drift);
* it returns None: done; the key's backoff is reset and it waits for the next add;
* it returns Defer(seconds): handled again after that long *without* resetting its backoff (the handler did not
  try yet, e.g. it waits for the cache to catch up with a write: a failure before must still count).

A key is never handled by two workers at once (the queue guarantees it). done() is always called, including when
the handler is cancelled.
"""

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from dockyard_operator.workqueue.errors import QueueShutDownError
from dockyard_operator.workqueue.ratelimiting import RateLimitingQueue

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Defer:
    """Handle the key again after `seconds`, keeping its failure count (see the module docstring)."""

    seconds: float


Handler = Callable[[K], Awaitable["float | Defer | None"]]
"""Handle one key; return seconds until it should be handled again, Defer, or None."""


async def run_workers(
    queue: RateLimitingQueue[K],
    handler: Handler[K],
    *,
    workers: int,
    logger: Any = None,
) -> None:
    """Run `workers` workers until the queue shuts down and each has finished its key.

    Shut down with queue.shut_down() (in-flight keys finish, waiting keys are dropped) or
    queue.shut_down_with_drain() (waiting keys are handled too). Cancelling run_workers cancels the handlers.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    log = logger if logger is not None else structlog.get_logger("dockyard.workqueue")
    async with asyncio.TaskGroup() as group:
        for index in range(workers):
            group.create_task(_work(queue, handler, log), name=f"workqueue-worker-{index}")


async def _work(queue: RateLimitingQueue[K], handler: Handler[K], log: Any) -> None:
    while True:
        try:
            key = await queue.get()
        except QueueShutDownError:
            return
        try:
            requeue_after = await handler(key)
        except Exception as error:  # any failure of one key must not stop the worker: retry it with backoff
            queue.add_rate_limited(key)
            log.warning(
                "handler failed; retrying with backoff",
                key=str(key),
                error=repr(error),
                requeues=queue.num_requeues(key),
            )
        else:
            if isinstance(requeue_after, Defer):
                queue.add_after(key, requeue_after.seconds)
            else:
                queue.forget(key)
                if requeue_after is not None:
                    queue.add_after(key, requeue_after)
        finally:
            queue.done(key)
