"""The address of the data plane: where its listeners bind and what the EndpointSlices of DockerServices hold.

In a cluster it is the Pod's IP ($POD_IP from the downward API, set in manifests/operator/deployment.yaml), so a
Service's traffic reaches the operator Pod that holds the agents' sessions. Outside one it must be configured
(`--service-address`): guessing the machine's LAN address would expose every DockerService's backends there,
unauthenticated, to whoever shares the network. Never loopback: the API server refuses 127.0.0.0/8 and ::1 in an
EndpointSlice, and nothing but this machine could reach it.
"""

from __future__ import annotations

import ipaddress
import os

from dockyard_operator.services.errors import ServiceAddressError


def data_plane_address(configured: str = "", *, environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    text = configured or env.get("POD_IP", "")
    if not text:
        raise ServiceAddressError(
            "DockerServices need an address for the data plane: $POD_IP in a cluster, --service-address outside one"
        )
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
