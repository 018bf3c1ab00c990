"""common.py — what every reproduction shares.

A reproduction is a module `exp_<key>.py` in this folder with
    TITLE = "…"                      # section heading in docs/RESULTS.md
    def run(ctx: Context) -> Section
It runs fepc from the command line (ctx.fepc), reads what fepc wrote
(safetensors, CSV logs and estimates), computes its numbers with numpy,
draws figures with `fepc plot` (ctx.plot) and returns a Section: summary
rows (what the thesis claims, what was measured, whether they agree) and a
markdown body.  ctx.quick selects CI scale (small subsets, seconds); the
full scale is what docs/RESULTS.md reports.  Nothing here knows any one
experiment.
"""
import csv
import dataclasses
import gzip
import json
import os
import struct
import subprocess
import time

import numpy as np


class ReproError(Exception):
    """A fepc run or a check inside a reproduction failed."""


@dataclasses.dataclass
class Row:
    experiment: str      # "Learned backward weights, tanh"
    thesis: str          # the thesis's claim, in a few words
    measured: str        # the number(s) this run measured
    verdict: str         # "agrees" | "differs: <why in a few words>"


@dataclasses.dataclass
class Section:
    key: str
    title: str
    rows: list
    body: str            # markdown: settings, tables, figure links, choices made


class Context:
    def __init__(self, root, fepc, out_dir, work_dir, quick, log):
        self.root = root              # repository root
        self.fepc_path = fepc         # the fepc binary
        self.out_dir = out_dir        # RESULTS.md goes here; figures under out_dir/figures
        self.work_dir = work_dir      # scratch: params, logs, data files
        self.quick = quick
        self.log = log                # log(str): progress lines to stderr
        os.makedirs(os.path.join(out_dir, "figures"), exist_ok=True)
        os.makedirs(work_dir, exist_ok=True)

    def model(self, name):
        """Path of models/<name>.fep."""
        return os.path.join(self.root, "models", name + ".fep")

    def work(self, *parts):
        """A path in the scratch folder (its folder is created)."""
        path = os.path.join(self.work_dir, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def fepc(self, *args, timeout=3600):
        """Runs fepc; returns its stdout; raises ReproError with stderr on failure."""
        args = [str(a) for a in args]
        self.log("$ fepc " + " ".join(args))
        start = time.time()
        r = subprocess.run([self.fepc_path, *args], capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise ReproError("fepc %s failed (exit %d):\n%s" % (" ".join(args), r.returncode, r.stderr[-4000:]))
        self.log("  (%.1f s)" % (time.time() - start))
        return r.stdout

    def figure(self, name):
        """(absolute path, link relative to RESULTS.md) of figure `name`.png."""
        return os.path.join(self.out_dir, "figures", name + ".png"), "figures/" + name + ".png"

    def plot(self, kind, name, *args):
        """`fepc plot KIND ARGS… -o figures/NAME.png`; returns the markdown image link."""
        path, link = self.figure(name)
        self.fepc("plot", kind, *args, "-o", path)
        return "![%s](%s)" % (name, link)


# ---- files fepc reads and writes ----

_ST_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + b:8 + n + e], _ST_DTYPES[info["dtype"]]).reshape(info["shape"]).copy()
    return out


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    codes = {np.dtype(v): k for k, v in _ST_DTYPES.items()}
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        header[name] = {"dtype": codes[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + arr.nbytes]}
        blobs.append(arr.tobytes())
        offset += arr.nbytes
    text = json.dumps(header).encode()
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    os.replace(tmp, path)


def read_csv(path):
    """Rows of a CSV file as dicts of floats (empty cells → None)."""
    with open(path) as f:
        return [{k: (float(v) if v not in ("", None) else None) for k, v in row.items()} for row in csv.DictReader(f)]


def write_csv(path, header, rows):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(",".join(header) + "\n")
        for row in rows:
            f.write(",".join("%.9g" % v if isinstance(v, float) else str(v) for v in row) + "\n")
    os.replace(tmp, path)


def fashion_mnist(train, limit=None):
    """(images [N, 784] float32 in [0, 1], labels [N] int64) from Debian's IDX files."""
    base = os.environ.get("FEP_FASHION_MNIST", "/usr/share/datasets/fashion-mnist")
    prefix = "train" if train else "t10k"
    with gzip.open(os.path.join(base, prefix + "-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
    with gzip.open(os.path.join(base, prefix + "-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    if limit:
        images, labels = images[:limit], labels[:limit]
    return images.astype(np.float32) / 255.0, labels


# ---- numbers ----

def mean_std(values):
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def pct(x):
    return "%.2f%%" % (100 * x)


def pct_pm(values):
    m, s = mean_std(values)
    return "%.2f ± %.2f%%" % (100 * m, 100 * s)


def angle_deg(a, b):
    """Angle between two gradients, flattened (Lillicrap et al. 2016)."""
    a, b = np.ravel(a).astype(float), np.ravel(b).astype(float)
    c = a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-300)
    return float(np.degrees(np.arccos(np.clip(c, -1, 1))))


def rel_diff(a, b):
    """‖a − b‖ / ‖b‖: the divergence of a from the reference b."""
    a, b = np.ravel(a).astype(float), np.ravel(b).astype(float)
    return float(np.linalg.norm(a - b) / (np.linalg.norm(b) + 1e-300))


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
