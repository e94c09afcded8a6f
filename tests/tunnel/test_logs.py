"""Log lines of the programs: JSON, also what libraries log through the standard library."""

from __future__ import annotations

import json
import subprocess
import sys

PROGRAM = """
import logging, structlog
from dockyard_tunnel.logs import configure_json_logs
configure_json_logs(level="info", extra_processors=[lambda _l, _m, e: {**e, "extra": 1}])
structlog.get_logger("ours").info("hello", n=1)
logging.getLogger("opentelemetry.exporter").warning("Failed to export %s spans", 3)
logging.getLogger("aiohttp.access").info("GET / 200")
"""


def test_every_line_is_json_including_standard_library_warnings() -> None:
    out = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True, timeout=30)
    lines = [json.loads(line) for line in out.stderr.splitlines()]
    assert [line["event"] for line in lines] == ["hello", "Failed to export 3 spans"]  # library info: dropped
    ours, theirs = lines
    assert ours["level"] == "info"
    assert ours["n"] == 1
    assert theirs["level"] == "warning"
    assert theirs["logger"] == "opentelemetry.exporter"
    assert all(line["extra"] == 1 and line["timestamp"] for line in lines)
