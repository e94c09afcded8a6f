"""`python -m dockyard_tunnel.server`: token hashing and one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dockyard_tunnel.auth import hash_token


def _run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dockyard_tunnel.server", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_hash_token_prints_the_stored_form() -> None:
    result = _run("--hash-token", stdin="my-token\n")
    assert result.returncode == 0
    assert result.stdout.strip() == hash_token("my-token")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "--tokens-file is required"),
        (("--tokens-file", "t", "--listen", "nowhere"), "--listen must be HOST:PORT"),
        (("--tokens-file", "t"), "TLS needs tls_dir"),
        (("--tokens-file", "/nonexistent/tokens", "--insecure"), "cannot read token hash file"),
        (("--bogus",), "unrecognized arguments: --bogus"),
    ],
)
def test_wrong_settings_print_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    result = _run(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("dockyard-tunnel-server: error: ")
    assert message in lines[0]
