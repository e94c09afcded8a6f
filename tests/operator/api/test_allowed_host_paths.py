"""DockerHost.spec.allowedHostPaths: hostPath binds are denied unless the host's administrator allows them."""

from __future__ import annotations

import pytest

from dockyard_operator.api.dockerhost import DockerHostSpec


def _spec(*paths: str) -> DockerHostSpec:
    return DockerHostSpec.model_validate({"allowedHostPaths": list(paths)})


def test_nothing_is_allowed_by_default() -> None:
    assert not DockerHostSpec().allows_host_path("/srv/data")
    assert not DockerHostSpec().allows_host_path("/")


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/srv/data", True),
        ("/srv/data/", True),
        ("/srv/data/app/db", True),
        ("/srv//data/./app", True),
        ("/srv/database", False),  # a prefix of the name is not a parent directory
        ("/srv", False),
        ("/", False),
        ("/srv/data/../../etc", False),  # never let .. climb out
        ("/var/run/docker.sock", False),
    ],
)
def test_paths_at_or_below_an_allowed_prefix(path: str, allowed: bool) -> None:
    assert _spec("/srv/data", "/opt/app/").allows_host_path(path) is allowed


def test_allowing_root_allows_everything() -> None:
    assert _spec("/").allows_host_path("/var/run/docker.sock")


def test_relative_prefixes_are_rejected() -> None:
    with pytest.raises(ValueError, match="allowedHostPaths"):
        _spec("srv/data")
