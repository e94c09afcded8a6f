"""`dockyard status dh/NAME`: a DockerHost at a glance, as `kubectl describe node` reads (pure formatting)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

JSON = dict[str, Any]


def describe(host: JSON, containers: Sequence[JSON] | None, *, now: str = "") -> str:
    """Text for one DockerHost and the DockerContainers placed on it (None: the caller may not list them)."""
    meta, spec, status = host.get("metadata") or {}, host.get("spec") or {}, host.get("status") or {}
    reach = "tunnel (agent dials out)" if "tunnel" in spec else f"direct ({spec.get('url', '?')})"
    rows = [
        ("Name", meta.get("name", "")),
        ("Reached", reach),
        ("Phase", status.get("phase") or "Unknown"),
        ("Agent", status.get("agentVersion") or ("-" if "tunnel" not in spec else "not connected")),
        ("Docker", status.get("dockerVersion") or "-"),
        ("OS/Arch", f"{status.get('operatingSystem') or '?'}/{status.get('architecture') or '?'}"),
        ("Connected since", status.get("connectedSince") or "-"),
        ("Last heartbeat", status.get("lastHeartbeat") or "-"),
        ("Containers (Docker)", str(status.get("containers", "-"))),
    ]
    width = max(len(k) for k, _ in rows) + 2
    out = [f"{k + ':':<{width}}{v}" for k, v in rows]
    out.append("Conditions:")
    out.append(f"  {'TYPE':<16}{'STATUS':<9}{'REASON':<24}MESSAGE")
    for c in status.get("conditions") or []:
        out.append(f"  {c.get('type', ''):<16}{c.get('status', ''):<9}{c.get('reason', ''):<24}{c.get('message', '')}")
    if containers is None:
        out.append("DockerContainers: (not listed: you may not list dockercontainers in all namespaces)")
    else:
        out.append(f"DockerContainers: {len(containers)}")
        out.append(f"  {'NAMESPACE':<20}{'NAME':<32}{'PHASE':<12}READY")
        for obj in sorted(containers, key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"])):
            st = obj.get("status") or {}
            ready = next((c.get("status") for c in st.get("conditions") or [] if c.get("type") == "Ready"), "-")
            out.append(
                f"  {obj['metadata']['namespace']:<20}{obj['metadata']['name']:<32}{st.get('phase', ''):<12}{ready}"
            )
    return "\n".join(out) + "\n"
