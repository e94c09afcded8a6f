"""Right after an operator (re)starts, the tunnel answers 503 "retry" until the host tokens are loaded.

Before: the tunnel started before the tokens were loaded, so every agent reconnecting after a failover got 401,
and the per-source bucket then answered 429 to a whole fleet behind one NAT. A 503 is not a failed attempt.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp

from dockyard_operator.hosts.tokens import HostTokenAuthenticator
from dockyard_tunnel.config import ServerConfig
from dockyard_tunnel.server.app import TunnelServer

TOKEN = "t0ken-for-edge"


async def _status(url: str, token: str, host: str = "edge") -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}", "Dockyard-Host": host}
    async with aiohttp.ClientSession() as http:
        try:
            async with http.ws_connect(url + "/v1/connect", headers=headers) as ws:
                await ws.close()
                return 101, ""
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status, str((exc.headers or {}).get("Retry-After", ""))  # type: ignore[call-overload]


async def test_agents_are_told_to_retry_until_tokens_are_loaded_and_it_costs_them_nothing(tmp_path: Path) -> None:
    authenticator = HostTokenAuthenticator()
    server = TunnelServer(ServerConfig(port=0, insecure=True, tls_dir=tmp_path), authenticator=authenticator)
    await server.start()
    try:
        for _ in range(50):  # a fleet behind one NAT, all reconnecting at once
            assert await _status(server.url, TOKEN) == (503, "5")
        assert server.rate_limiter.tracked_sources == 0, "a 503 is not a failed attempt"
        authenticator.set_token("edge", TOKEN)
        authenticator.mark_loaded()
        assert (await _status(server.url, TOKEN))[0] == 101
        assert (await _status(server.url, "wrong"))[0] == 401  # loaded: a wrong token is a refusal again
        assert server.rate_limiter.tracked_sources == 1
    finally:
        await server.stop()
