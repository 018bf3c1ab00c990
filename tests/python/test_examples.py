"""docs/examples/python/ runs as a newcomer would run it (PYTHONPATH=python,
Debian's python3), at reduced size: each exits 0, prints its figures and
writes a real PNG."""
import os
import re
import subprocess
import sys

from conftest import ROOT

EXAMPLES = os.path.join(ROOT, "docs", "examples", "python")


def run(script, *args, cwd):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"), MPLBACKEND="Agg")
    r = subprocess.run([sys.executable, os.path.join(EXAMPLES, script), *map(str, args)], capture_output=True,
                       text=True, env=env, cwd=cwd)
    assert r.returncode == 0, "%s failed:\n%s%s" % (script, r.stdout, r.stderr)
    return r.stdout


def is_png(path, min_bytes=2000):
    with open(path, "rb") as f:
        data = f.read()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= min_bytes


def test_train_mlp(tmp_path):
    out = run("train_mlp.py", "--epochs", 1, "--limit", 1280, "--save", tmp_path / "p.safetensors", cwd=tmp_path)
    acc = float(re.search(r"test accuracy ([\d.]+)", out).group(1))
    assert acc > 0.6 and (tmp_path / "p.safetensors").exists()
    assert "W1  param    [256, 784]" in out


def test_generative_reconstructions(tmp_path):
    out = run("generative.py", "--limit", 320, "--epochs", 1, "--show", 6, "-o", tmp_path / "rec.png", cwd=tmp_path)
    mse, baseline = map(float, re.search(r"\(MSE\): ([\d.]+); mean-image baseline ([\d.]+)", out).groups())
    assert mse < baseline
    gap = float(re.search(r"max gap ([\d.e+-]+)", out).group(1))
    assert gap < 1e-5
    assert is_png(tmp_path / "rec.png") and os.listdir(tmp_path) == ["rec.png"]


def test_kalman_filter(tmp_path):
    out = run("kalman_filter.py", "--steps", 200, "-o", tmp_path / "k.png", cwd=tmp_path)
    gap = float(re.search(r"RMS gap ([\d.]+)%", out).group(1))
    assert gap <= 5.0                                       # SPEC §6.3: within 5% of an exact Kalman filter
    assert is_png(tmp_path / "k.png")
