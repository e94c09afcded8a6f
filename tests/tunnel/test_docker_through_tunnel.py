"""The Docker API of the real private dockerd, driven with aiodocker through server -> WSS -> agent process."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import signal
import tarfile
import time
import uuid
from collections.abc import AsyncGenerator
from typing import Any, cast

import aiodocker
import aiohttp
import pytest

from dockyard_tunnel.dockerapi.local import MANAGED_LABEL
from dockyard_tunnel.testing import HOST, TOKEN, AgentProcess, TunnelRig

pytestmark = [pytest.mark.docker]

ARCHIVE_SIZE = 64 * 1024 * 1024


def _tar_with_file(name: str, payload: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def _half_close_stdin(exec_stream: Any) -> None:
    # aiodocker has no public half-close for exec stdin; its own close() does this write_eof and then also
    # closes the response, which would lose the output.
    transport = exec_stream._resp.connection.transport
    assert transport is not None
    transport.write_eof()


async def _assert_no_open_streams(rig: TunnelRig, agent: AgentProcess) -> None:
    # Streams close asynchronously after the last response byte; give the FIN/close exchange a moment.
    for _ in range(100):
        if rig.server.registry.stats(HOST).open_streams == 0 and rig.bridges.open_connections == 0:
            break
        await asyncio.sleep(0.05)
    assert rig.server.registry.stats(HOST).open_streams == 0
    assert rig.bridges.open_connections == 0
    for _ in range(20):  # the agent's relay tasks finish just after their streams close
        status = await agent.status()
        if status["open_streams"] == 0 and status["relaying"] == 0:
            break
        await asyncio.sleep(0.1)
    assert status["open_streams"] == 0, status
    assert status["relaying"] == 0, status


async def test_docker_api_through_the_tunnel(rig: TunnelRig, devenv: Any) -> None:
    agent = await rig.start_agent()
    await rig.wait_connected()
    info = rig.server.registry.info(HOST)
    assert info is not None
    assert info.hello.docker_version.startswith("20.10")

    docker = await rig.bridges.docker(HOST)
    name = f"tunnel-e2e-{uuid.uuid4().hex[:8]}"
    container = None
    try:
        assert isinstance(await docker.containers.list(all=True), list)
        events = docker.events.subscribe(filters={"type": ["container"], "event": ["start", "die"]})  # type: ignore[no-untyped-call]
        container = await docker.containers.create(
            {
                "Image": devenv.test_image,
                "Cmd": ["sh", "-c", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.05; done"],
                "Labels": {MANAGED_LABEL: "true"},
            },
            name=name,
        )
        await container.start()
        shown = await container.show()
        assert shown["State"]["Running"] is True
        assert shown["Name"] == f"/{name}"

        # An events subscription sees our start.
        async with asyncio.timeout(10):
            while True:
                event = await events.get()
                assert event is not None
                if event["Actor"]["Attributes"].get("name") == name and event["Action"] == "start":
                    break

        # Follow logs, stop after five lines: the stream is reset and nothing leaks (checked at the end).
        lines = []
        async with contextlib.aclosing(cast(AsyncGenerator[str], container.log(stdout=True, follow=True))) as log_lines:
            async for line in log_lines:
                lines.append(line)
                if len(lines) == 5:
                    break
        assert lines[0].startswith("line 0")

        # Exec with stdin: `cat` ends only when stdin's EOF crosses the tunnel.
        execution = await container.exec(["sh", "-c", "cat; echo EXIT-AFTER-EOF"], stdin=True, tty=False)
        async with execution.start(detach=False) as exec_stream:
            await exec_stream.write_in(b"hello-through-tunnel\n")
            _half_close_stdin(exec_stream)
            output = b""
            async with asyncio.timeout(10):
                while (message := await exec_stream.read_out()) is not None:
                    output += message.data
        assert output == b"hello-through-tunnel\nEXIT-AFTER-EOF\n"
        assert (await execution.inspect())["ExitCode"] == 0

        # Put and get a 64 MiB archive.
        payload = os.urandom(ARCHIVE_SIZE)
        await container.put_archive("/tmp", io.BytesIO(_tar_with_file("big.bin", payload)))  # type: ignore[no-untyped-call]
        tar = await container.get_archive("/tmp/big.bin")
        member = tar.extractfile("big.bin")
        assert member is not None
        assert hashlib.sha256(member.read()).digest() == hashlib.sha256(payload).digest()
        tar.close()

        # 50 concurrent requests.
        results = await asyncio.gather(*(container.show() for _ in range(50)))
        assert {r["Id"] for r in results} == {container.id}

        await container.stop(t=1)
        async with asyncio.timeout(10):
            while True:
                event = await events.get()
                assert event is not None
                if event["Actor"]["Attributes"].get("name") == name and event["Action"] == "die":
                    break
        await docker.events.stop()  # type: ignore[no-untyped-call]
        await container.delete()
        container = None
        with pytest.raises(aiodocker.DockerError) as gone:
            await docker.containers.get(name)
        assert gone.value.status == 404
    finally:
        if container is not None:
            with contextlib.suppress(aiodocker.DockerError):
                await container.delete(force=True)
        await docker.close()
    await _assert_no_open_streams(rig, agent)
    assert TOKEN not in agent.log_path.read_text()  # debug-level log of a whole session: no secret in it


async def test_disconnected_host_fails_fast_and_recovers_without_restart(rig: TunnelRig, devenv: Any) -> None:
    docker = await rig.bridges.docker(HOST)
    try:
        async with asyncio.timeout(10):
            with pytest.raises(aiodocker.DockerError) as offline:
                await docker.version()
        assert offline.value.status == 502
        assert HOST in str(offline.value)
        assert "not connected" in str(offline.value)

        agent = await rig.start_agent()
        await rig.wait_connected()
        assert "Version" in await docker.version()

        # kill -9 during requests: callers get an error at once (about 50 ms here), not when the stop's 30 s run
        # out. The bound asserted is 10 s, far below those 30 s: a loaded machine must not fail the test, and a
        # hang until the timeout still would. A request still waiting for its response gets DockerError 502
        # naming the host; one whose response is streaming sees the body cut.
        stubborn = await docker.containers.create(
            {"Image": devenv.test_image, "Cmd": ["sh", "-c", "trap '' TERM; sleep 60"]}
        )
        try:
            await stubborn.start()
            stopping = asyncio.create_task(stubborn.stop(t=30))  # no response until the timeout ends
            streaming = asyncio.create_task(docker._query_json("events", params={"filters": '{"type":["network"]}'}))
            await asyncio.sleep(0.5)
            assert not stopping.done()
            assert not streaming.done()
            killed = time.monotonic()
            await agent.stop()  # SIGKILL
            async with asyncio.timeout(10):
                with pytest.raises(aiodocker.DockerError) as lost:
                    await stopping
                with pytest.raises((aiodocker.DockerError, aiohttp.ClientError)):
                    await streaming
            print(f"callers got their errors {time.monotonic() - killed:.3f} s after kill -9")
            assert lost.value.status == 502
            assert f"Docker host {HOST!r}: tunnel connection lost" in str(lost.value)

            # Restart the agent: the same client works again without restarting the server.
            restarted = time.monotonic()
            await rig.start_agent()
            await rig.wait_connected(timeout=10)
            assert "Version" in await docker.version()
            print(f"requests worked again {time.monotonic() - restarted:.2f} s after the agent process started")
        finally:
            with contextlib.suppress(aiodocker.DockerError):
                await stubborn.delete(force=True)
    finally:
        await docker.close()


async def test_server_restart_agent_reconnects_by_itself(rig: TunnelRig) -> None:
    agent = await rig.start_agent()
    await rig.wait_connected()
    await rig.restart_server()  # same port and TLS directory: same CA, so the agent's pin still matches
    await agent.wait_for_log(lambda r: r.get("event") == "disconnected")
    await rig.wait_connected(timeout=35)
    docker = await rig.bridges.docker(HOST)
    try:
        assert "Version" in await docker.version()
    finally:
        await docker.close()


async def test_sigterm_lets_in_flight_requests_finish_and_exits_0(
    rig: TunnelRig, devenv: Any, docker: aiodocker.Docker
) -> None:
    agent = await rig.start_agent()
    await rig.wait_connected()
    tunneled = await rig.bridges.docker(HOST)
    container = await tunneled.containers.create({"Image": devenv.test_image, "Cmd": ["sleep", "1.5"]})
    try:
        await container.start()
        waiting = asyncio.create_task(container.wait())
        await asyncio.sleep(0.3)
        assert await agent.stop(signal.SIGTERM) == 0, agent.log_path.read_text()
        result = await waiting
        assert result["StatusCode"] == 0
        records = agent.records()
        assert any(r.get("event") == "draining" for r in records)
        assert records[-1]["event"] == "stopped"
    finally:
        with contextlib.suppress(aiodocker.DockerError):
            # On the dockerd itself: the agent that carried the create has stopped.
            await docker.containers.container(container.id).delete(force=True)
        await tunneled.close()
