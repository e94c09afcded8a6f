"""Who may import which Service, and which listeners a host's agent gets."""

from __future__ import annotations

from typing import Any

from dockyard_operator.services.imports import ALLOW_ANNOTATION, allowed, condition, listeners


def ns(name: str, allow: str | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "annotations": {ALLOW_ANNOTATION: allow} if allow is not None else {}}}


NAMESPACES = {"shop": ns("shop"), "db": ns("db", "shop, billing"), "open": ns("open", "*"), "closed": ns("closed")}


def dc(
    name: str, *imports: dict[str, Any], namespace: str = "shop", deleting: bool = False, created: str = ""
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "creationTimestamp": created or None}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"serviceImports": list(imports)}, "status": {"host": "edge"}}


def test_the_own_namespace_is_always_allowed_others_only_by_their_annotation() -> None:
    assert allowed("shop", "shop", None)
    assert allowed("shop", "db", NAMESPACES["db"])
    assert allowed("billing", "db", NAMESPACES["db"])
    assert not allowed("web", "db", NAMESPACES["db"])
    assert allowed("anyone", "open", NAMESPACES["open"])
    assert not allowed("shop", "closed", NAMESPACES["closed"])
    assert not allowed("shop", "gone", None)


def test_allowed_imports_become_listeners_on_the_gateway_and_refused_ones_do_not() -> None:
    found, conflicts = listeners(
        [
            dc("a", {"service": "api", "port": 8080}, {"service": "pg", "namespace": "db", "port": 5432}),
            dc("b", {"service": "secret", "namespace": "closed", "port": 9999}),
        ],
        "172.17.0.1",
        NAMESPACES.get,
    )
    assert [(x.address, x.port, x.target) for x in found] == [
        ("172.17.0.1", 5432, "db/pg:5432"),
        ("172.17.0.1", 8080, "shop/api:8080"),
    ]
    assert conflicts == {}


def test_one_port_one_target_per_host_the_container_created_first_keeps_it() -> None:
    found, conflicts = listeners(
        [
            dc("a", {"service": "other", "port": 8080}, namespace="aaa", created="2026-01-02T00:00:00Z"),
            dc("z", {"service": "api", "port": 8080}, created="2026-01-01T00:00:00Z"),
            dc("m", {"service": "api", "port": 8080}, created="2026-01-03T00:00:00Z"),  # same target: shared
            dc("gone", {"service": "x", "port": 7000}, deleting=True),
        ],
        "10.0.0.1",
        NAMESPACES.get,
    )
    assert [x.target for x in found] == ["shop/api:8080"], "a newcomer never takes a port over (aaa sorts first)"
    assert list(conflicts) == ["aaa/a"]
    assert "already leads to shop/api:8080" in conflicts["aaa/a"][0]


def test_the_condition_says_what_is_refused_and_why() -> None:
    assert condition(dc("plain"), NAMESPACES.get, []) is None
    ok = condition(dc("a", {"service": "pg", "namespace": "db", "port": 5432, "alias": "db"}), NAMESPACES.get, [])
    assert ok == (True, "Allowed", "db:5432 -> db/pg:5432")
    refused = condition(dc("b", {"service": "x", "namespace": "closed", "port": 1}), NAMESPACES.get, [])
    assert refused is not None
    assert refused[:2] == (False, "NotAllowed")
    assert ALLOW_ANNOTATION in refused[2]
    clash = condition(dc("c", {"service": "x", "port": 1}), NAMESPACES.get, ["port 1 on this host already leads"])
    assert clash is not None
    assert clash[:2] == (False, "PortConflict")


def test_a_port_the_agent_cannot_listen_on_is_reported() -> None:
    obj = dc("a", {"service": "pg", "port": 5432}, {"service": "api", "port": 8080})
    failed = condition(obj, NAMESPACES.get, [], {5432: "cannot listen: Address already in use"})
    assert failed == (
        False,
        "ListenFailed",
        "the agent cannot listen: port 5432: cannot listen: Address already in use",
    )
    assert condition(obj, NAMESPACES.get, [], {9999: "other"})[:2] == (True, "Allowed"), "another port's trouble"  # type: ignore[index]
    whole = condition(obj, NAMESPACES.get, [], {0: "unreadable imports document"})
    assert whole is not None
    assert whole[1] == "ListenFailed"
