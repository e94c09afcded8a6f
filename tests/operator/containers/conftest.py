"""Shared helpers for the container domain tests: spec building and a model of what Docker's inspect shows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from docker_model import inspect_of

from dockyard_operator.api.dockercontainer import DockerContainerSpec

SpecFactory = Callable[..., DockerContainerSpec]
InspectFactory = Callable[..., dict[str, Any]]


@pytest.fixture
def make_spec() -> SpecFactory:
    """Build a DockerContainerSpec from camelCase JSON overrides on top of a minimal valid spec."""

    def make(**fields: Any) -> DockerContainerSpec:
        document: dict[str, Any] = {"image": "dockyard-test/busybox:1", "hostRef": {"name": "edge-1"}}
        document.update(fields)
        return DockerContainerSpec.model_validate(document)

    return make


@pytest.fixture
def docker_inspect() -> InspectFactory:
    """A Docker Engine API v1.41 inspect body for a container created from ``desired.create_config``
    (docker_model.inspect_of: image defaults merged into Config, HostConfig stored as sent)."""
    return inspect_of
