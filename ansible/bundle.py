"""Pack the stopmo source for the fleet: one reproducible .tar.gz per source state.

Runs on the operator's machine (the Ansible controller), called by the `app` role:

    python ansible/bundle.py --source . --out ansible/.build/stopmo-src.tar.gz

The same files give the same bytes (sorted names, fixed times, owners and modes, no
__pycache__), so the archive's checksum names the code: Ansible copies it only when the
code changed, and a host installs it only when its marker holds another checksum. The
working tree is packed as it is, uncommitted edits included. Prints one JSON line:
{"changed": bool, "sha256": "...", "files": N}; the file is rewritten only when its
content changes.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path

# What `pip install .[extra]` needs (every program, the operators' console `ops` too), what
# the website runs from the tree, and the docs the units link to
# (file:///opt/stopmo/src/docs/...); nothing else.
FOLDERS = ("moviepkg", "stations", "processor", "website", "ops", "docs")
TOP_FILES = ("pyproject.toml", "README.md")
SKIP_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
SKIP_SUFFIXES = (".pyc", ".pyo", ".swp", "~")
PREFIX = "stopmo"


def source_files(source: Path) -> Iterator[Path]:
    """Yield the files to pack, relative to `source`, in a stable order."""
    for name in TOP_FILES:
        yield Path(name)
    for top in FOLDERS:
        for folder, dirs, files in os.walk(source / top):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
            for name in sorted(files):
                if not name.endswith(SKIP_SUFFIXES):
                    yield (Path(folder) / name).relative_to(source)


def pack(source: Path) -> tuple[bytes, int]:
    """Return the reproducible .tar.gz of `source` and the number of files in it."""
    raw = io.BytesIO()
    count = 0
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for relative in source_files(source):
            data = (source / relative).read_bytes()
            info = tarfile.TarInfo(f"{PREFIX}/{relative.as_posix()}")
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
            count += 1
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0), count


def main(argv: Sequence[str] | None = None) -> int:
    """Write the bundle if its content changed; print what happened as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="the stopmo checkout")
    parser.add_argument("--out", type=Path, required=True, help="the .tar.gz to write")
    args = parser.parse_args(argv)
    if not (args.source / "pyproject.toml").is_file():
        print(f"--source: no pyproject.toml in {args.source}", file=sys.stderr)
        return 2
    data, count = pack(args.source)
    changed = not args.out.is_file() or args.out.read_bytes() != data
    if changed:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        partial = args.out.with_name(f".{args.out.name}.{os.getpid()}")
        partial.write_bytes(data)
        os.replace(partial, args.out)
    digest = hashlib.sha256(data).hexdigest()
    print(json.dumps({"changed": changed, "sha256": digest, "files": count}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
