"""The agent's systemd units: both load (systemd-analyze verify), and the one for systemd 239-246 uses nothing
newer than the systemd it is for and never puts the token in an argument or the environment."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "manifests" / "agent"
#: The systemd release that introduced each [Service] setting the units use (systemd's NEWS). A setting newer
#: than the running systemd is ignored with a warning; one newer than 245 would leave Ubuntu 20.04 unprotected.
SINCE = {
    "LoadCredential": 247, "ProtectClock": 245, "ProtectKernelLogs": 244, "ProtectHostname": 242,
    "RestrictSUIDSGID": 242, "LockPersonality": 235, "RestrictNamespaces": 233, "ProtectKernelTunables": 232,
    "ProtectKernelModules": 232, "ProtectControlGroups": 232, "RemoveIPC": 232, "DynamicUser": 232,
    "RestrictRealtime": 231, "ProtectHome": 214, "ProtectSystem": 214, "RestrictAddressFamilies": 211,
    "PrivateDevices": 209, "SystemCallArchitectures": 209, "NoNewPrivileges": 187,
}  # fmt: skip


def settings(unit: Path) -> dict[str, str]:
    lines = [line for line in unit.read_text().splitlines() if line and not line.startswith(("#", "["))]
    return dict(line.split("=", 1) for line in lines)


@pytest.mark.parametrize("name", ["dockyard-agent.service", "dockyard-agent-systemd239.service"])
def test_unit_passes_systemd_analyze_verify(name: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing: apt-get install systemd", pytrace=False)
    # verify wants the program and the environment file to exist: point them at ones that do.
    text = (UNITS / name).read_text().replace("/usr/local/bin/dockyard-agent", "/bin/true")
    unit = tmp_path / name
    unit.write_text(text.replace("EnvironmentFile=/", "EnvironmentFile=-/"))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "Unknown" not in result.stderr, result.stderr


def test_legacy_unit_needs_nothing_newer_than_ubuntu_20_04s_systemd() -> None:
    unit = UNITS / "dockyard-agent-systemd239.service"
    used = settings(unit)
    newer = {key: SINCE[key] for key in used if SINCE.get(key, 0) > 245}
    assert not newer, f"{unit.name} uses settings newer than systemd 245: {newer}"
    assert not [value for value in used.values() if "%d" in value], "%d (the credentials directory) needs 247"
    assert used["User"] == "dockyard-agent", "a static user must own the token file (a DynamicUser cannot)"
    assert used["Environment"] == "DOCKYARD_AGENT_TOKEN_FILE=/etc/dockyard/agent.token"
    assert not [value for value in used.values() if re.search(r"--token\b|DOCKYARD_TOKEN=", value)]


@pytest.mark.parametrize("name", ["dockyard-agent.service", "dockyard-agent-systemd239.service"])
def test_every_hardening_setting_has_a_known_minimum_version(name: str) -> None:
    plain = {"Type", "EnvironmentFile", "Environment", "ExecStart", "KillSignal", "KillMode", "TimeoutStopSec",
             "Restart", "RestartSec", "User", "Group", "SupplementaryGroups", "PrivateTmp", "CapabilityBoundingSet",
             "Description", "Documentation", "After", "Wants", "WantedBy"}  # fmt: skip
    unknown = set(settings(UNITS / name)) - plain - set(SINCE)
    assert not unknown, f"add the systemd version that introduced {unknown} to SINCE (and to the unit's comments)"
