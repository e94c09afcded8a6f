"""`dockyard host join --arch`: the install lines name the file hack/build-agent writes and both systemd units."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard_operator.hosts import agent_install

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("arch", agent_install.ARCHES)
def test_install_lines_name_this_architectures_binary_and_existing_units(arch: str) -> None:
    lines = agent_install.install_lines(arch)
    assert f"install -m 0755 dockyard-agent-linux-{arch} /usr/local/bin/dockyard-agent" in lines
    text = "\n".join(lines)
    units = [word for word in text.split() if word.startswith("manifests/agent/")]
    assert len(units) == 2
    for unit in units:
        assert (ROOT / unit.rstrip(",;")).is_file(), unit
    other = next(a for a in agent_install.ARCHES if a != arch)
    assert other not in text


def test_unknown_architecture_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="amd64, arm64"):
        agent_install.binary_name("riscv64")
