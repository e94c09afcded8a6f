"""The single-file agent on the oldest supported distribution: Debian 11 (glibc 2.31), amd64 and arm64.

Each binary from hack/build-agent runs chrooted into a bullseye root filesystem of its own architecture (arm64
under qemu-user through binfmt_misc), joined as `dockyard host join --arch ARCH` prints it, over TLS with the
pinned CA, against the session's real operator; a DockerContainer on that host must become Ready. The dev
dockerd's socket is bind-mounted into the root, as the host's own socket would be.

The agent image: the amd64 one is loaded into the dev dockerd (20.10 cannot load an image index, so
`docker save`-format tar of one platform) and serves a container the same way; the arm64 one is unpacked from
the OCI image index and must start under emulation.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dockyard_e2e import (
    ROOT,
    SLEEPER,
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
        # It carries OpenSSL 3 built from Debian 12's source, not Debian 11's out-of-support 1.1.1 (hack/build-python).
        assert '"openssl": "OpenSSL 3.' in agent.log.read_text(), agent.log.read_text()[:2000]
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


def docker_cli(devenv: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env=devenv.env, capture_output=True, text=True, timeout=300, check=False)


def agent_image(arch: str) -> Path:
    path = ROOT / "dist" / f"dockyard-agent-image-linux-{arch}.docker.tar"
    if not path.is_file():
        pytest.fail(f"{path} does not exist: build it with `make agent-image` (hack/agent-image.py)")
    return path


async def test_agent_image_serves_a_container_read_only_and_non_root(
    devenv: Any, operator: Any, kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    """The amd64 image from the OCI index's parts, run as docs/agent.md says: host network, the socket, the token
    as a mounted file, a read-only root with an exec-able /tmp for the one-file unpack, no capabilities."""
    loaded = docker_cli(devenv, "load", "-i", str(agent_image("amd64")))
    assert loaded.returncode == 0, loaded.stderr
    image = "dockyard-agent:dev-linux-amd64"
    assert f"Loaded image: {image}" in loaded.stdout
    config = json.loads(docker_cli(devenv, "image", "inspect", image).stdout)[0]
    assert config["Config"]["User"] == "65532:65532"
    assert config["Architecture"] == "amd64"

    container = f"dockyard-agent-{uuid.uuid4().hex[:6]}"
    socket_gid = devenv.docker_socket.stat().st_gid

    def command(args: list[str], token_file: Path) -> list[str]:
        args = list(args)
        args[args.index("--token-file") + 1] = "/run/secrets/agent.token"
        token_file.chmod(0o644)  # the container's user is 65532; on a host, chown the file to it instead
        return [
            "docker", "run", "--rm", "--name", container, "--network", "host", "--read-only",
            "--tmpfs", "/tmp:exec,mode=1777", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--group-add", str(socket_gid), "-v", f"{devenv.docker_socket}:/var/run/docker.sock",
            "-v", f"{token_file}:/run/secrets/agent.token:ro", image, *args,
        ]  # fmt: skip

    name = f"port-image-{uuid.uuid4().hex[:4]}"
    agent = join_tunnel_host(devenv, operator, name, {"site": "portability"}, tmp_path, arch="amd64", command=command)
    try:

        async def connected() -> dict[str, Any] | None:
            assert agent.proc is not None
            assert agent.proc.poll() is None, f"the agent container exited:\n{agent.log.read_text()[-3000:]}"
            obj = await get_host(kube, name)
            return obj if (obj.get("status") or {}).get("phase") == "Connected" else None

        await eventually(connected, timeout=60, what=f"{name} Connected from the agent image")
        dc = f"port-image-{uuid.uuid4().hex[:6]}"
        apply(devenv, container_manifest(dc, namespace, name, image=devenv.test_image, args=SLEEPER))

        async def ready() -> dict[str, Any] | None:
            obj = await get_dc(kube, namespace, dc)
            return obj if condition(obj, "Ready").get("status") == "True" else None

        await eventually(ready, timeout=90, what=f"{dc} Ready through the agent image")
    finally:
        try:
            leave_tunnel_host(devenv, name, agent)
        finally:
            docker_cli(devenv, "rm", "-f", container)


def oci_platform_layer(layout: Path, arch: str, into: Path) -> None:
    """Unpack the layer of `arch`'s image from the OCI image layout tarball (index -> index -> manifest)."""
    with tarfile.open(layout) as tar:

        def read(name: str) -> bytes:
            member = tar.extractfile(name)
            assert member is not None, name
            return member.read()

        def blob(digest: str) -> bytes:
            data = read(f"blobs/sha256/{digest.removeprefix('sha256:')}")
            assert hashlib.sha256(data).hexdigest() == digest.removeprefix("sha256:"), f"{digest} is corrupt"
            return data

        top = json.loads(read("index.json"))
        index = json.loads(blob(top["manifests"][0]["digest"]))
        platforms = {m["platform"]["architecture"]: m for m in index["manifests"]}
        assert set(platforms) == {"amd64", "arm64"}, f"the index has {sorted(platforms)}"
        manifest = json.loads(blob(platforms[arch]["digest"]))
        config = json.loads(blob(manifest["config"]["digest"]))
        assert config["architecture"] == arch
        layer = blob(manifest["layers"][0]["digest"])
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as image:
        image.extractall(into, filter="tar")


def test_arm64_image_from_the_index_starts_under_emulation(tmp_path: Path) -> None:
    layout = ROOT / "dist" / "dockyard-agent-image.oci.tar"
    if not layout.is_file():
        pytest.fail(f"{layout} does not exist: build it with `make agent-image` (hack/agent-image.py)")
    rootfs = tmp_path / "rootfs"
    oci_platform_layer(layout, "arm64", rootfs)
    res = subprocess.run(
        [str(ROOT / "hack" / "in-root"), str(rootfs), "--", "/usr/local/bin/dockyard-agent", "--help"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "usage: dockyard-agent" in res.stdout
