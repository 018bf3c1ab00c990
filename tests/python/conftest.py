"""Shared set-up for the fep package's tests: where the repository, fepc
and the package are, and the models most tests use.

Run through CTest (`ctest --test-dir build -R python`), which sets FEPC,
FEP_LIBRARY and PYTHONPATH for the build being tested, or directly with
`/usr/bin/python3 -m pytest tests/python` after scripts/build build."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FEPC = os.environ.get("FEPC", os.path.join(ROOT, "build", "fepc"))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(1, os.path.join(ROOT, "scripts", "repro"))

import fep  # noqa: E402


def model_path(name):
    return os.path.join(ROOT, "models", name + ".fep")


def fepc(*args, check=True):
    """Runs fepc; returns its CompletedProcess (check: exit status 0 asserted)."""
    r = subprocess.run([FEPC, *map(str, args)], capture_output=True, text=True)
    if check:
        assert r.returncode == 0, "fepc %s failed:\n%s" % (" ".join(map(str, args)), r.stderr)
    return r


@pytest.fixture(scope="session")
def mlp():
    with fep.compile(model_path("fmnist_mlp")) as m:
        yield m


@pytest.fixture(scope="session")
def fmnist():
    """The first 2000 training images and the first 2000 test images."""
    return fep.datasets.fashion_mnist("train", limit=2000), fep.datasets.fashion_mnist("test", limit=2000)
