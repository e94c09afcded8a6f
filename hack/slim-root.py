"""Cut a Debian root filesystem down to a Python runtime: the base of the operator image (hack/build-images).

    python3 hack/slim-root.py FULL_ROOT OUT.tar      (as root: it runs ldd inside FULL_ROOT with chroot)

FULL_ROOT is a debootstrap'd bookworm with python3.11 and ca-certificates. The result holds what the distroless
Python images hold and nothing else: the interpreter, its standard library, the shared libraries that it, its
extension modules and the usual wheels load (found with the root's own ldd, so nothing is guessed), CA
certificates, the C.UTF-8 locale, /etc/passwd and /etc/group with the non-root user 65532, and /tmp. No shell, no
package manager, no coreutils: an operator image needs none of them, and an attacker who gets code execution
finds no tools.
The tarball is reproducible (sorted names, owner 0, mtime 0).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from tarentry import add

PYTHON = "usr/bin/python3.11"
STDLIB = "usr/lib/python3.11"
#: Parts of the standard library an operator never imports: the IDE, GUI toolkit, bundled pip, 2to3, docs data
#: for pydoc, the test package, and Debian's hint file that would make pip refuse to install (no pip here anyway).
STDLIB_SKIP = ("idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data", "test", "turtle.py")
#: Whole trees and single files copied as they are (symlinks kept).
KEEP = (
    "usr/lib/locale/C.utf8",
    "usr/lib/ssl/cert.pem",  # OpenSSL's default paths: symlinks into /etc/ssl
    "usr/lib/ssl/certs",
    "usr/lib/ssl/openssl.cnf",
    "etc/ssl/certs/ca-certificates.crt",
    "etc/ssl/openssl.cnf",
    "etc/nsswitch.conf",
    "etc/host.conf",
    "etc/os-release",
    "usr/lib/os-release",
)
#: Libraries Python itself does not load but the wheels' extension modules do (ldd of the operator's site):
#: libgcc_s and libstdc++ for the Rust and C++ ones (pydantic_core, cryptography, protobuf), and glibc's
#: compatibility stubs that manylinux wheels still name.
WHEEL_LIBRARIES = ("libgcc_s.so.1", "libstdc++.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1", "libutil.so.1")
#: The merged-/usr symlinks of Debian 12 (the ELF interpreter is /lib64/ld-linux-x86-64.so.2).
TOP_LINKS = ("bin", "lib", "lib64", "sbin")
USER = 65532
PASSWD = f"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{USER}:{USER}:nonroot:/home/nonroot:/sbin/nologin\n"
GROUP = f"root:x:0:\nnonroot:x:{USER}:\n"


def shared_libraries(root: Path, elves: list[str]) -> set[str]:
    """Every library (as a path inside root, and the symlinks leading to it) that the ELF files load."""
    found: set[str] = set()
    for elf in elves:
        out = subprocess.run(
            ["chroot", str(root), "/usr/bin/ldd", "/" + elf], capture_output=True, text=True, check=True
        ).stdout
        for line in out.splitlines():
            if "not found" in line:
                raise SystemExit(f"slim-root: {elf} needs a library the root does not have: {line.strip()}")
            parts = line.split()
            # "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
            path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
            if path.startswith("/"):
                found.add(path.lstrip("/"))
    return found


def closure(root: Path, paths: set[str]) -> set[str]:
    """The paths plus every symlink target and parent directory they go through, as paths inside root."""
    out: set[str] = set()
    pending = list(paths)
    while pending:
        rel = pending.pop()
        if rel in out:
            continue
        # A path through a symlinked directory (lib/x86_64-linux-gnu/libc.so.6, lib -> usr/lib) is kept as the
        # symlink plus the path it resolves to.
        parts = Path(rel).parts
        through = next((i for i in range(1, len(parts)) if (root / os.path.join(*parts[:i])).is_symlink()), None)
        if through is not None:
            parent = os.path.join(*parts[:through])
            pending += [parent, os.path.join(_target(root, parent), *parts[through:])]
            continue
        out.add(rel)
        if (root / rel).is_symlink():
            pending.append(_target(root, rel))
    return out


def _target(root: Path, rel: str) -> str:
    """Where the symlink `rel` points, as a path inside root."""
    target = os.readlink(root / rel)
    return os.path.normpath(
        target.lstrip("/") if target.startswith("/") else os.path.join(os.path.dirname(rel), target)
    )


def stdlib_files(root: Path) -> set[str]:
    files = set()
    for path in (root / STDLIB).rglob("*"):
        rel = path.relative_to(root / STDLIB)
        if rel.parts[0] in STDLIB_SKIP or "EXTERNALLY-MANAGED" in rel.parts:
            continue
        if path.is_file() or path.is_symlink():
            files.add(str(path.relative_to(root)))
    return files


def tree(root: Path, rel: str) -> set[str]:
    path = root / rel
    if path.is_dir() and not path.is_symlink():
        return {str(p.relative_to(root)) for p in path.rglob("*") if p.is_file() or p.is_symlink()} | {rel}
    return {rel} if path.exists() or path.is_symlink() else set()


def write(root: Path, files: set[str], out: Path) -> None:
    directories = {os.path.join(*Path(f).parts[:i]) for f in files for i in range(1, len(Path(f).parts))}
    directories -= {f for f in files if (root / f).is_symlink()}
    with tarfile.open(out, "w") as tar:
        for name in sorted(directories | {"tmp", "home", "home/nonroot", "etc", "root"}):
            mode = 0o1777 if name == "tmp" else 0o700 if name == "root" else 0o755
            add(tar, name, kind=tarfile.DIRTYPE, mode=mode, owner=USER if name == "home/nonroot" else 0)
        for name in sorted(files - directories):
            path = root / name
            if path.is_symlink():
                add(tar, name, kind=tarfile.SYMTYPE, link=os.readlink(path), mode=0o777)
            elif path.is_dir():
                add(tar, name, kind=tarfile.DIRTYPE, mode=0o755)
            else:
                add(tar, name, source=path, mode=path.stat().st_mode & 0o7777)
        add(tar, "etc/passwd", data=PASSWD.encode())
        add(tar, "etc/group", data=GROUP.encode())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    root: Path = args.root
    if not (root / PYTHON).exists():
        print(f"slim-root: {root} has no {PYTHON}", file=sys.stderr)
        return 1
    stdlib = stdlib_files(root)
    elves = [PYTHON, *sorted(f for f in stdlib if f.endswith(".so"))]
    wheel_libraries = [
        str(p.relative_to(root)) for name in WHEEL_LIBRARIES for p in root.glob(f"usr/lib/*-linux-gnu/{name}")
    ]
    elves += wheel_libraries
    files = stdlib | shared_libraries(root, elves) | {PYTHON, *wheel_libraries}
    for rel in KEEP:
        files |= tree(root, rel)
    files = closure(root, files) | {link for link in TOP_LINKS if (root / link).is_symlink()}
    files -= {"etc/passwd", "etc/group"}
    write(root, files, args.out)
    print(f"slim-root: {len(files)} paths, {args.out.stat().st_size // 1_000_000} MB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
