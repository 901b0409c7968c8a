#!/usr/bin/env python3
"""The PWA's one build step: icons, a version module and the service worker's precache list.

No Node toolchain and no bundler: the shell's files are served as they are.
This script only
  1. draws the app icons (PNG, written with zlib + struct) into pwa/icons/,
  2. hashes every shell file (SHA-256 of its bytes),
  3. writes pwa/js/version.js (the build id the app reports as app_version),
  4. rewrites the PRECACHE block in pwa/sw.js with the file → hash map.

Because the hashes live inside sw.js, any change to any shell file changes
sw.js byte for byte, which is what makes a browser notice an update. The
service worker checks every file it downloads against its hash, so a
half-deployed server can never be cached as a mixed shell.

    python scripts/build_pwa.py            # write (idempotent: unchanged input, unchanged output)
    python scripts/build_pwa.py --check    # exit 1 if anything written would differ
    python scripts/build_pwa.py --root DIR # build another copy of pwa/ (the tests use this)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import struct
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PWA = ROOT / "pwa"
BASE_VERSION = "0.1.0"

# Files the browser fetches itself, never from the precache.
NOT_PRECACHED = {"sw.js"}
SHELL_SUFFIXES = {".html", ".js", ".css", ".png", ".svg", ".webmanifest", ".json", ".woff2"}

BLOCK = re.compile(r"(// BUILD:PRECACHE-BEGIN[^\n]*\n).*?(// BUILD:PRECACHE-END)", re.S)

# Theme: the deep teal of the header; a white medical cross on a shield.
BACKGROUND = (0x0B, 0x4F, 0x6C)
FOREGROUND = (0xFF, 0xFF, 0xFF)
ACCENT = (0xC6, 0x28, 0x28)


# ---------------------------------------------------------------- icons

def png(width: int, height: int, pixel) -> bytes:
    """An 8-bit RGB PNG; `pixel(x, y)` returns an (r, g, b) tuple."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter: none
        for x in range(width):
            rows.extend(pixel(x, y))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(bytes(rows), 9)) + chunk(b"IEND", b""))


def icon(size: int, *, maskable: bool) -> bytes:
    """A shield with a cross. Maskable icons keep the drawing inside the 80 % safe circle."""
    scale = 0.56 if maskable else 0.8
    half = size / 2

    def pixel(x: int, y: int):
        # Coordinates in [-1, 1] relative to the drawing's box.
        u = (x + 0.5 - half) / (half * scale)
        v = (y + 0.5 - half) / (half * scale)
        # Shield: a rectangle top, a rounded point at the bottom.
        if -0.9 <= v <= 0.2:
            in_shield = abs(u) <= 0.8
        elif 0.2 < v <= 1.0:
            in_shield = abs(u) <= 0.8 * (1 - ((v - 0.2) / 0.8) ** 2) ** 0.5
        else:
            in_shield = False
        if not in_shield:
            return BACKGROUND
        in_cross = ((abs(u) <= 0.15 and -0.6 <= v <= 0.5)
                    or (abs(v + 0.05) <= 0.15 and abs(u) <= 0.55))
        return ACCENT if in_cross else FOREGROUND

    return png(size, size, pixel)


ICONS = {
    "icons/icon-192.png": (192, False),
    "icons/icon-512.png": (512, False),
    "icons/icon-maskable-512.png": (512, True),
}


# ---------------------------------------------------------------- the shell

def shell_files(root: Path) -> list[str]:
    """Every file the app may need offline, as URL paths, sorted for a stable output."""
    paths = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if (path.is_file() and path.suffix in SHELL_SUFFIXES and rel not in NOT_PRECACHED
                and not any(part.startswith(".") for part in path.relative_to(root).parts)):
            paths.append("/" + rel)
    return paths


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_if_changed(path: Path, data: bytes, check: bool, changed: list[str]) -> None:
    if path.exists() and path.read_bytes() == data:
        return
    changed.append(str(path))
    if not check:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def build(root: Path, check: bool = False) -> tuple[str, list[str]]:
    """Build the PWA in `root`; returns the build id and the files that changed (or would)."""
    changed: list[str] = []
    for rel, (size, maskable) in ICONS.items():
        write_if_changed(root / rel, icon(size, maskable=maskable), check, changed)

    version_rel = "/js/version.js"
    files = [f for f in shell_files(root) if f != version_rel]
    hashes = {f: sha256(root / f.lstrip("/")) for f in files}
    build_id = hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()[:12]
    version_js = (
        "// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).\n"
        f'export const APP_VERSION = "{BASE_VERSION}+{build_id}";\n'
        f'export const BUILD_ID = "{build_id}";\n'
    ).encode()
    write_if_changed(root / version_rel.lstrip("/"), version_js, check, changed)
    hashes[version_rel] = hashlib.sha256(version_js).hexdigest()

    sw = root / "sw.js"
    text = sw.read_text(encoding="utf-8")
    if not BLOCK.search(text):
        raise SystemExit(f"{sw}: the BUILD:PRECACHE-BEGIN/END markers are missing")
    listing = json.dumps(dict(sorted(hashes.items())), indent=2)
    block = (f"const BUILD_ID = \"{build_id}\";\n"
             f"const PRECACHE = {listing};\n")
    new = BLOCK.sub(lambda m: m.group(1) + block + m.group(2), text, count=1)
    write_if_changed(sw, new.encode("utf-8"), check, changed)
    return build_id, changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=PWA, help="the pwa/ directory to build")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the build output is out of date")
    args = parser.parse_args(argv)
    build_id, changed = build(args.root.resolve(), check=args.check)
    if args.check and changed:
        print("PWA build is out of date; run scripts/build_pwa.py. Stale: " + ", ".join(changed),
              file=sys.stderr)
        return 1
    print(f"PWA build {build_id}: {len(changed)} file(s) {'stale' if args.check else 'written'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
