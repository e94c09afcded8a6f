"""Test and benchmark support (not used by the library itself).

``serve_commands`` is the Python twin of hack/yamux-peer's server: the opener of each stream writes one
command line and the server acts on it (see hack/yamux-peer/main.go for the list). Interop tests drive the Go
client against it, and our Python client against the Go server, with the same commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from dockyard_mux.aio.sessions import Session
from dockyard_mux.aio.streams import Stream
from dockyard_mux.aio.transports import SocketTransport, StreamTransport, Transport
from dockyard_mux.proto.config import Config
from dockyard_mux.proto.connection import Connection
from dockyard_mux.proto.errors import MuxError, SessionClosedError
from dockyard_mux.proto.events import Event
from dockyard_mux.proto.frames import FrameType, encode_header
from dockyard_mux.proto.state import StreamState
from dockyard_mux.proto.windows import ReceiveWindow

MAX_COMMAND_LINE = 256
_PATTERN = random.Random(1).randbytes(1 << 20)  # noqa: S311 - test data, not a secret


def pattern_chunks(n: int, *, chunk: int = 1 << 20) -> list[bytes]:
    """``n`` bytes of test data as a few large chunks (reused buffers: cheap to produce at any size)."""
    chunks: list[bytes] = []
    while n > 0:
        piece = _PATTERN[: min(n, chunk, len(_PATTERN))]
        chunks.append(piece)
        n -= len(piece)
    return chunks


async def read_line(stream: Stream) -> str:
    """One newline-terminated ASCII line, read byte by byte so nothing after it is consumed."""
    line = bytearray()
    while len(line) < MAX_COMMAND_LINE:
        byte = await stream.read(1)
        if not byte:
            raise asyncio.IncompleteReadError(bytes(line), None)
        if byte == b"\n":
            return line.decode("ascii")
        line += byte
    raise ValueError("command line too long")


async def drain_to_hash(stream: Stream) -> tuple[str, int]:
    """Read to EOF; return (sha256 hex, byte count)."""
    digest = hashlib.sha256()
    count = 0
    while True:
        data = await stream.read(1 << 20)
        if not data:
            return digest.hexdigest(), count
        digest.update(data)
        count += len(data)


def frame(frame_type: int, flags: int, stream_id: int, length: int, payload: bytes = b"") -> bytes:
    """One encoded yamux frame (header plus payload), for feeding the protocol core."""
    return encode_header(FrameType(frame_type), flags, stream_id, length) + payload


def handshake(
    *, client_config: Config | None = None, server_config: Config | None = None
) -> tuple[Connection, Connection, int]:
    """A client and server Connection with one established stream opened by the client."""
    client = Connection(client=True, config=client_config)
    server = Connection(client=False, config=server_config)
    stream_id = client.open_stream()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    return client, server, stream_id


def exchange(a: Connection, b: Connection) -> tuple[list[Event], list[Event]]:
    """Deliver everything queued both ways once; return (events at b, events at a)."""
    at_b = b.receive_data(a.data_to_send())
    at_a = a.receive_data(b.data_to_send())
    return at_b, at_a


def check_receive_accounting(conn: Connection) -> None:
    """Raise AssertionError unless the receive-side accounting of ``conn`` holds (mux/SPEC.md, section 7).

    Per stream: available + buffered + unacked == size and 0 <= initial <= available; a stream the peer may still
    send on whose bytes were all read has credit above half of min_stream_window (either side can always move).
    Per session: committed_window is the sum of what the streams charge; credit beyond each stream's first
    256 KiB fits max_session_buffer; so everything at risk fits max_session_buffer + num_streams x 256 KiB; and
    num_streams <= max_streams.
    """
    config = conn.config
    window = config.initial_stream_window
    charged = beyond_initial = 0
    for stream_id in conn.stream_ids:
        recv = conn.receive_window(stream_id)
        state = conn.stream_state(stream_id)
        if recv is None or state is None:
            raise AssertionError(f"stream {stream_id} is listed but not tracked")
        if recv.available + recv.buffered + recv.unacked != recv.size or min(recv.available, recv.buffered) < 0:
            raise AssertionError(f"stream {stream_id}: inconsistent window {_window_repr(recv)}")
        if not 0 <= recv.initial <= recv.available:
            raise AssertionError(f"stream {stream_id}: initial credit out of range {_window_repr(recv)}")
        peer_sending = state not in (StreamState.REMOTE_CLOSED, StreamState.CLOSED)
        if peer_sending and recv.buffered == 0 and recv.available <= config.min_stream_window // 2:
            raise AssertionError(f"stream {stream_id}: everything read, yet no credit {_window_repr(recv)}")
        if not peer_sending and recv.available:
            raise AssertionError(f"stream {stream_id}: the peer sent FIN but keeps credit {_window_repr(recv)}")
        charged += recv.committed
        beyond_initial += max(0, recv.available + recv.buffered - window)
    if charged != conn.committed_window:
        raise AssertionError(f"committed_window {conn.committed_window} != {charged} charged by the streams")
    if beyond_initial > config.max_session_buffer:
        raise AssertionError(f"{beyond_initial} bytes beyond initial windows exceed max_session_buffer")
    if conn.bytes_at_risk > config.max_session_buffer + conn.num_streams * window:
        raise AssertionError(f"{conn.bytes_at_risk} bytes at risk exceed the bound")
    if conn.num_streams > config.max_streams:
        raise AssertionError(f"{conn.num_streams} streams exceed max_streams {config.max_streams}")


def _window_repr(recv: ReceiveWindow) -> str:
    return (
        f"size={recv.size} available={recv.available} buffered={recv.buffered} unacked={recv.unacked} "
        f"initial={recv.initial}"
    )


_STREAM_LIMIT = 1024 * 1024


@dataclass
class SessionPair:
    client: Session
    server: Session


async def open_pair(
    *, client_config: Config | None = None, server_config: Config | None = None, transport: str = "stream"
) -> SessionPair:
    """Two started Sessions connected over real TCP loopback.

    ``transport`` picks the adapter on both ends: "stream" (StreamTransport over asyncio streams, pull) or
    "socket" (SocketTransport, an asyncio Protocol, push).
    """
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[Session] = loop.create_future()

    async def start_server_session(carrier: Transport) -> None:
        session = Session(carrier, client=False, config=server_config)
        await session.start()
        accepted.set_result(session)

    if transport == "stream":

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await start_server_session(StreamTransport(reader, writer))

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0, limit=_STREAM_LIMIT)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=_STREAM_LIMIT)
        client_transport: Transport = StreamTransport(reader, writer)
    elif transport == "socket":
        starting: set[asyncio.Task[None]] = set()

        def on_socket(carrier: SocketTransport) -> None:
            task = loop.create_task(start_server_session(carrier))
            starting.add(task)
            task.add_done_callback(starting.discard)

        server = await loop.create_server(lambda: SocketTransport(on_connect=on_socket), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client_transport = await SocketTransport.connect_tcp("127.0.0.1", port)
    else:
        raise ValueError(f"unknown transport {transport!r}")
    client = Session(client_transport, client=True, config=client_config)
    await client.start()
    server_session = await accepted
    server.close()  # stop listening; the accepted connection lives on
    return SessionPair(client, server_session)


class CommandServer:
    """Serves yamux-peer's stream commands on one Session until it ends."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.release = asyncio.Event()
        self.last_reset = ""
        self.max_buffered = 0
        self.peak_streams = 0  # most streams the session had at once, sampled as each is accepted
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        try:
            while True:
                try:
                    stream = await self.session.accept_stream()
                except SessionClosedError:
                    break
                self.peak_streams = max(self.peak_streams, self.session.num_streams)
                task = asyncio.get_running_loop().create_task(self._handle(stream))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            # Go away: no new streams, but the open ones finish.
            await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, stream: Stream) -> None:
        with contextlib.suppress(MuxError, asyncio.IncompleteReadError, ValueError):
            async with stream:
                await self._command(stream, (await read_line(stream)).split())

    async def _echo(self, stream: Stream) -> None:
        while data := await stream.read(1 << 20):
            await stream.write(data)

    async def _command(self, stream: Stream, words: list[str]) -> None:
        match words:
            case ["echo"]:
                await self._echo(stream)
            case ["sink"]:
                hexdigest, count = await drain_to_hash(stream)
                await stream.write(f"{hexdigest} {count}\n".encode())
            case ["discard"]:
                count = 0
                while data := await stream.read(1 << 20):
                    count += len(data)
                await stream.write(f"{count}\n".encode())
            case ["source", size]:
                digest = hashlib.sha256()
                for chunk in pattern_chunks(int(size)):
                    digest.update(chunk)
                    await stream.write(chunk)
                await stream.write(digest.digest())
            case ["halfclose"]:
                _, count = await drain_to_hash(stream)
                await stream.write(f"got {count}\n".encode())
            case ["reset"]:
                stream.reset()
            case ["stall"]:
                await self.release.wait()
                self.max_buffered = max(self.max_buffered, stream._buffered)
                hexdigest, count = await drain_to_hash(stream)
                await stream.write(f"{hexdigest} {count}\n".encode())
            case ["release"]:
                self.release.set()
            case ["goaway"]:
                await self.session.go_away()
                await stream.write(b"ok\n")
                await self._echo(stream)
            case _:
                stream.reset()


GO_INSTALL_HINT = (
    "the Go toolchain is required to build hack/yamux-peer (the hashicorp/yamux interop peer): install Go >= 1.26 "
    "from https://go.dev/dl/ (e.g. tar -C /usr/local -xzf go1.26.*.linux-amd64.tar.gz) and put /usr/local/go/bin "
    "on PATH; the module github.com/hashicorp/yamux v0.1.2 is fetched from the Go module proxy"
)


def build_yamux_peer(source_dir: Path, *, cache_root: Path | None = None) -> Path:
    """Build hack/yamux-peer once per source+toolchain hash into ~/.cache/dockyard/yamux-peer/<hash>/.

    Raises FileNotFoundError with installation instructions when ``go`` is missing, and
    subprocess.CalledProcessError (with the compiler output) when the build fails.
    """
    go = shutil.which("go")
    if go is None:
        raise FileNotFoundError(GO_INSTALL_HINT)
    root = cache_root if cache_root is not None else Path.home() / ".cache" / "dockyard" / "yamux-peer"
    digest = hashlib.sha256()
    version = subprocess.run([go, "version"], check=True, capture_output=True, text=True).stdout
    digest.update(version.encode())
    for name in ("go.mod", "go.sum", "main.go"):
        digest.update(name.encode() + b"\0" + (source_dir / name).read_bytes())
    target = root / digest.hexdigest()[:16] / "yamux-peer"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"yamux-peer.{os.getpid()}.tmp")
    subprocess.run(
        [go, "build", "-mod=readonly", "-o", str(partial), "."],
        cwd=source_dir,
        check=True,
        capture_output=True,
        text=True,
    )
    os.replace(partial, target)
    return target
