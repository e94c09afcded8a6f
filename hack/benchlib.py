"""What the benchmark scripts in hack/ share: the machine line, ratios, process memory and CPU, the docs section.

Importable from hack/ (scripts put hack/ on sys.path); standard library only.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024


def machine() -> str:
    """One line saying what ran the benchmark (these machines are shared: numbers are ratios within one run)."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    distro = "Linux"
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                distro = line.split("=", 1)[1].strip('"')
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    return f"{os.cpu_count()} cores ({model}){memory}, {distro}, Python {platform.python_version()}, shared and noisy"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (a one-file agent binary is a bootloader plus a child)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(child) for child in (task / "children").read_text().split())
    return pids


def rss_mib(pid: int) -> float:
    """Resident memory of `pid` and its descendants, in MiB."""
    total_kib = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
    return total_kib / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` and its descendants so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for member in process_tree(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14 and 15 of stat)
    return total


def go_build(source_dir: Path, name: str, *, static: bool = False) -> Path:
    """Build the Go program in `source_dir` once per source + toolchain into ~/.cache/dockyard/<name>/<hash>/."""
    go = shutil.which("go")
    if go is None:
        raise FileNotFoundError("go is not installed (Debian: apt-get install golang, or see hack/install-system-deps)")
    digest = hashlib.sha256(subprocess.run([go, "version"], check=True, capture_output=True, text=True).stdout.encode())
    for path in sorted(source_dir.iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(b"static" if static else b"")
    target = Path.home() / ".cache" / "dockyard" / name / digest.hexdigest()[:16] / name
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{name}.{os.getpid()}.tmp")
    env = {**os.environ, **({"CGO_ENABLED": "0"} if static else {})}
    subprocess.run([go, "build", "-mod=readonly", "-o", str(partial), "."], cwd=source_dir, check=True, env=env)
    os.replace(partial, target)
    return target


def write_section(title: str, section: str, *, after: str | None = None) -> Path:
    """Replace the "## <title>" section of docs/benchmarks.md, or add it after "## <after>" (or at the end).

    Other sections belong to other benchmarks, so the file is read right before it is written and only this
    section changes; the new file replaces the old one in one rename.
    """
    path = REPO / "docs" / "benchmarks.md"
    body = f"## {title}\n\n{section}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    ours = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    if ours.search(text):
        text = ours.sub(lambda _: body + "\n", text, count=1)
    elif after is not None and (match := re.search(rf"^## {re.escape(after)}\n.*?(?=^## |\Z)", text, re.DOTALL | re.M)):
        before, rest = text[: match.end()].rstrip("\n"), text[match.end() :]
        text = f"{before}\n\n{body}\n{rest}"
    else:
        text = text.rstrip("\n") + "\n\n" + body
    text = text.rstrip("\n") + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path
