"""Building hack/yamux-peer: a missing Go toolchain is a clear failure with install instructions, never a skip."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard_mux.testing import build_yamux_peer

PEER_SOURCE = Path(__file__).resolve().parents[2] / "hack" / "yamux-peer"


def test_missing_go_explains_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a real PATH without go on it
    with pytest.raises(FileNotFoundError, match=r"install Go >= 1\.26 from https://go\.dev/dl/"):
        build_yamux_peer(PEER_SOURCE, cache_root=tmp_path)


def test_build_is_cached_by_source_hash(yamux_peer: Path) -> None:
    assert yamux_peer.is_file()
    assert build_yamux_peer(PEER_SOURCE) == yamux_peer  # same sources, same cached binary
    assert (PEER_SOURCE / "go.sum").read_text().count("github.com/hashicorp/yamux v0.1.2") == 2
