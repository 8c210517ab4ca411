#!/usr/bin/env python3
"""Checks that every ```cpp block of README.md appears verbatim, as whole lines, in a file under
examples/ (which the build compiles). Usage: readme_snippets.py REPO_ROOT"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
readme = (root / "README.md").read_text(encoding="utf-8")
blocks = re.findall(r"^```cpp\n(.*?)^```", readme, flags=re.S | re.M)
examples = {p: p.read_text(encoding="utf-8") for p in sorted((root / "examples").glob("*.cpp"))}

passed = failed = 0
for i, block in enumerate(blocks, 1):
    where = [p.name for p, text in examples.items() if ("\n" + text).find("\n" + block) >= 0]
    if where:
        passed += 1
        print(f"PASS snippet {i} is in {', '.join(where)}")
    else:
        failed += 1
        print(f"FAIL snippet {i} is in no example:\n{block}")
if not blocks:
    failed += 1
    print("FAIL README.md has no cpp snippet")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
