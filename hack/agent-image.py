"""Make the agent's container image for linux/amd64 and linux/arm64 from the single-file binaries, without docker.

    python3 hack/agent-image.py [--tag dockyard-agent:dev]

Reads dist/dockyard-agent-linux-ARCH (hack/build-agent) and the bullseye runtime roots (hack/bullseye-root),
writes:
  dist/dockyard-agent-image.oci.tar              an OCI image layout with an image index of both platforms
                                                 (`skopeo copy oci-archive:... docker://REGISTRY/...`, or
                                                 `docker buildx imagetools`, publish it; containerd imports it)
  dist/dockyard-agent-image-linux-ARCH.docker.tar  one platform in `docker save` format, for `docker load`
                                                 (Docker 20.10 cannot load an image index)

Each image is one layer: glibc, libgcc and zlib from Debian 11 (the binary's only dependencies outside
itself), the binary as /usr/local/bin/dockyard-agent, an /etc/passwd with user 65532, and /tmp. The layers are
reproducible (sorted, owner 0, mtime 0), so equal inputs give equal digests.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from tarentry import add

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist"
#: Debian packages whose files the binary needs at run time (glibc's loader and libraries, libgcc_s for
#: pthread_cancel, zlib for the bootloader) and nothing else: no shell, no package manager.
PACKAGES = ("libc6", "libgcc-s1", "zlib1g")
#: Files of those packages that are never loaded (locales, docs, gconv charset modules the agent never uses).
SKIP_PREFIXES = ("usr/share/", "usr/lib/x86_64-linux-gnu/gconv/", "usr/lib/aarch64-linux-gnu/gconv/", "etc/ld.so.conf")
USER = 65532
GO_ARCH = {"amd64": "amd64", "arm64": "arm64"}


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int
    data: bytes

    def descriptor(self, media_type: str, **extra: object) -> dict[str, object]:
        return {"mediaType": media_type, "digest": self.digest, "size": self.size, **extra}


def blob(data: bytes) -> Blob:
    return Blob("sha256:" + hashlib.sha256(data).hexdigest(), len(data), data)


def package_files(root: Path, package: str) -> list[str]:
    """Paths (relative, no leading /) a package installed into `root`, from dpkg's own list."""
    lists = sorted((root / "var/lib/dpkg/info").glob(f"{package}:*.list")) + sorted(
        (root / "var/lib/dpkg/info").glob(f"{package}.list")
    )
    if not lists:
        raise SystemExit(f"agent-image: {package} is not installed in {root}")
    return [line.lstrip("/") for line in lists[0].read_text().splitlines() if line not in ("/.", "")]


def layer(root: Path, binary: Path) -> bytes:
    """The image's one layer as an uncompressed tar."""
    entries: dict[str, Path] = {}
    real_root = root.resolve()
    for package in PACKAGES:
        for rel in package_files(root, package):
            if rel.startswith(SKIP_PREFIXES):
                continue
            # Debian 11 roots are merged-/usr (/lib -> usr/lib): dpkg's paths go through those links, a layer's
            # may not (Docker refuses a directory under a symlink), so each parent is resolved to where it is.
            parent = Path(os.path.realpath(root / Path(rel).parent)).relative_to(real_rel := real_root)
            resolved = str(parent / Path(rel).name) if str(parent) != "." else Path(rel).name
            entries[resolved] = real_rel / resolved
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        if (root / top).is_symlink():
            entries[top] = root / top
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        # dpkg's lists leave out some parents (/lib): every entry's parent directories come first.
        parents = {str(p) for rel in entries for p in Path(rel).parents if str(p) != "."}
        # Mount points a runtime fills (Docker makes them itself; a chroot such as hack/in-root needs them).
        extra = {"etc", "usr", "usr/local", "usr/local/bin", "dev", "proc", "run", "sys"}
        # One sorted pass: a directory always comes before what is in it.
        for rel in sorted(set(entries) | parents | extra):
            path = entries.get(rel)
            if path is None:
                add(tar, rel, kind=tarfile.DIRTYPE, mode=0o755)
            elif path.is_symlink():
                add(tar, rel, kind=tarfile.SYMTYPE, link=str(path.readlink()), mode=0o777)
            elif path.is_dir():
                add(tar, rel, kind=tarfile.DIRTYPE, mode=0o755)
            elif path.is_file():
                add(tar, rel, source=path, mode=path.stat().st_mode & 0o777)
        # The one-file binary unpacks itself into TMPDIR on each start; mount a tmpfs here with --read-only.
        add(tar, "tmp", kind=tarfile.DIRTYPE, mode=0o1777)
        add(
            tar,
            "etc/passwd",
            data=f"root:x:0:0:root:/root:/nonexistent\nagent:x:{USER}:{USER}::/tmp:/nonexistent\n".encode(),
        )
        add(tar, "etc/group", data=f"root:x:0:\nagent:x:{USER}:\n".encode())
        add(tar, "usr/local/bin/dockyard-agent", source=binary, mode=0o755)
    return out.getvalue()


def image_config(arch: str, diff_id: str) -> dict[str, object]:
    return {
        "architecture": GO_ARCH[arch],
        "os": "linux",
        "config": {
            "User": f"{USER}:{USER}",
            "Entrypoint": ["/usr/local/bin/dockyard-agent"],
            "Env": ["PATH=/usr/local/bin", "TMPDIR=/tmp"],
            "Labels": {
                "org.opencontainers.image.source": "dockyard",
                "org.opencontainers.image.title": "dockyard-agent",
            },
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "hack/agent-image.py: glibc from Debian 11, the single-file agent"}],
    }


def runtime_root(arch: str) -> Path:
    out = subprocess.run(
        [str(ROOT / "hack" / "bullseye-root"), "runtime", arch], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"agent-image: hack/bullseye-root runtime {arch} failed:\n{out.stderr}")
    return Path(out.stdout.strip())


def write_tar(path: Path, files: dict[str, bytes]) -> None:
    tmp = path.with_suffix(path.suffix + ".partial")
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            add(tar, name, data=files[name])
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tag", default="dockyard-agent:dev", help="the image name (default dockyard-agent:dev)")
    parser.add_argument("--arch", action="append", choices=sorted(GO_ARCH), help="only these (default: both)")
    args = parser.parse_args(argv)
    arches = args.arch or ["amd64", "arm64"]
    oci: dict[str, bytes] = {"oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode()}
    manifests = []
    for arch in arches:
        binary = DIST / f"dockyard-agent-linux-{arch}"
        if not binary.is_file():
            raise SystemExit(f"agent-image: {binary} is missing: make agent (hack/build-agent --arch {arch})")
        raw = layer(runtime_root(arch), binary)
        diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
        compressed = blob(gzip.compress(raw, compresslevel=9, mtime=0))
        config = blob(json.dumps(image_config(arch, diff_id), sort_keys=True).encode())
        manifest = blob(
            json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": config.descriptor("application/vnd.oci.image.config.v1+json"),
                    "layers": [compressed.descriptor("application/vnd.oci.image.layer.v1.tar+gzip")],
                },
                sort_keys=True,
            ).encode()
        )
        for b in (compressed, config, manifest):
            oci[f"blobs/sha256/{b.digest.split(':', 1)[1]}"] = b.data
        manifests.append(
            manifest.descriptor(
                "application/vnd.oci.image.manifest.v1+json", platform={"architecture": GO_ARCH[arch], "os": "linux"}
            )
        )
        # `docker load` format: the config, the uncompressed layer and a manifest.json naming the tag.
        hex_config = config.digest.split(":", 1)[1]
        hex_layer = diff_id.split(":", 1)[1]
        docker = {
            f"{hex_config}.json": config.data,
            f"{hex_layer}/layer.tar": raw,
            "manifest.json": json.dumps(
                [
                    {
                        "Config": f"{hex_config}.json",
                        "RepoTags": [f"{args.tag}-linux-{arch}"],
                        "Layers": [f"{hex_layer}/layer.tar"],
                    }
                ]
            ).encode(),
        }
        write_tar(DIST / f"dockyard-agent-image-linux-{arch}.docker.tar", docker)
        print(
            f"agent-image: linux/{arch} layer {compressed.size / 2**20:.1f} MiB compressed, {len(raw) / 2**20:.1f} MiB"
        )
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {**m, "annotations": {"org.opencontainers.image.ref.name": args.tag.rpartition(":")[2] or "latest"}}
            for m in manifests
        ],
    }
    # One index.json naming the index blob keeps the layout valid for tools that want a single entry point.
    index_blob = blob(json.dumps(index, sort_keys=True).encode())
    oci[f"blobs/sha256/{index_blob.digest.split(':', 1)[1]}"] = index_blob.data
    oci["index.json"] = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                index_blob.descriptor(
                    "application/vnd.oci.image.index.v1+json",
                    annotations={"org.opencontainers.image.ref.name": args.tag.rpartition(":")[2] or "latest"},
                )
            ],
        },
        sort_keys=True,
    ).encode()
    write_tar(DIST / "dockyard-agent-image.oci.tar", oci)
    print(f"agent-image: wrote {DIST / 'dockyard-agent-image.oci.tar'} ({', '.join('linux/' + a for a in arches)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
