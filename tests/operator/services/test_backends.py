"""Which selected DockerContainers serve which service port, and which are Ready."""

from __future__ import annotations

from typing import Any

from dockyard_operator.api.dockerservice import DockerServiceSpec
from dockyard_operator.services.backends import backends, view

SPEC = DockerServiceSpec.model_validate(
    {
        "selector": {"matchLabels": {"app": "web"}},
        "ports": [
            {"name": "http", "port": 80, "targetPort": "http"},
            {"name": "metrics", "port": 9100, "targetPort": 9100},
            {"name": "same", "port": 8443},
        ],
    }
)


def container(name: str, *, labels: dict[str, str] | None = None, ready: bool = True, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "labels": {"app": "web"} if labels is None else labels},
        "spec": {"ports": [{"name": "http", "containerPort": 8080}]},
        "status": {
            "host": "edge-1",
            "ip": "172.17.0.2",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            **status,
        },
    }


def test_ports_resolve_by_name_by_number_and_by_default() -> None:
    (b,) = backends(SPEC, [container("a")])
    assert b.ports == {"http": 8080, "metrics": 9100, "same": 8443}
    assert b.ready


def test_a_container_without_the_named_port_does_not_serve_that_port() -> None:
    other = container("b")
    other["spec"]["ports"] = [{"name": "web", "containerPort": 80}]
    (b,) = backends(SPEC, [other])
    assert "http" not in b.ports
    assert b.ports["metrics"] == 9100


def test_only_selected_containers_and_only_ready_running_ones_take_connections() -> None:
    found = backends(
        SPEC,
        [
            container("c-unready", ready=False),
            container("b-other", labels={"app": "db"}),
            container("a-ok"),
            container("d-no-ip", ip=None),
            {**container("e-deleting"), "metadata": {**container("e")["metadata"], "name": "e-deleting",
                                                     "deletionTimestamp": "2026-01-01T00:00:00Z"}},
        ],
    )  # fmt: skip
    assert [(b.container, b.ready) for b in found] == [
        ("a-ok", True),
        ("c-unready", False),
        ("d-no-ip", False),
        ("e-deleting", False),
    ]


def test_the_view_ignores_what_a_service_does_not_look_at() -> None:
    a = container("a")
    restarted = container("a", restartCount=3, drift={"fields": ["env"]})
    assert view(a) == view(restarted)
    assert view(a) != view(container("a", ready=False))
    assert view(a) != view(container("a", labels={"app": "other"}))
