"""The data plane on real sockets and a real mux session pair over loopback: spreading, retry on a refused dial,
readiness changes under running listeners, half-close, removal. The far side of the mux is a small stand-in for
the agent's `tcp` relay (the real agent is exercised end to end in tests/e2e/test_services.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from dockyard_mux import Session, Stream
from dockyard_mux.testing import open_pair
from dockyard_operator.metrics import Metrics
from dockyard_operator.services.backends import Backend
from dockyard_operator.services.dataplane import DataPlane, DataPlaneConfig
from dockyard_tunnel.piping import splice
from dockyard_tunnel.server.streams import dial_on_session
from dockyard_tunnel.stream_headers import TCP_CONNECTED, TcpTarget, read_header


@dataclass
class Rig:
    plane: DataPlane
    metrics: Metrics
    servers: dict[str, int]  # backend name -> port of its echo server (answers "<name>:" + what it read)
    refused: set[int] = field(default_factory=set)


async def _relay(stream: Stream, refused: set[int]) -> None:
    target = await read_header(stream)
    assert isinstance(target, TcpTarget)
    if target.port in refused:
        stream.reset()
        return
    reader, writer = await asyncio.open_connection(str(target.ip), target.port)
    await stream.write(TCP_CONNECTED)
    with contextlib.suppress(Exception):
        await splice(stream, reader, writer)
    writer.close()
    with contextlib.suppress(Exception):
        await stream.aclose()


async def _agent(session: Session, refused: set[int]) -> None:
    tasks = set()
    while True:
        stream = await session.accept_stream()
        task = asyncio.create_task(_relay(stream, refused))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


async def _echo(name: str) -> asyncio.Server:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()  # until the client's half-close
        writer.write(f"{name}:".encode() + data)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    pair = await open_pair()
    refused: set[int] = set()
    agent = asyncio.create_task(_agent(pair.client, refused))
    servers = {name: await _echo(name) for name in ("a", "b")}

    async def dial(host: str, ip: str, port: int, container: str | None) -> Stream:
        return await dial_on_session(pair.server, ip=ip, port=port, timeout=5, what=host, container=container)

    metrics = Metrics()
    plane = DataPlane(DataPlaneConfig(listen_host="127.0.0.1"), dial=dial, metrics=metrics)
    ports = {name: s.sockets[0].getsockname()[1] for name, s in servers.items()}
    try:
        yield Rig(plane=plane, metrics=metrics, servers=ports, refused=refused)
    finally:
        await plane.close()
        agent.cancel()
        for server in servers.values():
            server.close()
        await pair.client.close()
        await pair.server.close()


def backend(rig: Rig, name: str, *, ready: bool = True) -> Backend:
    return Backend(container=name, host="edge", ip="127.0.0.1", ready=ready, ports={"web": rig.servers[name]})


async def ask(port: int, text: bytes = b"hello") -> bytes:
    async with asyncio.timeout(5):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(text)
        writer.write_eof()  # half-close: the answer comes after it
        data = await reader.read()
        writer.close()
        return data


async def test_connections_spread_over_ready_backends_and_half_close_crosses(rig: Rig) -> None:
    ports = await rig.plane.update(
        "ns/web", ports=["web"], backends=[backend(rig, "a"), backend(rig, "b")], affinity_timeout=None
    )
    answers = await asyncio.gather(*(ask(ports["web"]) for _ in range(40)))
    assert {a.split(b":")[0] for a in answers} == {b"a", b"b"}
    assert all(a.endswith(b":hello") for a in answers)
    opened = rig.metrics.service_connections.labels("ns/web", "a", "opened")._value.get()
    assert opened > 0


async def test_a_refused_dial_is_retried_once_on_another_backend(rig: Rig) -> None:
    rig.refused.add(rig.servers["a"])
    ports = await rig.plane.update(
        "ns/web", ports=["web"], backends=[backend(rig, "a"), backend(rig, "b")], affinity_timeout=None
    )
    answers = await asyncio.gather(*(ask(ports["web"]) for _ in range(20)))
    assert set(answers) == {b"b:hello"}, "every connection reached b, also those that tried a first"
    assert rig.metrics.service_connections.labels("ns/web", "a", "failed")._value.get() > 0


async def test_no_ready_backend_closes_the_connection_without_an_answer(rig: Rig) -> None:
    ports = await rig.plane.update(
        "ns/web", ports=["web"], backends=[backend(rig, "a", ready=False)], affinity_timeout=None
    )
    with contextlib.suppress(ConnectionResetError):
        assert await ask(ports["web"]) == b""


async def test_turning_unready_stops_new_connections_but_lets_open_ones_finish(rig: Rig) -> None:
    ports = await rig.plane.update("ns/web", ports=["web"], backends=[backend(rig, "a")], affinity_timeout=None)
    reader, writer = await asyncio.open_connection("127.0.0.1", ports["web"])
    writer.write(b"before")
    await asyncio.sleep(0.1)  # the connection is spliced to a
    same = await rig.plane.update(
        "ns/web", ports=["web"], backends=[backend(rig, "a", ready=False), backend(rig, "b")], affinity_timeout=None
    )
    assert same == ports, "the listener stays; only the backends change"
    assert set(await asyncio.gather(*(ask(ports["web"]) for _ in range(10)))) == {b"b:hello"}
    writer.write(b" and after")
    writer.write_eof()
    async with asyncio.timeout(5):
        assert await reader.read() == b"a:before and after", "the open connection finished on a"
    writer.close()


async def test_client_ip_affinity_keeps_a_client_on_one_backend(rig: Rig) -> None:
    ports = await rig.plane.update(
        "ns/web", ports=["web"], backends=[backend(rig, "a"), backend(rig, "b")], affinity_timeout=60
    )
    answers = {a.split(b":")[0] for a in [await ask(ports["web"]) for _ in range(20)]}
    assert len(answers) == 1


async def test_removing_a_service_closes_its_listener_and_its_connections(rig: Rig) -> None:
    ports = await rig.plane.update("ns/web", ports=["web"], backends=[backend(rig, "a")], affinity_timeout=None)
    reader, writer = await asyncio.open_connection("127.0.0.1", ports["web"])
    writer.write(b"x")
    await asyncio.sleep(0.1)
    await rig.plane.remove("ns/web")
    async with asyncio.timeout(5):
        with contextlib.suppress(ConnectionResetError):
            assert await reader.read() == b""
    writer.close()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", ports["web"])
    assert rig.plane.keys() == []


async def test_a_backend_that_refuses_is_ejected_so_new_connections_go_elsewhere(rig: Rig) -> None:
    rig.refused.add(rig.servers["a"])
    ports = await rig.plane.update(
        "ns/web", ports=["web"], backends=[backend(rig, "a"), backend(rig, "b")], affinity_timeout=None
    )
    answers = [await ask(ports["web"]) for _ in range(20)]
    assert set(answers) == {b"b:hello"}
    failed = rig.metrics.service_connections.labels("ns/web", "a", "failed")._value.get()
    assert failed == 1, "after its first refusal, a is not tried again while ejected"
