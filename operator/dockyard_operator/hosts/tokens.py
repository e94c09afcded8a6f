"""Per-host agent tokens: kept in a Secret per tunnel DockerHost, checked in memory against hashes only.

The Secret (in the operator's namespace, owned by the DockerHost so it is garbage-collected with it) holds the
token so `dockyard host join` can hand it to an administrator; the tunnel server's authenticator only ever sees
sha256 hashes and compares them in constant time.
"""

from __future__ import annotations

import hmac
import secrets

from dockyard_tunnel.auth import hash_token
from dockyard_tunnel.errors import AuthenticatorNotReadyError

TOKEN_KEY = "token"  # noqa: S105 — the Secret data key, not a credential


def token_secret_name(host: str) -> str:
    return f"dockyard-agent-{host}"[:253]


def new_token() -> str:
    # 256 bits from the OS CSPRNG, URL-safe so it survives files, env vars and headers unchanged.
    return secrets.token_urlsafe(32)


class HostTokenAuthenticator:
    """The tunnel's Authenticator, fed by the DockerHost reconciler."""

    def __init__(self) -> None:
        self._hashes: dict[str, str] = {}
        self._loaded = False

    def mark_loaded(self) -> None:
        """Every existing host's token is loaded: from now on an unknown host or token is a refusal (401)."""
        self._loaded = True

    def set_token(self, host: str, token: str) -> None:
        self._hashes[host] = hash_token(token)

    def forget(self, host: str) -> None:
        self._hashes.pop(host, None)

    async def authenticate(self, host: str, token: str) -> bool:
        if not self._loaded:
            # Right after start-up or a failover: a refusal now would be wrong, and would spend the failure
            # budget of every agent behind the same NAT. The agent retries on 503.
            raise AuthenticatorNotReadyError("host tokens are still loading")
        expected = self._hashes.get(host)
        # Hash the offered token even for unknown hosts, so timing does not reveal which host names exist.
        offered = hash_token(token)
        return expected is not None and hmac.compare_digest(offered, expected)
