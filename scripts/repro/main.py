"""main.py — runs the reproductions and assembles RESULTS.md.

usage: main.py ROOT FEPC [--quick] [--out DIR] [--only KEY,KEY] [--work DIR]

Each experiment (EXPERIMENTS, in the order RESULTS.md lists them) writes its
section to OUT/sections/KEY.md and its figures to OUT/figures/; RESULTS.md
is rebuilt from every section file present, so `--only` reruns a subset and
keeps the rest.  A failing experiment is reported and the run exits 1
without touching that experiment's old section.
"""
import argparse
import datetime
import importlib
import os
import platform
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Context, markdown_table  # noqa: E402

EXPERIMENTS = ["mlp", "generative", "kalman", "relaxed_pc", "ar", "cnn", "rnn", "scalar", "precision", "agents"]


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def section_markdown(sec, seconds, command):
    rows = markdown_table(["experiment", "thesis", "measured", "verdict"],
                          [(r.experiment, r.thesis, r.measured, r.verdict) for r in sec.rows])
    return "## %s\n\n%s\n\n%s\n\n_Section regenerated in %.0f s by `%s`, %s._\n" % (
        sec.title, rows, sec.body.strip(), seconds, command, datetime.date.today().isoformat())


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def assemble(out_dir, quick, command):
    parts = []
    for key in EXPERIMENTS:
        path = os.path.join(out_dir, "sections", key + ".md")
        if os.path.exists(path):
            with open(path) as f:
                parts.append(f.read())
    head = ("# Reproductions: the thesis's experiments run by fepc\n\n"
            "Regenerate with `scripts/reproduce` (every number and figure below is measured by that "
            "command; `--quick` runs the same code on small subsets for CI). Last run: `%s` on %s, "
            "%d cores, %s; each section ends with the command that regenerated it.%s\n\n"
            "Each section starts with its rows: what the thesis claims, what this run measured, and "
            "whether they agree; where they differ, the section says why.\n"
            % (command, cpu_name(), os.cpu_count() or 1, datetime.date.today().isoformat(),
               "\n\n**Quick mode: small subsets; the numbers only show that the pipeline runs.**" if quick else ""))
    write_atomic(os.path.join(out_dir, "RESULTS.md"), head + "\n" + "\n".join(parts))


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("fepc")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--work")
    ap.add_argument("--only")
    a = ap.parse_args(argv)
    out = os.path.abspath(a.out or os.path.join(a.root, "docs"))
    work = os.path.abspath(a.work or os.path.join(a.root, "out", "reproduce-quick" if a.quick else "reproduce"))
    keys = a.only.split(",") if a.only else EXPERIMENTS
    unknown = [k for k in keys if k not in EXPERIMENTS]
    if unknown:
        print("reproduce: unknown experiment(s) %s; known: %s" % (", ".join(unknown), ", ".join(EXPERIMENTS)),
              file=sys.stderr)
        return 2
    os.makedirs(os.path.join(out, "sections"), exist_ok=True)

    def log(line):
        print(line, file=sys.stderr, flush=True)

    ctx = Context(a.root, os.path.abspath(a.fepc), out, work, a.quick, log)
    command = "scripts/reproduce" + (" --quick" if a.quick else "") + (" --only " + a.only if a.only else "")
    failed = []
    for key in keys:
        log("== %s" % key)
        start = time.time()
        try:
            mod = importlib.import_module("exp_" + key)
            sec = mod.run(ctx)
        except Exception:   # one failing experiment must not hide the others' results
            traceback.print_exc()
            failed.append(key)
            continue
        write_atomic(os.path.join(out, "sections", key + ".md"), section_markdown(sec, time.time() - start, command))
        log("== %s done in %.0f s" % (key, time.time() - start))
    assemble(out, a.quick, command)
    if failed:
        print("reproduce: failed: %s" % ", ".join(failed), file=sys.stderr)
        return 1
    log("wrote %s" % os.path.join(out, "RESULTS.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
