"""Secret/ConfigMap volumes as files (and their tar archive), and the spec hash."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from typing import Any

import pytest

from dockyard_operator.api import labels
from dockyard_operator.api.dockercontainer import DockerContainerSpec
from dockyard_operator.containers.desired import (
    SPEC_HASH_LENGTH,
    DesiredContainer,
    FileToCopy,
    ResolvedRefs,
    build_desired,
    files_tar,
)
from dockyard_operator.containers.errors import UnbuildableSpecError

SpecFactory = Callable[..., DockerContainerSpec]  # the make_spec fixture (conftest.py)


def build(spec: DockerContainerSpec, refs: ResolvedRefs | None = None, *, uid: str = "uid-1") -> DesiredContainer:
    return build_desired(namespace="ns", name="app", uid=uid, spec=spec, refs=refs or ResolvedRefs())


def members(archive: bytes) -> dict[str, tuple[str, int, bytes | None, int, int]]:
    """name -> (type, mode, content, uid, gid) of every member."""
    result: dict[str, tuple[str, int, bytes | None, int, int]] = {}
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for info in tar.getmembers():
            kind = "dir" if info.isdir() else "file"
            extracted = tar.extractfile(info) if info.isfile() else None
            content = extracted.read() if extracted is not None else None
            result[info.name] = (kind, info.mode, content, info.uid, info.gid)
    return result


def test_all_keys_become_files_with_the_default_mode(make_spec: SpecFactory) -> None:
    spec = make_spec(
        volumes=[
            {"name": "tls", "mountPath": "/etc/tls", "secret": {"secretName": "tls"}},
            {"name": "conf", "mountPath": "/etc/app", "configMap": {"name": "conf", "defaultMode": 0o640}},
        ]
    )
    refs = ResolvedRefs(
        secrets={"tls": {"tls.key": b"\x00binary-key", "tls.crt": b"cert"}},
        config_maps={"conf": {"app.yaml": "a: 1\n"}},
    )
    desired = build(spec, refs)
    assert desired.files == (
        FileToCopy(path="/etc/app/app.yaml", content=b"a: 1\n", mode=0o640),
        FileToCopy(path="/etc/tls/tls.crt", content=b"cert", mode=0o444),
        FileToCopy(path="/etc/tls/tls.key", content=b"\x00binary-key", mode=0o444),
    )
    assert desired.directories == ("/etc/app", "/etc/tls")
    assert "Binds" not in desired.create_config["HostConfig"]


def test_items_select_keys_paths_and_modes(make_spec: SpecFactory) -> None:
    spec = make_spec(
        volumes=[
            {
                "name": "creds",
                "mountPath": "/run/creds/",
                "secret": {
                    "secretName": "db",
                    "defaultMode": 0o400,
                    "items": [
                        {"key": "password", "path": "db/password"},
                        {"key": "user", "path": "./user.txt", "mode": 0o444},
                    ],
                },
            }
        ]
    )
    refs = ResolvedRefs(secrets={"db": {"password": b"pw", "user": b"app", "unused": b"x"}})
    desired = build(spec, refs)
    assert desired.files == (
        FileToCopy(path="/run/creds/db/password", content=b"pw", mode=0o400),
        FileToCopy(path="/run/creds/user.txt", content=b"app", mode=0o444),
    )
    assert desired.directories == ("/run/creds", "/run/creds/db")


def test_optional_missing_objects_and_keys_give_what_exists(make_spec: SpecFactory) -> None:
    """Like Kubernetes: an optional missing object is an empty directory, an optional missing key is skipped."""
    spec = make_spec(
        volumes=[
            {"name": "a", "mountPath": "/a", "secret": {"secretName": "absent", "optional": True}},
            {
                "name": "b",
                "mountPath": "/b",
                "configMap": {
                    "name": "partial",
                    "optional": True,
                    "items": [{"key": "here", "path": "here"}, {"key": "gone", "path": "gone"}],
                },
            },
        ]
    )
    desired = build(spec, ResolvedRefs(config_maps={"partial": {"here": "1"}}))
    assert desired.files == (FileToCopy(path="/b/here", content=b"1", mode=0o444),)
    assert desired.directories == ("/a", "/b")


def test_two_files_on_one_path_are_refused(make_spec: SpecFactory) -> None:
    spec = make_spec(
        volumes=[
            {
                "name": "s",
                "mountPath": "/s",
                "secret": {"secretName": "x", "items": [{"key": "a", "path": "f"}, {"key": "b", "path": "./f"}]},
            }
        ]
    )
    with pytest.raises(UnbuildableSpecError, match="two files map to /s/f"):
        build(spec, ResolvedRefs(secrets={"x": {"a": b"1", "b": b"2"}}))


def test_a_path_that_is_both_file_and_directory_is_refused(make_spec: SpecFactory) -> None:
    spec = make_spec(
        volumes=[
            {
                "name": "s",
                "mountPath": "/s",
                "secret": {"secretName": "x", "items": [{"key": "a", "path": "d"}, {"key": "b", "path": "d/f"}]},
            }
        ]
    )
    with pytest.raises(UnbuildableSpecError, match="/s/d is both a file and a directory"):
        build(spec, ResolvedRefs(secrets={"x": {"a": b"1", "b": b"2"}}))


@pytest.mark.parametrize("bind_source", [{"hostPath": {"path": "/srv/data"}}, {"dockerVolume": {"name": "data"}}])
@pytest.mark.parametrize(
    ("bind_at", "secret_at", "item_path"),
    [("/data", "/data/secrets", "k"), ("/data", "/data/deep/er/", "k"), ("/data/sub", "/data", "sub/k")],
)
def test_secret_files_inside_a_bind_are_refused(
    make_spec: SpecFactory, bind_source: dict[str, Any], bind_at: str, secret_at: str, item_path: str
) -> None:
    """Docker mounts binds while extracting an archive: the Secret would land on the host or in the volume."""
    spec = make_spec(
        volumes=[
            {"name": "bind", "mountPath": bind_at, **bind_source},
            {
                "name": "sec",
                "mountPath": secret_at,
                "secret": {"secretName": "x", "items": [{"key": "k", "path": item_path}]},
            },
        ]
    )
    with pytest.raises(UnbuildableSpecError, match=f"lies inside the hostPath/dockerVolume mount {bind_at}$"):
        build(spec, ResolvedRefs(secrets={"x": {"k": b"v"}}))


def test_a_bind_next_to_secret_files_is_fine(make_spec: SpecFactory) -> None:
    """/data-secrets is not inside /data: prefix matching is by path component."""
    spec = make_spec(
        volumes=[
            {"name": "bind", "mountPath": "/data", "hostPath": {"path": "/srv"}},
            {"name": "sec", "mountPath": "/data-secrets", "secret": {"secretName": "x"}},
        ]
    )
    assert [f.path for f in build(spec, ResolvedRefs(secrets={"x": {"k": b"v"}})).files] == ["/data-secrets/k"]


def test_files_tar_holds_directories_then_files_owned_by_root() -> None:
    files = [
        FileToCopy(path="/run/creds/db/password", content=b"pw", mode=0o400),
        FileToCopy(path="/etc/app/app.yaml", content=b"a: 1\n", mode=0o644),
    ]
    archive = files_tar(files, directories=["/run/creds/db", "/run/creds", "/etc/app"])
    found = members(archive)
    assert found == {
        "etc/app": ("dir", 0o755, None, 0, 0),
        "run/creds": ("dir", 0o755, None, 0, 0),
        "run/creds/db": ("dir", 0o755, None, 0, 0),
        "etc/app/app.yaml": ("file", 0o644, b"a: 1\n", 0, 0),
        "run/creds/db/password": ("file", 0o400, b"pw", 0, 0),
    }
    names = list(found)
    assert names.index("run/creds") < names.index("run/creds/db") < names.index("run/creds/db/password")
    # No entries for ancestors like /run or /etc: an entry would reset the mode of an existing directory.
    assert "run" not in found
    assert "etc" not in found
    # Same input, same bytes (no timestamps, deterministic order).
    assert files_tar(list(reversed(files)), directories=["/etc/app", "/run/creds", "/run/creds/db"]) == archive


def test_files_tar_handles_long_paths() -> None:
    path = "/" + "/".join(["d" * 60] * 10) + "/file"
    found = members(files_tar([FileToCopy(path=path, content=b"x", mode=0o444)]))
    assert found == {path.lstrip("/"): ("file", 0o444, b"x", 0, 0)}


def test_archive_of_a_desired_container(make_spec: SpecFactory) -> None:
    spec = make_spec(volumes=[{"name": "e", "mountPath": "/empty", "secret": {"secretName": "gone", "optional": True}}])
    assert members(build(spec).archive()) == {"empty": ("dir", 0o755, None, 0, 0)}


# --- The spec hash --------------------------------------------------------------------------------------------


def full_spec(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "image": "dockyard-test/busybox:1",
        "hostRef": {"name": "edge-1"},
        "command": ["sleep"],
        "args": ["300"],
        "env": [
            {"name": "A", "value": "1"},
            {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}},
        ],
        "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 443, "hostPort": 8443}],
        "volumes": [
            {"name": "cfg", "mountPath": "/etc/app", "configMap": {"name": "c"}},
            {"name": "sec", "mountPath": "/run/sec", "secret": {"secretName": "s"}},
            {"name": "data", "mountPath": "/data", "dockerVolume": {"name": "data"}},
        ],
        "labels": {"team": "a"},
    }
    document.update(overrides)
    return document


REFS = ResolvedRefs(secrets={"s": {"token": b"t0", "cert": b"c0"}}, config_maps={"c": {"app.yaml": "x: 1"}})


def test_hash_is_stable_and_ignores_list_order() -> None:
    first = build(DockerContainerSpec.model_validate(full_spec()), REFS)
    reordered = full_spec()
    reordered["env"] = list(reversed(reordered["env"]))
    reordered["ports"] = list(reversed(reordered["ports"]))
    reordered["volumes"] = list(reversed(reordered["volumes"]))
    second = build(DockerContainerSpec.model_validate(reordered), REFS)
    assert len(first.spec_hash) == SPEC_HASH_LENGTH
    int(first.spec_hash, 16)  # hex
    assert second.spec_hash == first.spec_hash
    assert second.create_config == first.create_config
    assert first.labels[labels.SPEC_HASH] == first.spec_hash


@pytest.mark.parametrize(
    "change",
    [
        {"image": "dockyard-test/busybox:2"},
        {"args": ["301"]},
        {"command": ["/bin/sleep"]},
        {"labels": {"team": "b"}},
        {"restartPolicy": "Never"},
        {"stopGracePeriodSeconds": 30},
        {"workingDir": "/tmp"},
        {"resources": {"limits": {"memory": "64Mi"}}},
        {"ports": [{"containerPort": 80, "hostPort": 8081}]},
    ],
)
def test_hash_changes_with_the_spec(change: dict[str, Any]) -> None:
    base = build(DockerContainerSpec.model_validate(full_spec()), REFS)
    changed = build(DockerContainerSpec.model_validate(full_spec(**change)), REFS)
    assert changed.spec_hash != base.spec_hash


@pytest.mark.parametrize(
    "refs",
    [
        ResolvedRefs(secrets={"s": {"token": b"t1", "cert": b"c0"}}, config_maps={"c": {"app.yaml": "x: 1"}}),
        ResolvedRefs(secrets={"s": {"token": b"t0", "cert": b"c1"}}, config_maps={"c": {"app.yaml": "x: 1"}}),
        ResolvedRefs(secrets={"s": {"token": b"t0", "cert": b"c0"}}, config_maps={"c": {"app.yaml": "x: 2"}}),
        ResolvedRefs(secrets={"s": {"token": b"t0"}}, config_maps={"c": {"app.yaml": "x: 1"}}),
    ],
    ids=["env-secret-rotated", "file-secret-rotated", "configmap-changed", "key-removed"],
)
def test_hash_changes_when_referenced_contents_change(refs: ResolvedRefs) -> None:
    """A rotated Secret or changed ConfigMap must recreate the container, even if only a file changed."""
    spec = DockerContainerSpec.model_validate(full_spec())
    assert build(spec, refs).spec_hash != build(spec, REFS).spec_hash


def test_pull_policy_does_not_change_the_hash() -> None:
    """imagePullPolicy says how to get the image, not what the container is: no recreate for it."""
    spec = DockerContainerSpec.model_validate(full_spec())
    always = DockerContainerSpec.model_validate(full_spec(imagePullPolicy="Always"))
    assert build(spec, REFS).spec_hash == build(always, REFS).spec_hash


def test_hash_depends_on_identity() -> None:
    spec = DockerContainerSpec.model_validate(full_spec())
    assert build(spec, REFS, uid="uid-1").spec_hash != build(spec, REFS, uid="uid-2").spec_hash


@pytest.mark.parametrize(
    "volume",
    [
        {"secret": {"secretName": "x"}},
        {"configMap": {"name": "c"}},
        {"hostPath": {"path": "/srv"}},
    ],
)
def test_a_volume_on_the_root_is_refused(make_spec: SpecFactory, volume: dict[str, Any]) -> None:
    """Files at / would overwrite the image's root, and a directory entry for / would change its mode."""
    spec = make_spec(volumes=[{"name": "root", "mountPath": "//", **volume}])
    with pytest.raises(UnbuildableSpecError, match=r"volumes\[root\].mountPath: a volume cannot be mounted on /"):
        build(spec, ResolvedRefs(secrets={"x": {"k": b"v"}}, config_maps={"c": {"k": "v"}}))
