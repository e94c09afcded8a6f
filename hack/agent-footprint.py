"""What the single-file agents need from a host, measured: the newest glibc symbol version, size, idle RSS.

    .venv/bin/python hack/agent-footprint.py [--rss]

For each dist/dockyard-agent-linux-ARCH: the bootloader and every shared object PyInstaller bundled are read
with readelf (any architecture), and the newest GLIBC_x.y version they require is the glibc the binary needs;
the ones that need it are named. With --rss (root; hack/bullseye-root, hack/in-root), the agent also runs in the
bullseye root of its architecture, pointed at a closed port so it stays idle in its reconnect loop, and the RSS
of its Python process (the onefile child; the bootloader parent only waits) is read from /proc after 10 s; the
baseline is the same agent from this machine's virtualenv (`python -m dockyard_tunnel.agent`), same run.
arm64 runs under qemu-user there: its RSS includes the emulator and is not what an arm64 host would see.
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PyInstaller.archive.readers import CArchiveReader  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[1]
NEEDS = re.compile(r"Name: GLIBC_(\d+)\.(\d+)")


def glibc_needed(elf: Path) -> tuple[int, int]:
    """The newest GLIBC_ version `elf` asks the dynamic linker for ((0, 0) if none)."""
    out = subprocess.run(["readelf", "-V", "-W", str(elf)], capture_output=True, text=True, check=True).stdout
    versions = [(int(a), int(b)) for a, b in NEEDS.findall(out)]
    return max(versions, default=(0, 0))


def glibc_floor(binary: Path) -> tuple[tuple[int, int], list[str]]:
    """The newest glibc any part of the onefile `binary` needs, and which parts need exactly that."""
    reader = CArchiveReader(str(binary))
    needs = {binary.name: glibc_needed(binary)}
    with tempfile.TemporaryDirectory() as tmp:
        for name, entry in reader.toc.items():
            if entry[-1] != "b":  # binaries: extension modules and shared libraries
                continue
            path = Path(tmp) / name.replace("/", "_")
            path.write_bytes(reader.extract(name))
            needs[name] = glibc_needed(path)
    floor = max(needs.values())
    return floor, sorted(name for name, version in needs.items() if version == floor)


def idle_rss_mib(arch: str | None, binary: Path | None) -> float:
    """RSS of the idle agent: `binary` chrooted into the bullseye root of `arch`, or (None, None) the baseline,
    `python -m dockyard_tunnel.agent` from this machine's virtualenv."""
    with socket.socket() as s:  # a port nobody listens on: the agent retries, idle, with backoff
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "token").write_text("x" * 43)
        settings = ["--server", f"ws://127.0.0.1:{port}", "--insecure", "--host-name", "footprint", "--log-level",
                    "error"]  # fmt: skip
        if arch is None or binary is None:
            argv = [sys.executable, "-m", "dockyard_tunnel.agent", *settings, "--token-file", f"{tmp}/token"]
        else:
            root = subprocess.run(
                [str(ROOT / "hack" / "bullseye-root"), "runtime", arch], capture_output=True, text=True, check=True
            ).stdout.strip()
            argv = [str(ROOT / "hack" / "in-root"), root, "--ro-bind", f"{binary.parent}:/dockyard",
                    "--ro-bind", f"{tmp}:/run/dockyard/token", "--", f"/dockyard/{binary.name}", *settings,
                    "--token-file", "/run/dockyard/token/token"]  # fmt: skip
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(10)
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            pids = [int(p) for p in children] or [proc.pid]
            rss_kib = 0
            for pid in pids:
                status = Path(f"/proc/{pid}/status").read_text()
                rss_kib = max(rss_kib, int(re.search(r"VmRSS:\s+(\d+)", status).group(1)))  # type: ignore[union-attr]
            return rss_kib / 1024
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the single-file agents' glibc floor, size and idle RSS")
    parser.add_argument("--rss", action="store_true", help="also run each agent idle and read its RSS (root)")
    args = parser.parse_args(argv)
    print("| binary | size | needs glibc | needed by | idle RSS |")
    print("| --- | --- | --- | --- | --- |")
    found = False
    for arch in ("amd64", "arm64"):
        binary = ROOT / "dist" / f"dockyard-agent-linux-{arch}"
        if not binary.is_file():
            print(f"agent-footprint: {binary} is missing (make agent)", file=sys.stderr)
            continue
        found = True
        (major, minor), by = glibc_floor(binary)
        rss = f"{idle_rss_mib(arch, binary):.1f} MiB" + (" (qemu)" if arch == "arm64" else "") if args.rss else "-"
        size = binary.stat().st_size / 2**20
        print(f"| {binary.name} | {size:.1f} MiB | {major}.{minor} | {', '.join(by[:4])} | {rss} |")
    if args.rss:
        print(f"| baseline: `python -m dockyard_tunnel.agent` (.venv, this machine) | - | - | - | "
              f"{idle_rss_mib(None, None):.1f} MiB |")  # fmt: skip
    return 0 if found else 1


if __name__ == "__main__":
    sys.exit(main())
