"""The address of the data plane: where its listeners bind and what the EndpointSlices of DockerServices hold.

In a cluster it is the Pod's IP ($POD_IP from the downward API), so a Service's traffic reaches the operator Pod
that holds the agents' sessions. Outside one it is configured, or the address of the default route. Never loopback:
the API server refuses 127.0.0.0/8 and ::1 in an EndpointSlice, and nothing but this machine could reach it.
"""

from __future__ import annotations

import ipaddress
import os
import socket

from dockyard_operator.services.errors import ServiceAddressError

#: Only used to ask the kernel which source address a packet to it would get; nothing is sent (UDP connect).
_PROBE = ("192.0.2.1", 9)


def data_plane_address(configured: str = "", *, environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    text = configured or env.get("POD_IP", "") or _default_route_address()
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise ServiceAddressError(f"the DockerService address {text!r} is not an IP address") from None
    if ip.is_loopback or ip.is_unspecified or ip.is_link_local:
        raise ServiceAddressError(
            f"the DockerService address {ip} cannot be in an EndpointSlice (loopback, unspecified or link-local); "
            "set --service-address to an address of this machine that the cluster can reach"
        )
    return str(ip)


def _default_route_address() -> str:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(_PROBE)
            return str(probe.getsockname()[0])
    except OSError as exc:
        raise ServiceAddressError(
            f"no default route to find the DockerService address from ({exc}); set --service-address"
        ) from None
