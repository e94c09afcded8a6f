"""The pure logic against the real private dockerd: what we send is what inspect shows, as drift expects.

One container exercises every part of the create body (entrypoint, args, workdir, env, ports, binds, a named
volume, limits, restart policy, health check, labels) and the Secret/ConfigMap archive; the unit tests' model of
inspect (conftest.docker_inspect) is only trustworthy because this test holds for the real daemon.
"""

from __future__ import annotations

import asyncio
import io
import socket
import tarfile
import uuid
from pathlib import Path
from typing import Any

import aiodocker
import pytest

from dockyard_operator.api.dockercontainer import DockerContainerSpec, RestartPolicy
from dockyard_operator.containers import drift, observing
from dockyard_operator.containers.desired import DesiredContainer, ResolvedRefs, build_desired

pytestmark = [pytest.mark.docker, pytest.mark.timeout(120)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_spec(test_image: str, host_dir: Path, volume: str, **overrides: Any) -> DockerContainerSpec:
    document: dict[str, Any] = {
        "image": test_image,
        "imagePullPolicy": "Never",
        "hostRef": {"name": "local"},
        "command": ["sh", "-c"],
        "args": ["trap 'exit 3' TERM; while true; do sleep 1; done"],
        "workingDir": "/srv/app/",
        "env": [
            {"name": "LITERAL", "value": "a b=c"},
            {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        ],
        "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
        "ports": [
            {"containerPort": 8080, "hostPort": free_port(), "hostIP": "127.0.0.1"},
            {"containerPort": 5353, "protocol": "UDP"},
        ],
        "resources": {"limits": {"cpu": "250m", "memory": "64Mi"}},
        "volumes": [
            {"name": "host", "mountPath": "/host", "hostPath": {"path": str(host_dir)}, "readOnly": True},
            {"name": "data", "mountPath": "/data", "dockerVolume": {"name": volume}},
            {
                "name": "creds",
                "mountPath": "/run/creds",
                "secret": {
                    "secretName": "creds",
                    "defaultMode": 0o400,
                    "items": [{"key": "token", "path": "db/token"}],
                },
            },
            {"name": "settings", "mountPath": "/etc/settings", "configMap": {"name": "settings"}},
        ],
        "restartPolicy": "Never",
        "healthCheck": {"exec": {"command": ["true"]}, "intervalSeconds": 1, "timeoutSeconds": 1, "retries": 1},
        "labels": {"test": "drift"},
        "stopGracePeriodSeconds": 2,
    }
    document.update(overrides)
    return DockerContainerSpec.model_validate(document)


REFS = ResolvedRefs(
    secrets={"creds": {"token": b"t0k3n"}},
    config_maps={"settings": {"level": "debug", "app.yaml": "a: 1\n"}},
)


async def read_archive(container: Any, path: str) -> dict[str, tuple[int, bytes | None]]:
    tar: tarfile.TarFile = await container.get_archive(path)
    result: dict[str, tuple[int, bytes | None]] = {}
    with tar:
        for info in tar.getmembers():
            extracted = tar.extractfile(info) if info.isfile() else None
            result[info.name] = (info.mode & 0o7777, extracted.read() if extracted is not None else None)
    return result


async def wait_health(container: Any, status: str) -> dict[str, Any]:
    for _ in range(100):
        inspect: dict[str, Any] = await container.show()
        if (inspect["State"].get("Health") or {}).get("Status") == status:
            return inspect
        await asyncio.sleep(0.1)
    raise AssertionError(f"the container did not become {status}: {inspect['State']}")


async def test_a_container_created_from_desired_has_no_drift(
    devenv: Any, docker: aiodocker.Docker, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    volume = f"dockyard-test-{suffix}"
    spec = make_spec(devenv.test_image, tmp_path, volume)
    desired: DesiredContainer = build_desired(
        namespace="drift-test", name=f"c-{suffix}", uid=str(uuid.uuid4()), spec=spec, refs=REFS
    )
    container = await docker.containers.create(desired.create_body(), name=desired.container_name)
    try:
        await container.put_archive("/", desired.archive())  # type: ignore[no-untyped-call]
        created = await container.show()
        assert created["Name"] == "/" + desired.container_name
        assert created["Config"]["Cmd"] == spec.args  # our entrypoint: the image's CMD is not merged
        assert drift.detect_drift(desired, created) == ()
        assert observing.phase_for(observing.observe(created), RestartPolicy.NEVER) == "Creating"

        await container.start()
        running = await wait_health(container, "healthy")
        assert drift.detect_drift(desired, running) == ()
        seen = observing.observe(running)
        assert seen.running
        assert seen.state == "running"
        assert seen.health == "healthy"
        assert seen.container_id == container.id
        assert seen.image_id is not None
        assert seen.image_id.startswith("sha256:")
        assert seen.started_at is not None
        assert seen.exit_code is None
        assert seen.spec_hash == desired.spec_hash
        assert seen.ip is not None
        assert seen.ip.rsplit(".", 1)[0] == devenv.bridge_cidr.rsplit(".", 1)[0]
        assert running["HostConfig"]["NanoCpus"] == 250_000_000
        assert running["HostConfig"]["Memory"] == 64 * 1024 * 1024

        # The archive landed with our modes, and the environment is resolved.
        creds = await read_archive(container, "/run/creds")
        assert creds == {"creds": (0o755, None), "creds/db": (0o755, None), "creds/db/token": (0o400, b"t0k3n")}
        settings = await read_archive(container, "/etc/settings")
        assert settings["settings/app.yaml"] == (0o444, b"a: 1\n")
        assert settings["settings/level"] == (0o444, b"debug")
        env = running["Config"]["Env"]
        assert {"LITERAL=a b=c", "FROM_SECRET=t0k3n", "CFG_level=debug", "CFG_app.yaml=a: 1\n"} <= set(env)

        # Changes to the spec, or to referenced contents, are seen against the real inspect.
        def changed(refs: ResolvedRefs = REFS, **overrides: Any) -> tuple[str, ...]:
            other = make_spec(devenv.test_image, tmp_path, volume, **overrides)
            other = other.model_copy(update={"ports": spec.ports})  # free_port() picked a new host port
            new = build_desired(
                namespace="drift-test",
                name=f"c-{suffix}",
                uid=desired.labels["dockyard.dev/uid"],
                spec=other,
                refs=refs,
            )
            return drift.detect_drift(new, running)

        assert changed() == ()
        assert changed(image="dockyard-test/busybox:other") == ("image", "config")
        assert changed(args=["sleep 1000"]) == ("args", "config")
        assert changed(env=[{"name": "LITERAL", "value": "changed"}]) == ("env", "config")
        assert changed(resources={"limits": {"cpu": "1"}}) == ("resources", "config")
        rotated = ResolvedRefs(secrets={"creds": {"token": b"n3w"}}, config_maps=REFS.config_maps)
        assert changed(rotated) == ("env", "config")

        # Stopped behind our back: exited, with the trap's exit code; the configuration did not drift.
        await container.stop(t=2)
        stopped = await container.show()
        seen = observing.observe(stopped)
        assert (seen.state, seen.running, seen.exit_code) == ("exited", False, 3)
        assert seen.finished_at is not None
        assert seen.started_at is not None
        assert seen.finished_at >= seen.started_at
        assert observing.phase_for(seen, RestartPolicy.NEVER) == "Failed"
        assert observing.phase_for(seen, RestartPolicy.ALWAYS) == "Running"
        assert drift.detect_drift(desired, stopped) == ()
    finally:
        await container.delete(force=True)
        await (await docker.volumes.get(volume)).delete()  # type: ignore[no-untyped-call]


DOCKERFILE_WITH_DEFAULTS = """\
FROM {base}
ENV IMAGE_ONLY=1 PATH=/bin:/usr/bin
CMD ["sleep", "300"]
EXPOSE 9999
LABEL org.example.from-image=yes
WORKDIR /from-image
HEALTHCHECK --interval=5s --start-period=7s CMD true
VOLUME /image-volume
"""


async def build_image_with_defaults(docker: aiodocker.Docker, base: str, tag: str) -> None:
    dockerfile = DOCKERFILE_WITH_DEFAULTS.format(base=base).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    buffer.seek(0)
    await docker.images.build(fileobj=buffer, encoding="application/x-tar", tag=tag, rm=True, forcerm=True)


async def test_image_defaults_merged_by_docker_are_not_drift(devenv: Any, docker: aiodocker.Docker) -> None:
    """An image with ENV, CMD, EXPOSE, LABEL, WORKDIR, HEALTHCHECK and VOLUME: Docker merges all of them into
    the container; none of it is drift, while our own settings still are compared."""
    suffix = uuid.uuid4().hex[:8]
    image = f"dockyard-test/with-defaults:{suffix}"
    await build_image_with_defaults(docker, devenv.test_image, image)
    containers = []
    try:
        minimal = DockerContainerSpec.model_validate({"image": image, "hostRef": {"name": "local"}})
        ours = DockerContainerSpec.model_validate(
            {
                "image": image,
                "hostRef": {"name": "local"},
                "command": ["sleep"],
                "env": [{"name": "PATH", "value": "/usr/bin:/bin"}, {"name": "MINE", "value": "1"}],
                "ports": [{"containerPort": 80}],
                "healthCheck": {"shell": {"command": "true"}, "intervalSeconds": 2, "timeoutSeconds": 1},
                "labels": {"mine": "yes"},
            }
        )
        for index, spec in enumerate((minimal, ours)):
            desired = build_desired(
                namespace="drift-test", name=f"d{index}-{suffix}", uid=str(uuid.uuid4()), spec=spec, refs=ResolvedRefs()
            )
            container = await docker.containers.create(desired.create_body(), name=desired.container_name)
            containers.append(container)
            inspect = await container.show()
            config = inspect["Config"]
            assert "IMAGE_ONLY=1" in config["Env"]
            assert "9999/tcp" in config["ExposedPorts"]
            assert config["Labels"]["org.example.from-image"] == "yes"
            assert config["Healthcheck"]["StartPeriod"] == 7_000_000_000
            assert any(m["Destination"] == "/image-volume" for m in inspect["Mounts"])
            assert drift.detect_drift(desired, inspect) == ()
            if spec is minimal:
                assert config["Cmd"] == ["sleep", "300"]
                assert config["WorkingDir"] == "/from-image"
            else:
                assert config["Entrypoint"] == ["sleep"]
                assert config["Cmd"] is None  # our entrypoint: the image's CMD is dropped
                assert "PATH=/usr/bin:/bin" in config["Env"]
                assert config["Healthcheck"]["Interval"] == 2_000_000_000
                with_args = spec.model_copy(update={"args": ["300"]})
                new = build_desired(
                    namespace="drift-test",
                    name=f"d{index}-{suffix}",
                    uid=desired.labels["dockyard.dev/uid"],
                    spec=with_args,
                    refs=ResolvedRefs(),
                )
                assert drift.detect_drift(new, inspect) == ("args", "config")
    finally:
        for container in containers:
            await container.delete(force=True, v=True)
        await docker.images.delete(image, force=True)


def test_archive_is_a_plain_tar(tmp_path: Path) -> None:
    """The bytes handed to put_archive are an ordinary tar any tool can read (sanity check for the above)."""
    spec = DockerContainerSpec.model_validate(
        {
            "image": "x:1",
            "hostRef": {"name": "h"},
            "volumes": [{"name": "s", "mountPath": "/s", "secret": {"secretName": "creds"}}],
        }
    )
    archive = build_desired(namespace="n", name="a", uid="u", spec=spec, refs=REFS).archive()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tmp_path, filter="data")
    assert (tmp_path / "s" / "token").read_bytes() == b"t0k3n"
