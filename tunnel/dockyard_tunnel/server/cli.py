"""`python -m dockyard_tunnel.server`: run the tunnel server standalone (the operator embeds TunnelServer)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import NoReturn

import structlog

from dockyard_tunnel.auth import TokenHashFile, hash_token
from dockyard_tunnel.config import ServerConfig, WebSocketConfig
from dockyard_tunnel.errors import TunnelError
from dockyard_tunnel.logs import LEVEL_NAMES, configure_json_logs
from dockyard_tunnel.server.app import TunnelServer


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="dockyard-tunnel-server", allow_abbrev=False, description="Accept dockyard-agent connections over WSS."
    )
    p.add_argument("--listen", default="127.0.0.1:8443", help="HOST:PORT to listen on (default 127.0.0.1:8443)")
    p.add_argument("--tls-dir", type=Path, help="directory for a self-signed CA and serving certificate")
    p.add_argument("--cert-file", type=Path, help="serving certificate chain (PEM) from your own CA")
    p.add_argument("--key-file", type=Path, help="key of --cert-file")
    p.add_argument(
        "--server-name",
        action="append",
        dest="server_names",
        help="DNS name or IP agents use to reach this server (repeatable; put into a self-signed cert)",
    )
    p.add_argument("--tokens-file", type=Path, help="file of '<host> sha256:<hex>' lines (see --hash-token)")
    p.add_argument("--insecure", action="store_true", help="serve plain ws:// (no TLS); tests only")
    p.add_argument("--hash-token", action="store_true", help="read a token on stdin, print its sha256:<hex> hash, exit")
    p.add_argument("--heartbeat", type=float, default=20.0, help="WebSocket ping interval in seconds (default 20)")
    p.add_argument("--log-level", choices=LEVEL_NAMES, default="info")
    return p


async def _serve(server: TunnelServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.hash_token:
        token = sys.stdin.readline().strip()
        if not token:
            print("dockyard-tunnel-server: error: no token on stdin", file=sys.stderr)
            return 2
        print(hash_token(token))
        return 0
    configure_json_logs(level=args.log_level)
    host, sep, port = args.listen.rpartition(":")
    try:
        if not sep or not port.isdigit():
            raise TunnelError(f"--listen must be HOST:PORT, got {args.listen!r}")
        if args.tokens_file is None:
            raise TunnelError("--tokens-file is required")
        config = ServerConfig(
            host=host.strip("[]"),
            port=int(port),
            insecure=args.insecure,
            tls_dir=args.tls_dir,
            cert_file=args.cert_file,
            key_file=args.key_file,
            server_names=tuple(args.server_names or ServerConfig.DEFAULT_SERVER_NAMES),
            websocket=WebSocketConfig(heartbeat=args.heartbeat),
        )
        server = TunnelServer(config, authenticator=TokenHashFile(args.tokens_file))
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(server))
    except (TunnelError, ValueError) as e:
        print(f"dockyard-tunnel-server: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        structlog.get_logger("dockyard_tunnel.server").error("server_failed", error=str(e))
        return 1
    return 0
