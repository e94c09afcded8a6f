"""Property: under any sequence of add/get/done, FifoQueue behaves like a tiny reference model of client-go's queue."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from dockyard_operator.workqueue import FakeClock
from dockyard_operator.workqueue.fifo import FifoQueue

KEYS = "abcd"
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(KEYS)),
        st.tuples(st.just("get"), st.just("")),
        st.tuples(st.just("done"), st.integers(0, 3)),
    ),
    max_size=60,
)


class Reference:
    """The semantics, spelled out: a line of keys, a dirty set and a processing set."""

    def __init__(self) -> None:
        self.line: list[str] = []
        self.dirty: set[str] = set()
        self.processing: set[str] = set()

    def add(self, key: str) -> None:
        if key in self.dirty:
            return
        self.dirty.add(key)
        if key not in self.processing:
            self.line.append(key)

    def get(self) -> str:
        key = self.line.pop(0)
        self.dirty.discard(key)
        self.processing.add(key)
        return key

    def done(self, key: str) -> None:
        self.processing.discard(key)
        if key in self.dirty:
            self.line.append(key)


async def run(ops: list[tuple[str, object]]) -> None:
    queue: FifoQueue[str] = FifoQueue(clock=FakeClock())
    model = Reference()
    for op, arg in ops:
        if op == "add":
            queue.add(str(arg))
            model.add(str(arg))
        elif op == "get" and model.line:
            assert await queue.get() == model.get()
        elif op == "done" and model.processing:
            key = sorted(model.processing)[int(str(arg)) % len(model.processing)]
            queue.done(key)
            model.done(key)
        # The invariants the whole operator relies on:
        assert list(queue._queue) == model.line  # peeks at the internals: the line itself, in order
        assert len(model.line) == len(set(model.line))  # each key waits at most once
        assert not set(model.line) & model.processing  # never waiting and in process at once
        assert queue.processing == len(model.processing)


@settings(max_examples=300, deadline=None)
@given(ops=operations)
def test_fifo_matches_the_reference_model(ops: list[tuple[str, object]]) -> None:
    """Every get() returns exactly the key the reference model says, and the invariants hold after every step."""
    asyncio.run(run(ops))
