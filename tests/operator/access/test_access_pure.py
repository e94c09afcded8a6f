"""Pure parts of the access API: framing, who the front proxy names, argument parsing, stats arithmetic."""

from __future__ import annotations

import struct

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from dockyard_operator.access import commands, protocol
from dockyard_operator.access.errors import AccessError, UsageError
from dockyard_operator.access.requestheader import RequestHeaderConfig, authenticate
from dockyard_operator.dockerapi.client import FrameReader

CONFIG = RequestHeaderConfig(client_ca="x", allowed_names=("front-proxy-client",))
PROXY = {"subject": ((("commonName", "front-proxy-client"),),)}


def _headers(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


def test_frames_carry_a_channel_byte_and_close_names_the_channel() -> None:
    assert protocol.parse(protocol.frame(protocol.STDIN, b"ls\n")) == (protocol.STDIN, b"ls\n")
    assert protocol.close_frame(protocol.STDIN) == b"\xff\x00"
    channel, data = protocol.parse(protocol.resize_frame(132, 50))
    assert (channel, protocol.parse_resize(data)) == (protocol.RESIZE, (132, 50))
    with pytest.raises(ValueError, match="not possible"):
        protocol.parse_resize(b'{"Width": 0, "Height": 10}')
    with pytest.raises(ValueError, match="no channel"):
        protocol.parse(b"")


def test_the_user_comes_from_headers_only_with_the_front_proxy_certificate() -> None:
    headers = _headers(
        ("X-Remote-User", "alice"),
        ("X-Remote-Group", "devs"),
        ("X-Remote-Group", "system:authenticated"),
        ("X-Remote-Extra-Scopes", "a"),
        ("x-remote-extra-scopes", "b"),
        ("X-Remote-Extra-Example.com%2fteam", "x"),
    )
    user = authenticate(CONFIG, PROXY, headers)
    assert (user.name, user.groups, user.extra) == (
        "alice",
        ("devs", "system:authenticated"),
        {"scopes": ["a", "b"], "example.com/team": ["x"]},
    )
    with pytest.raises(AccessError, match="no front-proxy client certificate"):
        authenticate(CONFIG, None, headers)
    other = {"subject": ((("commonName", "mallory"),),)}
    with pytest.raises(AccessError, match="not an allowed front proxy"):
        authenticate(CONFIG, other, headers)
    with pytest.raises(AccessError, match="named no user"):
        authenticate(CONFIG, PROXY, _headers(("X-Remote-Group", "devs")))


def test_the_configmap_without_a_requestheader_ca_is_a_clear_error() -> None:
    with pytest.raises(AccessError, match="--requestheader-client-ca-file"):
        RequestHeaderConfig.from_configmap({"client-ca-file": "x"})
    config = RequestHeaderConfig.from_configmap(
        {"requestheader-client-ca-file": "pem", "requestheader-allowed-names": '["a","b"]'}
    )
    assert config.allowed_names == ("a", "b")
    assert config.username_headers == ("X-Remote-User",)


def test_docker_frames_are_split_across_reads() -> None:
    data = struct.pack(">BxxxI", 1, 3) + b"out" + struct.pack(">BxxxI", 2, 4) + b"err!"
    reader = FrameReader()
    assert reader.feed(data[:5]) == []
    assert reader.feed(data[5:13]) == [(1, b"out")]
    assert reader.feed(data[13:]) == [(2, b"err!")]


def test_targets_and_ports_parse_as_kubectl_does() -> None:
    assert commands.parse_target("dc/web") == ("DockerContainer", "web")
    assert commands.parse_target("web") == ("DockerContainer", "web")
    assert commands.parse_target("ddeploy/api") == ("DockerDeployment", "api")
    assert commands.parse_target("dockerjobs.dockyard.dev/nightly") == ("DockerJob", "nightly")
    with pytest.raises(UsageError):
        commands.parse_target("pod/web")
    with pytest.raises(UsageError):
        commands.parse_target("dc/")
    assert commands.parse_ports("8080:80") == (8080, 80)
    assert commands.parse_ports("80") == (80, 80)
    assert commands.parse_ports(":80") == (0, 80)
    with pytest.raises(UsageError):
        commands.parse_ports("x:80")
    with pytest.raises(UsageError):
        commands.parse_ports("80:0")


def test_usage_is_counted_as_docker_stats_does() -> None:
    stats = {
        "cpu_stats": {"cpu_usage": {"total_usage": 3_000_000}, "system_cpu_usage": 20_000_000, "online_cpus": 2},
        "precpu_stats": {"cpu_usage": {"total_usage": 1_000_000}, "system_cpu_usage": 10_000_000},
        "memory_stats": {"usage": 50 * 2**20, "stats": {"inactive_file": 10 * 2**20}},
        "networks": {"eth0": {"rx_bytes": 100, "tx_bytes": 20}, "eth1": {"rx_bytes": 1, "tx_bytes": 2}},
    }
    assert commands.usage_of(stats) == (0.4, 40 * 2**20, 101, 22)
    assert commands.usage_of({}) == (0.0, 0, 0, 0)
