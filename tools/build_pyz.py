"""Build dist/astrlite.pyz: astrlite plus its pinned, hash-checked runtime dependencies.

`python -m zipapp` is not reproducible, so the archive is written here: sorted entries,
a fixed timestamp and mode, stored (not deflated: zipimport reads them faster), and
bytecode compiled by the building interpreter beside each source (zipimport cannot
cache bytecode itself; another Python version falls back to the sources).
Two builds with the same Python are byte-identical.
"""

from __future__ import annotations

import hashlib
import importlib.util
import marshal
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR_REQUIREMENTS = ROOT / "tools" / "vendor.txt"
BUILD = ROOT / "build" / "vendor"
DIST = ROOT / "dist" / "astrlite.pyz"
SHEBANG = b"#!/usr/bin/env python3\n"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
SKIPPED_PARTS = {"__pycache__", "bin"}

# Kept free of syntax newer than Python 3.0 so an old interpreter can print the message.
BOOTSTRAP = b"""import sys
if sys.version_info < (3, 10):
    sys.stderr.write("astrlite needs Python 3.10 or newer; this is Python %d.%d.\\n"
                     % sys.version_info[:2])
    sys.exit(1)
from astrlite.cli import main
sys.exit(main())
"""


def vendor() -> Path:
    """Install the pinned wheels once per requirements file (a stamp records which)."""
    digest = hashlib.sha256(VENDOR_REQUIREMENTS.read_bytes()).hexdigest()
    stamp = BUILD / ".stamp"
    if stamp.exists() and stamp.read_text() == digest:
        return BUILD
    shutil.rmtree(BUILD, ignore_errors=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--require-hashes",
            "--only-binary",
            ":all:",
            "--no-compile",
            "--target",
            str(BUILD),
            "-r",
            str(VENDOR_REQUIREMENTS),
        ],
        check=True,
    )
    stamp.write_text(digest)
    return BUILD


def collect(base: Path, top: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for path in sorted(top.rglob("*")):
        relative = path.relative_to(base)
        if path.is_dir() or SKIPPED_PARTS & set(relative.parts) or path.suffix == ".pyc":
            continue
        files[relative.as_posix()] = path.read_bytes()
    return files


def bytecode(name: str, source: bytes) -> bytes:
    """An unchecked-hash .pyc: zipimport uses it without comparing timestamps."""
    code = compile(source, name, "exec", dont_inherit=True)
    flags = (0b01).to_bytes(4, "little")  # hash-based, unchecked
    source_hash = importlib.util.source_hash(source)
    return importlib.util.MAGIC_NUMBER + flags + source_hash + marshal.dumps(code)


def write_archive(files: dict[str, bytes], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    with open(temporary, "wb") as out:
        out.write(SHEBANG)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
            for name in sorted(files):
                info = zipfile.ZipInfo(name, FIXED_TIME)
                info.external_attr = 0o644 << 16
                info.create_system = 3
                archive.writestr(info, files[name])
    temporary.chmod(0o755)
    temporary.replace(target)


def main(argv: list[str]) -> int:
    target = Path(argv[0]).resolve() if argv else DIST
    vendored = vendor()
    files: dict[str, bytes] = {"__main__.py": BOOTSTRAP}
    for top in sorted(vendored.iterdir()):
        if top.name.startswith(".") or top.name in SKIPPED_PARTS:
            continue
        files.update(collect(vendored, top) if top.is_dir() else {top.name: top.read_bytes()})
    files.update(collect(ROOT, ROOT / "astrlite"))
    for name in [n for n in files if n.endswith(".py") and n != "__main__.py"]:
        files[name[:-3] + ".pyc"] = bytecode(name, files[name])
    write_archive(files, target)
    print(f"built {target} ({target.stat().st_size // 1024} KiB, {len(files)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
