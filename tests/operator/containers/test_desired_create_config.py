"""build_desired: the Docker create body from a spec, with Secrets and ConfigMaps resolved like Kubernetes."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from dockyard_operator.api import labels
from dockyard_operator.api.dockercontainer import DockerContainerSpec
from dockyard_operator.containers.desired import (
    DesiredContainer,
    ResolvedRefs,
    build_desired,
    referenced_config_maps,
    referenced_secrets,
)
from dockyard_operator.containers.errors import (
    ContainersError,
    MissingReferenceError,
    UnbuildableSpecError,
    UnusableValueError,
)
from dockyard_operator.errors import DockyardError

SpecFactory = Callable[..., DockerContainerSpec]  # the make_spec fixture (conftest.py)

UID = "7d3c2f0e-1111-4222-8333-944455556666"


def build(spec: Any, refs: ResolvedRefs | None = None) -> DesiredContainer:
    return build_desired(namespace="team-a", name="web", uid=UID, spec=spec, refs=refs or ResolvedRefs())


def test_minimal_spec_gives_a_minimal_body(make_spec: SpecFactory) -> None:
    """Only what the spec says is sent; the image's entrypoint, CMD and workdir are left alone."""
    desired = build(make_spec())
    config = desired.create_config
    assert desired.container_name == "team-a_web"
    assert desired.image == "dockyard-test/busybox:1"
    assert desired.pull_policy == "IfNotPresent"
    assert config["Image"] == "dockyard-test/busybox:1"
    assert "Entrypoint" not in config
    assert "Cmd" not in config
    assert "WorkingDir" not in config
    assert "Healthcheck" not in config
    assert "ExposedPorts" not in config
    assert config["Env"] == []
    assert config["StopTimeout"] == 10
    assert config["HostConfig"] == {"RestartPolicy": {"Name": "always"}}
    assert desired.files == ()
    assert desired.directories == ()


def test_identity_labels_and_user_labels(make_spec: SpecFactory) -> None:
    """Every container carries managed, uid, namespace, name and spec-hash, next to the user's labels."""
    desired = build(make_spec(labels={"team": "a", "tier": "web"}))
    assert desired.labels == {
        labels.MANAGED: "true",
        labels.UID: UID,
        labels.NAMESPACE: "team-a",
        labels.NAME: "web",
        labels.SPEC_HASH: desired.spec_hash,
        "team": "a",
        "tier": "web",
    }
    assert labels.MANAGED_FILTER == "dockyard.dev/managed=true"


def test_reserved_user_labels_are_refused_even_past_validation(make_spec: SpecFactory) -> None:
    """A spec that skipped validation (model_construct) still cannot overwrite our identity labels."""
    valid = make_spec()
    sneaky = valid.model_copy(update={"labels": {labels.UID: "someone-else"}})
    with pytest.raises(UnbuildableSpecError, match="reserved"):
        build(sneaky)


def test_command_args_and_working_dir(make_spec: SpecFactory) -> None:
    """command -> Entrypoint, args -> Cmd, workingDir cleaned the way Docker cleans it."""
    config = build(make_spec(command=["sleep"], args=["300"], workingDir="/srv//app/./x/../")).create_config
    assert config["Entrypoint"] == ["sleep"]
    assert config["Cmd"] == ["300"]
    assert config["WorkingDir"] == "/srv/app"


def test_args_without_command_keep_the_image_entrypoint(make_spec: SpecFactory) -> None:
    config = build(make_spec(args=["-c", "echo hi"])).create_config
    assert "Entrypoint" not in config
    assert config["Cmd"] == ["-c", "echo hi"]


def test_env_resolution_order_and_sorting(make_spec: SpecFactory) -> None:
    """envFrom in order, then env; later wins; the result is sorted by name so the hash is stable."""
    spec = make_spec(
        envFrom=[
            {"configMapRef": {"name": "settings"}},
            {"secretRef": {"name": "creds"}, "prefix": "DB_"},
            {"configMapRef": {"name": "overrides"}},
        ],
        env=[
            {"name": "ZED", "value": "last"},
            {"name": "MODE", "value": "from-env"},
            {"name": "EMPTY"},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
            {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "level"}}},
        ],
    )
    refs = ResolvedRefs(
        secrets={"creds": {"token": b"s3cret", "user": b"app"}},
        config_maps={
            "settings": {"MODE": "from-configmap", "level": "debug", "COLOR": "blue"},
            "overrides": {"COLOR": "red"},
        },
    )
    assert build(spec, refs).create_config["Env"] == [
        "COLOR=red",
        "DB_token=s3cret",
        "DB_user=app",
        "EMPTY=",
        "LEVEL=debug",
        "MODE=from-env",
        "TOKEN=s3cret",
        "ZED=last",
        "level=debug",
    ]


def test_optional_references_are_skipped(make_spec: SpecFactory) -> None:
    """Missing optional objects or keys leave variables unset; a value from envFrom then stays."""
    spec = make_spec(
        envFrom=[{"secretRef": {"name": "absent", "optional": True}}, {"configMapRef": {"name": "base"}}],
        env=[
            {"name": "A", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k", "optional": True}}},
            {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "base", "key": "nope", "optional": True}}},
            {"name": "KEEP", "valueFrom": {"configMapKeyRef": {"name": "base", "key": "nope", "optional": True}}},
        ],
    )
    refs = ResolvedRefs(config_maps={"base": {"KEEP": "from-envfrom"}})
    assert build(spec, refs).create_config["Env"] == ["KEEP=from-envfrom"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]},
            re.escape("env[A].valueFrom.secretKeyRef: Secret 'db' does not exist"),
        ),
        (
            {"env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "nope"}}}]},
            re.escape("env[A].valueFrom.configMapKeyRef: key 'nope' of ConfigMap 'cm' does not exist"),
        ),
        ({"envFrom": [{"secretRef": {"name": "db"}}]}, r"envFrom\[0\].secretRef: Secret 'db' does not exist"),
        (
            {"volumes": [{"name": "c", "mountPath": "/c", "configMap": {"name": "absent"}}]},
            r"volumes\[c\].configMap: ConfigMap 'absent' does not exist",
        ),
        (
            {
                "volumes": [
                    {
                        "name": "s",
                        "mountPath": "/s",
                        "secret": {"secretName": "tls", "items": [{"key": "k", "path": "k"}]},
                    }
                ]
            },
            r"volumes\[s\].secret: key 'k' of Secret 'tls' does not exist",
        ),
    ],
)
def test_missing_required_references_name_object_and_key(
    make_spec: SpecFactory, fields: dict[str, Any], message: str
) -> None:
    refs = ResolvedRefs(secrets={"tls": {"other": b"x"}}, config_maps={"cm": {"k": "v"}})
    with pytest.raises(MissingReferenceError, match=message) as caught:
        build(make_spec(**fields), refs)
    assert isinstance(caught.value, ContainersError)
    assert isinstance(caught.value, DockyardError)


@pytest.mark.parametrize(("raw", "reason"), [(b"\xff\xfe", "not UTF-8"), (b"a\x00b", "NUL")])
def test_unusable_env_values_are_refused_without_echoing_them(make_spec: SpecFactory, raw: bytes, reason: str) -> None:
    spec = make_spec(env=[{"name": "BIN", "valueFrom": {"secretKeyRef": {"name": "blob", "key": "data"}}}])
    with pytest.raises(UnusableValueError, match=reason) as caught:
        build(spec, ResolvedRefs(secrets={"blob": {"data": raw}}))
    assert "key 'data' of Secret 'blob'" in str(caught.value)
    assert repr(raw) not in str(caught.value)


def test_ports(make_spec: SpecFactory) -> None:
    """Every port is exposed; those with hostPort are published, sorted, with hostIP normalized."""
    spec = make_spec(
        ports=[
            {"containerPort": 8080, "hostPort": 18080},
            {"containerPort": 53, "protocol": "UDP", "hostPort": 5353, "hostIP": "::0001"},
            {"containerPort": 9090},
        ]
    )
    config = build(spec).create_config
    assert config["ExposedPorts"] == {"53/udp": {}, "8080/tcp": {}, "9090/tcp": {}}
    assert config["HostConfig"]["PortBindings"] == {
        "53/udp": [{"HostIp": "::1", "HostPort": "5353"}],
        "8080/tcp": [{"HostIp": "", "HostPort": "18080"}],
    }


@pytest.mark.parametrize(
    ("check", "test"),
    [
        ({"exec": {"command": ["wget", "-q", "http://127.0.0.1/"]}}, ["CMD", "wget", "-q", "http://127.0.0.1/"]),
        (
            {"shell": {"command": "wget -q -O- http://127.0.0.1/ || exit 1"}},
            ["CMD-SHELL", "wget -q -O- http://127.0.0.1/ || exit 1"],
        ),
    ],
)
def test_healthcheck_forms_and_durations_in_nanoseconds(
    make_spec: SpecFactory, check: dict[str, Any], test: list[str]
) -> None:
    spec = make_spec(
        healthCheck={**check, "intervalSeconds": 5, "timeoutSeconds": 2, "retries": 4, "startPeriodSeconds": 30}
    )
    assert build(spec).create_config["Healthcheck"] == {
        "Test": test,
        "Interval": 5_000_000_000,
        "Timeout": 2_000_000_000,
        "Retries": 4,
        "StartPeriod": 30_000_000_000,
    }


@pytest.mark.parametrize(("policy", "docker"), [("Always", "always"), ("OnFailure", "on-failure"), ("Never", "no")])
def test_restart_policy(make_spec: SpecFactory, policy: str, docker: str) -> None:
    assert build(make_spec(restartPolicy=policy)).create_config["HostConfig"]["RestartPolicy"] == {"Name": docker}


def test_resources_become_nanocpus_and_bytes(make_spec: SpecFactory) -> None:
    host = build(make_spec(resources={"limits": {"cpu": "500m", "memory": "256Mi"}})).create_config["HostConfig"]
    assert host["NanoCpus"] == 500_000_000
    assert host["Memory"] == 256 * 1024 * 1024
    only_cpu = build(make_spec(resources={"limits": {"cpu": 2}})).create_config["HostConfig"]
    assert only_cpu["NanoCpus"] == 2_000_000_000
    assert "Memory" not in only_cpu


def test_stop_grace_period_and_pull_policy(make_spec: SpecFactory) -> None:
    desired = build(make_spec(image="busybox", stopGracePeriodSeconds=3))
    assert desired.create_config["StopTimeout"] == 3
    assert desired.pull_policy == "Always"  # no tag: the Kubernetes default
    assert build(make_spec(imagePullPolicy="Never")).pull_policy == "Never"


def test_binds_for_host_paths_and_docker_volumes(make_spec: SpecFactory) -> None:
    spec = make_spec(
        volumes=[
            {"name": "data", "mountPath": "/var/lib/app/", "dockerVolume": {"name": "app-data"}},
            {"name": "logs", "mountPath": "/logs", "hostPath": {"path": "/srv/logs//"}, "readOnly": True},
        ]
    )
    assert build(spec).create_config["HostConfig"]["Binds"] == ["/srv/logs:/logs:ro", "app-data:/var/lib/app"]


def test_a_colon_in_a_bind_path_is_refused(make_spec: SpecFactory) -> None:
    """A colon would be parsed by Docker as the bind separator (or an option): refuse instead of guessing."""
    spec = make_spec(volumes=[{"name": "x", "mountPath": "/data:ro", "hostPath": {"path": "/srv"}}])
    with pytest.raises(UnbuildableSpecError, match=r"volumes\[x\].mountPath: '/data:ro' contains ':'"):
        build(spec)


def test_referenced_objects(make_spec: SpecFactory) -> None:
    """All Secrets and ConfigMaps a spec references, so the caller can read (and watch) exactly those."""
    spec = make_spec(
        imagePullSecrets=[{"name": "regcred"}],
        envFrom=[{"secretRef": {"name": "s-envfrom"}}, {"configMapRef": {"name": "c-envfrom"}}],
        env=[
            {"name": "A", "valueFrom": {"secretKeyRef": {"name": "s-env", "key": "k"}}},
            {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "c-env", "key": "k"}}},
            {"name": "C", "value": "literal"},
        ],
        volumes=[
            {"name": "s", "mountPath": "/s", "secret": {"secretName": "s-vol"}},
            {"name": "c", "mountPath": "/c", "configMap": {"name": "c-vol"}},
            {"name": "h", "mountPath": "/h", "hostPath": {"path": "/h"}},
        ],
    )
    assert referenced_secrets(spec) == {"regcred", "s-envfrom", "s-env", "s-vol"}
    assert referenced_config_maps(spec) == {"c-envfrom", "c-env", "c-vol"}
    assert referenced_secrets(make_spec()) == set()
    assert referenced_config_maps(make_spec()) == set()


def test_secret_values_stay_out_of_reprs(make_spec: SpecFactory) -> None:
    """Logging a DesiredContainer or ResolvedRefs by accident must not leak Secret data."""
    spec = make_spec(
        env=[{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}],
        volumes=[{"name": "s", "mountPath": "/run/secrets", "secret": {"secretName": "creds"}}],
    )
    refs = ResolvedRefs(secrets={"creds": {"token": b"hunter2-very-secret"}})
    desired = build(spec, refs)
    assert "TOKEN=hunter2-very-secret" in desired.create_config["Env"]
    for text in (repr(desired), repr(refs), repr(desired.files), str(desired.labels)):
        assert "hunter2" not in text


def test_create_body_is_a_private_copy(make_spec: SpecFactory) -> None:
    desired = build(make_spec(env=[{"name": "A", "value": "1"}]))
    body = desired.create_body()
    body["Env"].append("B=2")
    body["HostConfig"]["Memory"] = 1
    assert desired.create_config["Env"] == ["A=1"]
    assert "Memory" not in desired.create_config["HostConfig"]


def test_a_quantity_that_escaped_admission_is_a_containers_error(make_spec: SpecFactory) -> None:
    """model_construct skips validation; the reconciler still gets an error it handles, not a crash."""
    spec = make_spec()
    limits = DockerContainerSpec.model_validate(
        {"image": "x:1", "hostRef": {"name": "h"}, "resources": {"limits": {"cpu": "1"}}}
    ).resources
    assert limits is not None
    assert limits.limits is not None
    bad_limits = limits.limits.model_copy(update={"cpu": "0"})
    bad = spec.model_copy(update={"resources": limits.model_copy(update={"limits": bad_limits})})
    with pytest.raises(UnbuildableSpecError, match=r"resources.limits: cpu '0' must be greater than zero"):
        build(bad)


def test_service_imports_map_their_host_names_to_the_gateway_and_change_the_hash(make_spec: SpecFactory) -> None:
    spec = make_spec(
        serviceImports=[
            {"service": "pg", "namespace": "db", "port": 5432},
            {"service": "api", "port": 8080, "alias": "api.internal"},
        ]
    )
    desired = build_desired(
        namespace="team-a", name="web", uid=UID, spec=spec, refs=ResolvedRefs(), import_gateway="172.17.0.1"
    )
    assert desired.create_config["HostConfig"]["ExtraHosts"] == ["api.internal:172.17.0.1", "pg.db:172.17.0.1"]
    assert desired.spec_hash != build(make_spec()).spec_hash, "a new import recreates the container"
    with pytest.raises(UnbuildableSpecError, match="gateway"):
        build(spec)


def test_two_imports_on_one_port_are_refused_by_the_model(make_spec: SpecFactory) -> None:
    with pytest.raises(ValueError, match="a port of its own"):
        make_spec(serviceImports=[{"service": "a", "port": 80}, {"service": "b", "port": 80}])
