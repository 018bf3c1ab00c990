#!/usr/bin/python3
"""Runs every reproduction at CI scale (scripts/repro/main.py --quick) with
the fepc under test and checks what it wrote: RESULTS.md has a section per
experiment, every summary row has a measured cell with a number in it and a
verdict, every figure the sections link to exists and is a PNG of sensible
size, and nothing was left half-written.
usage: reproduce_quick.py FEPC SOURCE_DIR OUT_DIR"""
import os
import re
import shutil
import subprocess
import sys

FEPC, SRC, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, os.path.join(SRC, "scripts", "repro"))
from main import EXPERIMENTS  # noqa: E402

failures = 0


def check(cond, what):
    global failures
    print(("ok   " if cond else "FAIL ") + what)
    failures += 0 if cond else 1


shutil.rmtree(OUT, ignore_errors=True)
r = subprocess.run(["/usr/bin/python3", os.path.join(SRC, "scripts", "repro", "main.py"), SRC, FEPC, "--quick",
                    "--out", OUT, "--work", os.path.join(OUT, "work")], capture_output=True, text=True)
check(r.returncode == 0, "reproduce --quick exits 0" + ("" if r.returncode == 0 else ":\n" + r.stderr[-3000:]))
results = os.path.join(OUT, "RESULTS.md")
text = open(results).read() if os.path.exists(results) else ""
check(text.startswith("# Reproductions"), "RESULTS.md written")
for key in EXPERIMENTS:
    path = os.path.join(OUT, "sections", key + ".md")
    check(os.path.exists(path), "section %s written" % key)
    if not os.path.exists(path):
        continue
    section = open(path).read()
    check(section in text, "section %s is in RESULTS.md" % key)
    lines = section.split("\n")
    rows = [ln for ln in lines[4:] if ln.startswith("| ")]
    summary = []
    for ln in rows:   # the summary table is the first table, right after the heading
        if ln.startswith("| experiment"):
            continue
        summary.append(ln)
        if not lines[lines.index(ln) + 1].startswith("| "):
            break
    check(len(summary) >= 1, "%s: %d summary rows" % (key, len(summary)))
    for ln in summary:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        check(len(cells) == 4 and re.search(r"\d", cells[2]) is not None and cells[3] != "",
              "%s row has a measured number and a verdict: %s" % (key, ln[:100]))
    for link in re.findall(r"\]\((figures/[^)]+\.png)\)", section):
        png = os.path.join(OUT, link)
        ok = os.path.exists(png) and os.path.getsize(png) > 200
        if ok:
            with open(png, "rb") as f:
                head = f.read(24)
            ok = head[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(head[16:20], "big") >= 100
        check(ok, "%s: figure %s is a PNG" % (key, link))
leftovers = [f for d, _, fs in os.walk(OUT) for f in fs if f.endswith(".tmp") or ".tmp." in f]
check(not leftovers, "no temp files left: %s" % leftovers[:5])
print("%d failed" % failures)
sys.exit(1 if failures else 0)
