"""One entry of a reproducible tar (owner 0, mtime 0): the image layers of hack/agent-image.py and the base root of
hack/slim-root.py are written with it, so equal inputs give equal digests."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path


def add(tar: tarfile.TarFile, name: str, *, data: bytes | None = None, source: Path | None = None,
        mode: int = 0o644, kind: bytes = tarfile.REGTYPE, link: str = "", owner: int = 0) -> None:  # fmt: skip
    """Add a file (`data` or the bytes of `source`), a directory (`kind=DIRTYPE`) or a symlink (`SYMTYPE`, `link`),
    owned by uid and gid `owner`."""
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, owner, owner, "", ""
    info.mode, info.type = mode, kind
    if kind == tarfile.SYMTYPE:
        info.linkname = link
        tar.addfile(info)
    elif kind == tarfile.DIRTYPE:
        tar.addfile(info)
    else:
        content = data if data is not None else source.read_bytes() if source is not None else b""
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
