#!/usr/bin/env python3
"""protocol/ is pure and testable byte by byte: no header under include/gw/protocol/ may include
Asio, directly or through the gw headers it includes. Usage: protocol_no_asio.py REPO_ROOT"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1]) / "include"
QUOTED = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
ASIO = re.compile(r'^\s*#\s*include\s+<asio[/.>]', re.M)


def reach(path, seen):
    """Every gw header path includes, itself included."""
    if path in seen:
        return
    seen.add(path)
    for name in QUOTED.findall(path.read_text(encoding="utf-8")):
        reach((path.parent / name).resolve(), seen)


protocol = sorted((root / "gw" / "protocol").glob("*.hpp"))
failed = 0
for header in protocol:
    seen = set()
    reach(header.resolve(), seen)
    culprits = sorted(p.relative_to(root.resolve()).as_posix() for p in seen if ASIO.search(p.read_text(encoding="utf-8")))
    if culprits:
        failed += 1
        print(f"FAIL {header.name} includes Asio through {', '.join(culprits)}")
    else:
        print(f"PASS {header.name} ({len(seen)} gw headers, none with Asio)")
print(f"{len(protocol) - failed} passed, {failed} failed")
sys.exit(1 if failed or not protocol else 0)
