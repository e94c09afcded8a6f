"""The open-files limit both ends raise at start (a socket per service connection)."""

from __future__ import annotations

import resource
import subprocess
import sys


def test_the_soft_limit_is_raised_to_the_hard_one_in_a_fresh_process() -> None:
    # In a child process whose soft limit starts low, so this session's own limit is not touched.
    code = (
        "import resource\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
        "from dockyard_tunnel.limits import raise_open_files_limit\n"
        "print(raise_open_files_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    returned, soft, hard = (int(x) for x in out)
    assert soft == returned
    assert soft == (hard if hard != resource.RLIM_INFINITY else 1 << 20)
    assert soft > 256
