"""Pure decisions: which host a container goes to, and which registry credential a pull uses."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import pytest

from dockyard_operator.api.dockercontainer import DockerContainerSpec
from dockyard_operator.api.dockerhost import DockerHostSpec
from dockyard_operator.containers import pulling, scheduling


def _spec(**fields: Any) -> DockerContainerSpec:
    return DockerContainerSpec.model_validate({"image": "busybox:1", **fields})


def _host(
    name: str,
    labels: dict[str, str],
    namespace_selector: dict[str, Any] | None = None,
    *,
    reachable: bool = True,
    operator_class: str = "dockyard",
    deleting: bool = False,
) -> scheduling.HostView:
    spec: dict[str, Any] = {"operatorClass": operator_class}
    if namespace_selector is not None:
        spec["namespaceSelector"] = namespace_selector
    return scheduling.HostView(
        name=name,
        spec=DockerHostSpec.model_validate(spec),
        labels=labels,
        reachable=reachable,
        decided=True,
        deleting=deleting,
    )


HOSTS = {
    "a": _host("a", {"site": "lab"}),
    "b": _host("b", {"site": "lab"}),
    "c": _host("c", {"site": "edge"}, {"matchLabels": {"team": "edge"}}),
}


def _with(**changes: scheduling.HostView) -> dict[str, scheduling.HostView]:
    return {**HOSTS, **changes}


def _unreachable(*names: str) -> dict[str, scheduling.HostView]:
    return {n: dataclasses.replace(h, reachable=n not in names) for n, h in HOSTS.items()}


def _decide(spec: DockerContainerSpec, **kw: Any) -> scheduling.Decision:
    args: dict[str, Any] = {
        "spec": spec,
        "namespace": "apps",
        "namespace_labels": {},
        "current_host": None,
        "hosts": HOSTS,
        "operator_class": "dockyard",
        "load": lambda name: 0,
    }
    args.update(kw)
    return scheduling.schedule(**args)


def test_host_ref_places_on_that_host_even_when_unreachable() -> None:
    """hostRef is the user's explicit choice: reachability is reported later, never a reason to move."""
    decision = _decide(_spec(hostRef={"name": "a"}), hosts=_unreachable("a"))
    assert (decision.host, decision.reason) == ("a", "HostRef")


def test_host_ref_to_a_missing_host_or_a_namespace_it_does_not_admit_is_unschedulable() -> None:
    assert _decide(_spec(hostRef={"name": "zz"})).reason == "HostNotFound"
    decision = _decide(_spec(hostRef={"name": "c"}), namespace_labels={"team": "web"})
    assert (decision.host, decision.reason) == (None, "NamespaceNotAllowed")
    assert _decide(_spec(hostRef={"name": "c"}), namespace_labels={"team": "edge"}).host == "c"


def test_host_ref_to_a_host_of_another_class_or_being_deleted_is_unschedulable() -> None:
    hosts = _with(x=_host("x", {}, operator_class="team-b"), y=_host("y", {}, deleting=True))
    decision = _decide(_spec(hostRef={"name": "x"}), hosts=hosts)
    assert (decision.host, decision.reason) == (None, "OtherOperatorClass")
    assert "team-b" in decision.message
    assert _decide(_spec(hostRef={"name": "y"}), hosts=hosts).reason == "HostDeleting"


def test_selector_picks_the_least_loaded_reachable_match_and_breaks_ties_by_name() -> None:
    spec = _spec(hostSelector={"matchLabels": {"site": "lab"}})
    assert _decide(spec).host == "a"
    assert _decide(spec, load=lambda name: {"a": 3, "b": 1}[name]).host == "b"
    assert _decide(spec, hosts=_unreachable("a")).host == "b"
    assert _decide(spec, hosts=_unreachable("a", "b", "c")).reason == "NoEligibleHost"


def test_selector_never_picks_a_host_of_another_class_or_one_being_deleted() -> None:
    spec = _spec(hostSelector={"matchLabels": {"site": "lab"}})
    hosts = _with(a=_host("a", {"site": "lab"}, operator_class="team-b"), b=_host("b", {"site": "lab"}, deleting=True))
    assert _decide(spec, hosts=hosts).reason == "NoEligibleHost"
    # ...and a container already on a host being deleted moves off it.
    assert _decide(spec, hosts=hosts, current_host="b").host is None


def test_selector_choice_sticks_while_the_host_still_matches() -> None:
    """Moving a container means destroying it: a less busy host is no reason to move."""
    spec = _spec(hostSelector={"matchLabels": {"site": "lab"}})
    assert _decide(spec, current_host="b", load=lambda name: {"a": 0, "b": 9}[name]).host == "b"
    # ...but a host that no longer matches is left for a new choice.
    assert _decide(_spec(hostSelector={"matchLabels": {"site": "edge"}}), current_host="b",
                   namespace_labels={"team": "edge"}).host == "c"  # fmt: skip


def test_empty_selector_matches_every_host_that_admits_the_namespace() -> None:
    decision = _decide(_spec(hostSelector={}), load=lambda name: {"a": 5, "b": 5, "c": 0}[name])
    assert decision.host == "a"  # c would be emptier, but does not admit namespace "apps"


@pytest.mark.parametrize(
    ("previous", "target", "hosts", "expected"),
    [
        (None, "a", HOSTS, None),
        ("a", "a", HOSTS, None),
        ("a", "b", HOSTS, scheduling.Leave.REMOVE),
        ("a", None, HOSTS, scheduling.Leave.REMOVE),
        ("a", "b", _unreachable("a"), scheduling.Leave.WAIT),
        ("gone", "b", HOSTS, scheduling.Leave.RELEASE),
        ("a", "b", {**HOSTS, "a": _host("a", {}, reachable=False, deleting=True)}, scheduling.Leave.RELEASE),
        ("a", "b", {**HOSTS, "a": _host("a", {}, reachable=True, deleting=True)}, scheduling.Leave.REMOVE),
        ("a", "b", {**HOSTS, "a": _host("a", {}, operator_class="team-b")}, scheduling.Leave.RELEASE),
        # Right after a restart a host being deleted has no verdict yet: that is not "unreachable".
        (
            "a",
            "b",
            {**HOSTS, "a": dataclasses.replace(_host("a", {}, reachable=False, deleting=True), decided=False)},
            scheduling.Leave.WAIT,
        ),
        # A host whose spec this operator cannot read (a newer CRD) still exists: nothing is released or moved.
        ("a", "b", {**HOSTS, "a": dataclasses.replace(_host("a", {}), invalid=True)}, scheduling.Leave.WAIT),
    ],
)
def test_leaving_the_previous_host(
    previous: str | None, target: str | None, hosts: dict[str, scheduling.HostView], expected: scheduling.Leave | None
) -> None:
    """Never two copies: remove first when reachable, wait when merely unreachable, release when it is gone."""
    result = scheduling.departure(previous=previous, target=target, hosts=hosts, operator_class="dockyard")
    assert (result.how if result is not None else None) is expected


def test_eligible_hosts_are_where_a_lost_copy_may_be() -> None:
    spec = _spec(hostSelector={"matchLabels": {"site": "lab"}})
    hosts = _with(z=_host("z", {"site": "lab"}, operator_class="team-b"))
    assert scheduling.eligible_hosts(spec=spec, namespace_labels={}, hosts=hosts, operator_class="dockyard") == [
        "a",
        "b",
    ]


def _dockerconfig(auths: dict[str, Any]) -> dict[str, bytes]:
    return {".dockerconfigjson": json.dumps({"auths": auths}).encode()}


def test_registry_of_an_image_reference() -> None:
    assert pulling.registry_of("busybox") == "docker.io"
    assert pulling.registry_of("team/app:1") == "docker.io"
    assert pulling.registry_of("registry.example.com/team/app@sha256:ab") == "registry.example.com"
    assert pulling.registry_of("localhost:5000/app") == "localhost:5000"


def test_auth_matches_the_image_registry_in_any_key_spelling() -> None:
    secrets = [
        _dockerconfig({"https://other.example.com": {"username": "x", "password": "y"}}),
        _dockerconfig({"https://registry.example.com/v1/": {"username": "me", "password": "pw"}}),
    ]
    auth = pulling.auth_for("registry.example.com/team/app:2", secrets)
    assert auth == {"username": "me", "password": "pw", "serveraddress": "https://registry.example.com/v1/"}
    assert pulling.auth_for("quay.io/x/y", secrets) is None


def test_docker_hub_images_use_the_index_entry_and_the_auth_field_is_decoded() -> None:
    encoded = base64.b64encode(b"hubuser:s3cret:with:colons").decode()
    secrets = [_dockerconfig({"https://index.docker.io/v1/": {"auth": encoded}})]
    auth = pulling.auth_for("team/app", secrets)
    assert auth is not None
    assert (auth["username"], auth["password"]) == ("hubuser", "s3cret:with:colons")


def test_malformed_pull_secrets_are_skipped_not_fatal() -> None:
    secrets = [{".dockerconfigjson": b"{not json"}, {"other": b"x"}, _dockerconfig({"docker.io": "nope"})]
    assert pulling.auth_for("busybox", secrets) is None
