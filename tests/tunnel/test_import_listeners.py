"""The agent's Service-import listeners, against a real agent process and the dev dockerd: it binds only gateway
addresses of its Docker networks, whatever the server sends, and answers what it did."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import pytest

from dockyard_tunnel.server.streams import open_target_stream
from dockyard_tunnel.stream_headers import ImportsTarget
from dockyard_tunnel.testing import HOST, TunnelRig

pytestmark = [pytest.mark.docker]


async def send(rig: TunnelRig, listeners: list[dict[str, Any]]) -> dict[str, Any]:
    stream = await open_target_stream(rig.server.registry, host=HOST, target=ImportsTarget())
    await stream.write(json.dumps({"listeners": listeners}).encode())
    await stream.send_eof()
    async with asyncio.timeout(10):
        answer: dict[str, Any] = json.loads(await stream.read(65536))
    await stream.aclose()
    return answer


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


async def test_only_gateway_addresses_are_bound_and_the_set_is_replaced_whole(rig: TunnelRig, devenv: Any) -> None:
    await rig.start_agent()
    await rig.wait_connected()
    gateway = devenv.bridge_gateway
    port = free_port(gateway)
    answer = await send(
        rig,
        [
            {"address": gateway, "port": port, "import": "shop/pg:5432"},
            {"address": "127.0.0.1", "port": port, "import": "shop/pg:5432"},
            {"address": "0.0.0.0", "port": port, "import": "shop/pg:5432"},
        ],
    )
    assert answer["listening"] == [f"{gateway}:{port}"]
    assert len(answer["errors"]) == 2
    assert f"0.0.0.0:{port}" in answer["errors"]
    assert all("not the gateway" in why for why in answer["errors"].values())
    _, writer = await asyncio.open_connection(gateway, port)  # it listens
    writer.close()

    assert (await send(rig, []))["listening"] == [], "the set is replaced whole: what is not sent is closed"
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(gateway, port)


async def test_a_bad_document_is_answered_not_crashed_on(rig: TunnelRig) -> None:
    await rig.start_agent()
    await rig.wait_connected()
    answer = await send(rig, [{"address": "10.0.0.1", "port": 80, "import": "not-a-target"}])
    assert answer["listening"] == []
    assert "unreadable imports document" in answer["errors"]["*"]
