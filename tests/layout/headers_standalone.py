#!/usr/bin/env python3
"""Compiles every header under include/gw/ on its own (each must include what it uses), two at a
time. Usage: headers_standalone.py REPO_ROOT COMPILER [ARGS...]"""
import concurrent.futures
import pathlib
import subprocess
import sys

root = pathlib.Path(sys.argv[1])
compiler = sys.argv[2:]
include = root / "include"
headers = sorted(p.relative_to(include).as_posix() for p in (include / "gw").rglob("*.hpp"))


def check(header):
    cmd = compiler + ["-std=c++20", "-fsyntax-only", "-Wall", "-Wextra", "-Wpedantic", "-Werror",
                      "-I", str(include), "-x", "c++", "-"]
    r = subprocess.run(cmd, input=f'#include "{header}"\n', capture_output=True, text=True)
    return header, r.returncode, r.stderr


# The Redis headers (behind GATEWAY_REDIS) need hiredis: checked where it is installed.
hiredis = subprocess.run(compiler + ["-fsyntax-only", "-x", "c++", "-"], input="#include <hiredis/hiredis.h>\n",
                         capture_output=True, text=True).returncode == 0
if not hiredis:
    for h in [h for h in headers if h.startswith("gw/redis/")]:
        print("SKIP " + h + " (no hiredis)")
        headers.remove(h)

failed = 0
with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
    for header, rc, err in pool.map(check, headers):
        print(("PASS " if rc == 0 else "FAIL ") + header)
        if rc:
            failed += 1
            print(err[:4000])
print(f"{len(headers) - failed} passed, {failed} failed")
sys.exit(1 if failed or not headers else 0)
