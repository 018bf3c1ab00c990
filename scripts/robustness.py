#!/usr/bin/python3
"""The catalogue of bad inputs: every class of malformed model, data file,
checkpoint and command line that fepc is expected to refuse, run through the
real `fepc` binary.  Each entry must exit with status 1 or 2 (never a signal
or 0) and print an error line that names what is wrong; the entry's expected
phrase must appear in it.

  robustness.py FEPC                 check the catalogue (a CTest test)
  robustness.py FEPC --doc OUT.md [LEDGER.tsv]
                                     also write docs/ROBUSTNESS.md: the table of
                                     classes and messages, and the fuzzing totals
                                     summed from scripts/fuzz's ledger
Exits 1 when any entry fails.  scripts/robustness regenerates the document.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

FEPC = sys.argv[1]
DOC = sys.argv[sys.argv.index("--doc") + 1] if "--doc" in sys.argv else None
LEDGER = sys.argv[sys.argv.index("--doc") + 2] if DOC and len(sys.argv) > sys.argv.index("--doc") + 2 else None

GOOD = """model tiny
input    x : [2]
param    W : [3, 2] = xavier
param    b : [3]    = zeros
observed y : [3] ~ categorical(W @ x + b)
train { rule = fpa  steps = 5  step_size = 0.5  batch = 4  epochs = 1 }
"""


def st_bytes(header, data=b""):
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def npy_bytes(descr, shape, payload):
    head = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    head += " " * (-(10 + len(head) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head.encode() + payload


X8 = struct.pack("<8f", *range(8))                        # 4 samples of x : [2]
Y4 = struct.pack("<4q", 0, 1, 2, 0)
GOOD_X = npy_bytes("<f4", "(4, 2)", X8)
GOOD_Y = npy_bytes("<i8", "(4,)", Y4)

# (class, expected phrase, {file: contents}, argv with {dir} for the scratch folder)
MODEL = ["check", "{dir}/m.fep"]
EVAL = ["eval", "{dir}/good.fep", "--params", "{dir}/p.safetensors", "--bind", "x={dir}/x.npy", "--bind", "y={dir}/y.npy"]
BIND = ["train", "{dir}/good.fep", "--bind", "x={dir}/x.npy", "--bind", "y={dir}/y.npy"]
CATALOGUE = [
    ("model: empty file", "empty", {"m.fep": ""}, MODEL),
    ("model: binary file", "binary", {"m.fep": b"\x7fELF\x00\x01\x02"}, MODEL),
    ("model: stray character", "stray character", {"m.fep": "input x : [2] $\n"}, MODEL),
    ("model: syntax error", "expected", {"m.fep": "input x : [2\n"}, MODEL),
    ("model: unterminated block", "unterminated", {"m.fep": GOOD.replace("epochs = 1 }", "epochs = 1")}, MODEL),
    ("model: unknown name", "unknown name", {"m.fep": GOOD.replace("W @ x", "V @ x")}, MODEL),
    ("model: redefinition", "redefin", {"m.fep": GOOD + "param b : [3] = zeros\n"}, MODEL),
    ("model: shape mismatch", "shapes", {"m.fep": GOOD.replace("[3, 2]", "[3, 5]")}, MODEL),
    ("model: cycle", "cycle", {"m.fep": "latent a : [3] ~ normal(b)\nlatent b : [3] ~ normal(a)\n"}, MODEL),
    ("model: wrong arity", "argument", {"m.fep": GOOD.replace("W @ x + b", "tanh(W @ x, b)")}, MODEL),
    ("model: unknown distribution", "distribution", {"m.fep": GOOD.replace("categorical", "poisson")}, MODEL),
    ("model: unknown rule", "rule", {"m.fep": GOOD.replace("rule = fpa", "rule = magic")}, MODEL),
    ("model: unknown train key", "train key", {"m.fep": GOOD.replace("batch = 4", "bach = 4")}, MODEL),
    ("model: bad initializer", "initializer", {"m.fep": GOOD.replace("= xavier", "= xavir")}, MODEL),
    ("model: ragged matrix literal", "ragged", {"m.fep": "param A : [2, 2] = [[1, 2], [3]]\n"}, MODEL),
    ("model: non-positive dimension", "dimension must be positive", {"m.fep": "input x : [0]\n"}, MODEL),
    ("model: tensor too large", "elements", {"m.fep": "input x : [100000, 100000, 100000]\n"}, MODEL),
    ("model: nesting too deep", "deep", {"m.fep": "let z = " + "(" * 5000 + "1" + ")" * 5000 + "\n"}, MODEL),
    ("model: missing file", "No such file", {}, ["check", "{dir}/absent.fep"]),
    ("data: NPY shape mismatch", "shape", {"good.fep": GOOD, "x.npy": npy_bytes("<f4", "(4, 3)", X8 + X8[:16]),
                                           "y.npy": GOOD_Y}, BIND),
    ("data: NPY truncated payload", "x.npy", {"good.fep": GOOD, "x.npy": GOOD_X[:-5], "y.npy": GOOD_Y}, BIND),
    ("data: NPY bad magic", "x.npy", {"good.fep": GOOD, "x.npy": b"NOTNUMPY" + GOOD_X[8:], "y.npy": GOOD_Y}, BIND),
    ("data: NPY unsupported dtype", "x.npy", {"good.fep": GOOD, "x.npy": npy_bytes("<c8", "(4, 2)", X8 + X8),
                                              "y.npy": GOOD_Y}, BIND),
    ("data: sample counts differ", "y.npy", {"good.fep": GOOD, "x.npy": GOOD_X,
                                             "y.npy": npy_bytes("<i8", "(3,)", Y4[:24])}, BIND),
    ("data: label out of range", "y.npy", {"good.fep": GOOD, "x.npy": GOOD_X,
                                           "y.npy": npy_bytes("<i8", "(4,)", struct.pack("<4q", 0, 1, 7, 0))}, BIND),
    ("data: CSV non-numeric cell", "x.csv", {"good.fep": GOOD, "x.csv": "a,b\n1,2\n3,oops\n", "y.npy": GOOD_Y},
     ["train", "{dir}/good.fep", "--bind", "x={dir}/x.csv", "--bind", "y={dir}/y.npy"]),
    ("data: CSV ragged row", "x.csv", {"good.fep": GOOD, "x.csv": "a,b\n1,2\n3\n", "y.npy": GOOD_Y},
     ["train", "{dir}/good.fep", "--bind", "x={dir}/x.csv", "--bind", "y={dir}/y.npy"]),
    ("data: unknown node in --bind", "z", {"good.fep": GOOD, "x.npy": GOOD_X},
     ["train", "{dir}/good.fep", "--bind", "z={dir}/x.npy"]),
    ("checkpoint: header length past the end", "p.safetensors",
     {"good.fep": GOOD, "x.npy": GOOD_X, "y.npy": GOOD_Y, "p.safetensors": struct.pack("<Q", 1 << 40) + b"{}"},
     EVAL),
    ("checkpoint: header is not JSON", "p.safetensors",
     {"good.fep": GOOD, "x.npy": GOOD_X, "y.npy": GOOD_Y, "p.safetensors": struct.pack("<Q", 5) + b"{oops"},
     EVAL),
    ("checkpoint: offsets past the data", "data offsets",
     {"good.fep": GOOD, "x.npy": GOOD_X, "y.npy": GOOD_Y, "p.safetensors": st_bytes({"W": {"dtype": "F32", "shape": [3, 2], "data_offsets": [0, 24]}},
                                                  b"\0" * 8)},
     EVAL),
    ("checkpoint: dtype disagrees with size", "p.safetensors",
     {"good.fep": GOOD, "x.npy": GOOD_X, "y.npy": GOOD_Y, "p.safetensors": st_bytes({"W": {"dtype": "F64", "shape": [3, 2], "data_offsets": [0, 24]}},
                                                  b"\0" * 24)},
     EVAL),
    ("checkpoint: wrong tensor shape", "[2, 3]",
     {"good.fep": GOOD, "x.npy": GOOD_X, "y.npy": GOOD_Y, "p.safetensors": st_bytes({"W": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
                                                   "b": {"dtype": "F32", "shape": [3], "data_offsets": [24, 36]}},
                                                  b"\0" * 36)},
     EVAL),
    ("command line: unknown command", "unknown command", {"good.fep": GOOD}, ["frobnicate", "{dir}/good.fep"]),
    ("command line: unknown option", "unknown train key", {"good.fep": GOOD}, ["check", "{dir}/good.fep", "--frob", "1"]),
    ("command line: bad number", "steps", {"good.fep": GOOD}, ["check", "{dir}/good.fep", "--steps", "-1"]),
]


def run_entry(tmp, files, argv):
    for name, content in files.items():
        with open(os.path.join(tmp, name), "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)
    args = [a.replace("{dir}", tmp) for a in argv]
    r = subprocess.run([FEPC, *args], capture_output=True, text=True, errors="replace", timeout=120,
                       stdin=subprocess.DEVNULL)
    lines = [l for l in r.stderr.splitlines() if "error" in l]
    return r.returncode, (lines[0] if lines else r.stderr.strip().splitlines()[0] if r.stderr.strip() else "")


rows, failures = [], 0
for cls, phrase, files, argv in CATALOGUE:
    with tempfile.TemporaryDirectory() as tmp:
        status, message = run_entry(tmp, files, argv)
        shown = message.replace(tmp + "/", "")
    ok = status in (1, 2) and phrase.lower() in message.lower()
    failures += not ok
    print(("ok   " if ok else "FAIL ") + "%s: exit %d: %s" % (cls, status, shown))
    rows.append((cls, status, shown))

if DOC:
    out = ["# Robustness", "",
           "Generated by `scripts/robustness` (do not edit by hand).  Every row is a bad input run",
           "through the real `fepc`; the same catalogue runs in CTest as `robustness_catalogue`,",
           "which fails if any entry crashes, exits 0, or loses its message.  Beyond this table:",
           "`test_diagnostics` and `cli_errors` (every model error class, with line:col), `test_tensorio`",
           "(38 lying safetensors headers, truncated IDX/NPY), `cli_bind` (data shape and count",
           "mismatches), `kill_save` (SIGKILL mid-save never corrupts a checkpoint), the valgrind",
           "label (the CLI tests under memcheck: zero errors, zero leaks), and the sanitized suite.", "",
           "| class | exit | message |", "|---|---|---|"]
    for cls, status, shown in rows:
        out.append("| %s | %d | `%s` |" % (cls, status, shown.replace("|", "\\|").replace("`", "'")))
    if LEDGER and os.path.exists(LEDGER):
        per = {}
        for line in open(LEDGER).read().splitlines()[1:]:
            date, target, secs, execs, crashes = line.split("\t")
            t = per.setdefault(target, [0, 0, 0])
            t[0] += int(secs); t[1] += int(execs); t[2] += int(crashes)
        total = [sum(v[i] for v in per.values()) for i in range(3)]
        out += ["", "## Fuzzing", "",
                "Summed from `docs/fuzz-ledger.tsv` (runs of `FUZZ_LEDGER=docs/fuzz-ledger.tsv scripts/fuzz S`;",
                "CI's 60-second runs on throwaway machines are not recorded).  Crashes found are fixed and kept as",
                "regression inputs under `tests/fuzz/regressions/`, replayed by `fuzz_regressions`.", "",
                "| target | seconds | executions | crashes |", "|---|---|---|---|"]
        for target in sorted(per):
            out.append("| %s | %d | %d | %d |" % (target, *per[target]))
        out.append("| **total** | %d (%.2f h) | %d | %d |" % (total[0], total[0] / 3600, total[1], total[2]))
    tmp_doc = DOC + ".tmp"
    with open(tmp_doc, "w") as f:
        f.write("\n".join(out) + "\n")
    os.replace(tmp_doc, DOC)

print("%d entries, %d failed" % (len(rows), failures))
sys.exit(1 if failures else 0)
