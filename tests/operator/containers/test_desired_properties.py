"""Properties over generated specs: no drift right after create, and list order never changes the hash."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockyard_operator.api.dockercontainer import DockerContainerSpec
from dockyard_operator.containers import drift
from dockyard_operator.containers.desired import ResolvedRefs, build_desired

InspectFactory = Callable[..., dict[str, Any]]  # the docker_inspect fixture (conftest.py)

_names = st.from_regex(r"[A-Z_][A-Z0-9_]{0,7}", fullmatch=True)
_text = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=12)
_words = st.lists(_text.filter(bool), max_size=4)


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    env_names = draw(st.lists(_names, unique=True, max_size=6))
    env = [{"name": n, "value": draw(_text)} for n in env_names]
    ports = []
    for number, protocol in draw(
        st.lists(st.tuples(st.integers(1, 65535), st.sampled_from(["TCP", "UDP"])), unique=True, max_size=4)
    ):
        port: dict[str, Any] = {"containerPort": number, "protocol": protocol}
        if draw(st.booleans()):
            port["hostPort"] = draw(st.integers(1, 65535))
            if draw(st.booleans()):
                port["hostIP"] = draw(st.sampled_from(["127.0.0.1", "0.0.0.0", "::1"]))
        ports.append(port)
    volumes = []
    for index in range(draw(st.integers(0, 3))):
        source = draw(st.sampled_from(["hostPath", "dockerVolume"]))
        volume: dict[str, Any] = {"name": f"v{index}", "mountPath": f"/mnt/v{index}", "readOnly": draw(st.booleans())}
        volume[source] = {"path": f"/srv/v{index}"} if source == "hostPath" else {"name": f"vol{index}"}
        volumes.append(volume)
    document: dict[str, Any] = {
        "image": draw(st.sampled_from(["busybox", "busybox:1", "registry.local:5000/team/app@sha256:" + "a" * 64])),
        "hostRef": {"name": "h"},
        "command": draw(_words),
        "args": draw(_words),
        "env": env,
        "ports": ports,
        "volumes": volumes,
        "restartPolicy": draw(st.sampled_from(["Always", "OnFailure", "Never"])),
        "labels": draw(st.dictionaries(st.from_regex(r"[a-z][a-z0-9.-]{0,10}", fullmatch=True), _text, max_size=4)),
    }
    if draw(st.booleans()):
        document["workingDir"] = draw(st.sampled_from(["/", "/srv", "/srv/app/", "/a//b/./c"]))
    if draw(st.booleans()):
        document["resources"] = {"limits": {"cpu": draw(st.sampled_from(["1m", "0.5", "2"])), "memory": "64Mi"}}
    if draw(st.booleans()):
        document["healthCheck"] = {
            "shell": {"command": "true"},
            "intervalSeconds": 10,
            "timeoutSeconds": draw(st.integers(1, 10)),
            "startPeriodSeconds": draw(st.integers(0, 5)),
        }
    return document


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=specs(), data=st.data())
def test_no_drift_after_create_and_order_does_not_matter(
    docker_inspect: InspectFactory, document: dict[str, Any], data: st.DataObject
) -> None:
    spec = DockerContainerSpec.model_validate(document)
    desired = build_desired(namespace="ns", name="n", uid="u", spec=spec, refs=ResolvedRefs())
    assert drift.detect_drift(desired, docker_inspect(desired)) == ()
    assert drift.detect_drift(desired, docker_inspect(desired, state="exited")) == ()

    shuffled = dict(document)
    for key in ("env", "ports", "volumes"):
        shuffled[key] = data.draw(st.permutations(document[key]))
    again = build_desired(
        namespace="ns", name="n", uid="u", spec=DockerContainerSpec.model_validate(shuffled), refs=ResolvedRefs()
    )
    assert again.spec_hash == desired.spec_hash
    assert again.create_config == desired.create_config
    json.dumps(desired.create_config)  # the body is plain JSON
    names = [entry.partition("=")[0] for entry in desired.create_config["Env"]]
    assert names == sorted(set(names))
