"""detect_drift against inspect bodies shaped like Docker's (image defaults merged in, zero values omitted)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from dockyard_operator.api import labels
from dockyard_operator.api.dockercontainer import DockerContainerSpec
from dockyard_operator.containers import drift
from dockyard_operator.containers.desired import DesiredContainer, ResolvedRefs, build_desired

InspectFactory = Callable[..., dict[str, Any]]  # the docker_inspect fixture (conftest.py)

REFS = ResolvedRefs(
    secrets={"db": {"password": b"pw0", "ca.crt": b"ca0"}},
    config_maps={"settings": {"LEVEL": "info", "app.yaml": "a: 1\n"}},
)


def full_spec(**overrides: Any) -> DockerContainerSpec:
    document: dict[str, Any] = {
        "image": "dockyard-test/busybox:1",
        "hostRef": {"name": "edge-1"},
        "command": ["sleep"],
        "args": ["300"],
        "workingDir": "/srv",
        "env": [
            {"name": "A", "value": "1"},
            {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
        ],
        "envFrom": [{"configMapRef": {"name": "settings"}}],
        "ports": [{"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.1"}, {"containerPort": 81}],
        "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}},
        "volumes": [
            {"name": "data", "mountPath": "/data", "dockerVolume": {"name": "app-data"}},
            {"name": "logs", "mountPath": "/logs", "hostPath": {"path": "/srv/logs"}, "readOnly": True},
            {
                "name": "ca",
                "mountPath": "/etc/ca",
                "secret": {"secretName": "db", "items": [{"key": "ca.crt", "path": "ca.crt"}]},
            },
        ],
        "restartPolicy": "OnFailure",
        "healthCheck": {"shell": {"command": "true"}, "intervalSeconds": 2, "timeoutSeconds": 1, "retries": 2},
        "labels": {"team": "a"},
    }
    document.update(overrides)
    return DockerContainerSpec.model_validate(document)


def build(spec: DockerContainerSpec, refs: ResolvedRefs = REFS) -> DesiredContainer:
    return build_desired(namespace="ns", name="app", uid="uid-1", spec=spec, refs=refs)


def test_a_fresh_container_has_no_drift(docker_inspect: InspectFactory) -> None:
    """Image defaults merged by Docker (env, labels, EXPOSE, healthcheck start period) are not drift."""
    desired = build(full_spec())
    inspect = docker_inspect(desired)
    assert "IMAGE_ONLY=1" in inspect["Config"]["Env"]
    assert inspect["Config"]["Healthcheck"]["StartPeriod"] == 7_000_000_000  # merged from the image
    assert drift.detect_drift(desired, inspect) == ()


def test_a_minimal_spec_has_no_drift_with_image_cmd_and_healthcheck(
    docker_inspect: InspectFactory, make_spec: Callable[..., DockerContainerSpec]
) -> None:
    """Without command, args, workdir or health check the image's are used, and that is not drift."""
    desired = build(make_spec())
    inspect = docker_inspect(desired)
    assert inspect["Config"]["Cmd"] == ["sh"]
    assert drift.detect_drift(desired, inspect) == ()
    assert drift.detect_drift(desired, docker_inspect(desired, state="exited")) == ()


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"image": "dockyard-test/busybox:2"}, ("image",)),
        ({"command": ["/bin/sleep"]}, ("command",)),
        ({"args": ["301"]}, ("args",)),
        ({"args": []}, ("args",)),  # with our entrypoint, clearing args is visible
        ({"env": [{"name": "A", "value": "2"}]}, ("env",)),
        (
            {"ports": [{"containerPort": 80, "hostPort": 8081, "hostIP": "127.0.0.1"}, {"containerPort": 81}]},
            ("ports",),
        ),
        (
            {"ports": [{"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.1"}, {"containerPort": 82}]},
            ("ports",),
        ),
        ({"resources": {"limits": {"cpu": "1", "memory": "64Mi"}}}, ("resources",)),
        ({"resources": None}, ("resources",)),
        ({"restartPolicy": "Always"}, ("restartPolicy",)),
        ({"healthCheck": {"shell": {"command": "false"}}}, ("healthCheck",)),
        ({"labels": {"team": "b"}}, ("labels",)),
        ({"workingDir": "/tmp"}, ("workingDir",)),
        ({"image": "x:1", "args": ["1"], "env": [{"name": "A", "value": "9"}]}, ("image", "args", "env")),
    ],
)
def test_changed_fields_are_named(
    docker_inspect: InspectFactory, change: dict[str, Any], fields: tuple[str, ...]
) -> None:
    """Each spec change is named by its field, plus config (the hash moved with it)."""
    running = docker_inspect(build(full_spec()))
    changed = build(full_spec(**change))
    assert drift.detect_drift(changed, running) == (*fields, "config")


def test_volumes_changes_are_named(docker_inspect: InspectFactory) -> None:
    running = docker_inspect(build(full_spec()))
    spec = full_spec()
    writable = spec.model_copy(
        update={"volumes": [spec.volumes[0], spec.volumes[1].model_copy(update={"read_only": False}), spec.volumes[2]]}
    )
    assert drift.detect_drift(build(writable), running) == ("volumes", "config")


def test_removals_that_inspect_cannot_show_are_config(docker_inspect: InspectFactory) -> None:
    """A removed env var or label might be the image's own: only the hash can tell, and it does."""
    running = docker_inspect(build(full_spec()))
    spec = full_spec()
    fewer_env = spec.model_copy(update={"env": spec.env[1:]})
    assert drift.detect_drift(build(fewer_env), running) == ("config",)
    assert drift.detect_drift(build(full_spec(labels={})), running) == ("config",)


def test_rotated_secrets_and_configmaps(docker_inspect: InspectFactory) -> None:
    """A Secret used in env shows as env; one used only as a file shows as config; both are drift."""
    running = docker_inspect(build(full_spec()))
    env_rotated = ResolvedRefs(secrets={"db": {"password": b"pw1", "ca.crt": b"ca0"}}, config_maps=REFS.config_maps)
    assert drift.detect_drift(build(full_spec(), env_rotated), running) == ("env", "config")
    file_rotated = ResolvedRefs(secrets={"db": {"password": b"pw0", "ca.crt": b"ca1"}}, config_maps=REFS.config_maps)
    assert drift.detect_drift(build(full_spec(), file_rotated), running) == ("config",)


def test_changes_behind_our_back(docker_inspect: InspectFactory) -> None:
    """Someone recreated the container by hand with our labels but other settings."""
    desired = build(full_spec())
    inspect = docker_inspect(desired)
    tampered = copy.deepcopy(inspect)
    tampered["Config"]["Env"] = [e for e in tampered["Config"]["Env"] if not e.startswith("DB_PASSWORD=")]
    tampered["HostConfig"]["Binds"] = None
    tampered["HostConfig"]["PortBindings"] = None
    tampered["HostConfig"]["RestartPolicy"] = {"Name": "", "MaximumRetryCount": 0}
    tampered["Config"]["Healthcheck"] = None
    tampered["Config"]["Labels"].pop(labels.NAME)
    assert drift.detect_drift(desired, tampered) == (
        "env",
        "ports",
        "volumes",
        "restartPolicy",
        "healthCheck",
        "labels",
    )
    unlabelled = copy.deepcopy(inspect)
    unlabelled["Config"]["Labels"] = None
    assert drift.detect_drift(desired, unlabelled) == ("labels", "config")


def test_docker_zero_values_match_absent_settings(
    docker_inspect: InspectFactory, make_spec: Callable[..., DockerContainerSpec]
) -> None:
    """Docker shows an unset restart policy as "" and unset limits as 0; "Never" is "no" either way."""
    desired = build(make_spec(restartPolicy="Never"))
    inspect = docker_inspect(desired)
    inspect["HostConfig"]["RestartPolicy"] = {"Name": "", "MaximumRetryCount": 0}
    inspect["HostConfig"].pop("NanoCpus")
    inspect["HostConfig"]["Memory"] = None
    inspect["HostConfig"]["Binds"] = []
    inspect["HostConfig"]["PortBindings"] = {"81/tcp": []}
    assert drift.detect_drift(desired, inspect) == ()


def test_env_entries_later_in_the_list_win(docker_inspect: InspectFactory) -> None:
    desired = build(full_spec())
    inspect = docker_inspect(desired)
    inspect["Config"]["Env"] = [*inspect["Config"]["Env"], "A=overridden"]
    assert drift.detect_drift(desired, inspect) == ("env",)
    inspect["Config"]["Env"].append("A")  # a name without "=" has no value
    assert drift.detect_drift(desired, inspect) == ("env",)


def test_the_returned_names_are_the_documented_ones() -> None:
    assert set(drift.FIELDS) == {
        "image",
        "command",
        "args",
        "env",
        "ports",
        "volumes",
        "resources",
        "restartPolicy",
        "healthCheck",
        "labels",
        "workingDir",
        "config",
    }
