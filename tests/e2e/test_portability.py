"""The single-file agent on the oldest supported distribution: Debian 11 (glibc 2.31), amd64 and arm64.

Each binary from hack/build-agent runs chrooted into a bullseye root filesystem of its own architecture (arm64
under qemu-user through binfmt_misc), joined as `dockyard host join --arch ARCH` prints it, over TLS with the
pinned CA, against the session's real operator; a DockerContainer on that host must become Ready. The dev
dockerd's socket is bind-mounted into the root, as the host's own socket would be.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dockyard_e2e import (
    ROOT,
    apply,
    condition,
    container_manifest,
    eventually,
    get_dc,
    get_host,
    join_tunnel_host,
    leave_tunnel_host,
)

from dockyard_operator.kube.client import KubeClient

pytestmark = [pytest.mark.portability, pytest.mark.kube, pytest.mark.docker, pytest.mark.slow]

SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
#: ELF e_machine of each architecture, and the multiarch directory of its libc in a Debian root.
ELF_MACHINE = {"amd64": 62, "arm64": 183}
TRIPLET = {"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}


def runtime_root(arch: str) -> Path:
    """The cached minimal bullseye root of `arch` (made on first use, a minute or a few under emulation)."""
    res = subprocess.run(
        [str(ROOT / "hack" / "bullseye-root"), "runtime", arch],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if res.returncode != 0:
        pytest.fail(f"hack/bullseye-root runtime {arch} failed (needs root and debootstrap):\n{res.stderr}")
    return Path(res.stdout.strip())


def agent_binary(arch: str) -> Path:
    path = ROOT / "dist" / f"dockyard-agent-linux-{arch}"
    if not path.is_file():
        pytest.fail(f"{path} does not exist: build it with `make agent` (hack/build-agent --arch {arch})")
    return path


def chrooted(root: Path, binary: Path, devenv: Any) -> Callable[[list[str], Path], list[str]]:
    """The agent's argv: hack/in-root with the binary, the token's directory and the Docker socket's bound in."""

    def command(args: list[str], token_file: Path) -> list[str]:
        args = list(args)
        args[args.index("--token-file") + 1] = f"/run/dockyard/token/{token_file.name}"
        return [
            str(ROOT / "hack" / "in-root"), str(root),
            "--ro-bind", f"{binary.parent}:/dockyard",
            "--ro-bind", f"{token_file.parent}:/run/dockyard/token",
            "--bind", f"{devenv.docker_socket.parent}:/run/dockyard/docker",
            "--",
            f"/dockyard/{binary.name}", *args,
            "--docker-socket", f"unix:///run/dockyard/docker/{devenv.docker_socket.name}",
        ]  # fmt: skip

    return command


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
async def test_agent_binary_serves_a_container_from_a_debian_11_root(
    devenv: Any, operator: Any, kube: KubeClient, namespace: str, tmp_path: Path, arch: str
) -> None:
    binary = agent_binary(arch)
    with binary.open("rb") as fh:
        header = fh.read(20)
    assert header[:4] == b"\x7fELF", f"{binary} is not an ELF executable"
    assert int.from_bytes(header[18:20], "little") == ELF_MACHINE[arch], f"{binary} is not a linux/{arch} executable"
    root = runtime_root(arch)
    # The claim under test is "runs on glibc 2.31": the root must really be that old, and have no Python.
    assert (root / "lib" / TRIPLET[arch] / "libc-2.31.so").exists(), f"{root} does not have glibc 2.31"
    assert not list((root / "usr" / "bin").glob("python3*")), f"{root} has a Python: the binary must need none"

    name = f"port-{arch}-{uuid.uuid4().hex[:4]}"
    agent = join_tunnel_host(
        devenv, operator, name, {"site": "portability"}, tmp_path, arch=arch, command=chrooted(root, binary, devenv)
    )
    try:

        async def connected() -> dict[str, Any] | None:
            assert agent.proc is not None
            assert agent.proc.poll() is None, (
                f"the agent exited with {agent.proc.returncode}:\n{agent.log.read_text()[-3000:]}"
            )
            obj = await get_host(kube, name)
            return obj if (obj.get("status") or {}).get("phase") == "Connected" else None

        # Under qemu the one-file binary unpacks and imports everything emulated: allow for it.
        host = await eventually(connected, timeout=120 if arch == "arm64" else 45, what=f"{name} Connected")
        assert host["status"]["agentVersion"]
        assert agent.proc is not None
        # The process that connected is the chrooted binary, not something on this machine's root.
        assert os.readlink(f"/proc/{agent.proc.pid}/root") == str(root)

        dc = f"port-{arch}-{uuid.uuid4().hex[:6]}"
        apply(devenv, container_manifest(dc, namespace, name, image=devenv.test_image, args=SLEEPER))

        async def ready() -> dict[str, Any] | None:
            obj = await get_dc(kube, namespace, dc)
            return obj if condition(obj, "Ready").get("status") == "True" else None

        obj = await eventually(ready, timeout=120, what=f"{dc} Ready through the linux/{arch} agent")
        assert obj["status"]["host"] == name
    finally:
        leave_tunnel_host(devenv, name, agent)
