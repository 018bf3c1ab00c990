"""PyTorch twins (float64) of what the package computes:

  * models/fmnist_mlp.fep under rule bp: autograd of the summed cross-entropy
    (bench/torch_mlp.py's bp_grads) equals the session's grads() to 1e-10;
  * the same model under fpa and pc: bench/torch_mlp.py's PC written in
    torch (frozen or recomputed predictions) gives the same gradients;
  * models/fmnist_generative.fep under pc: the energy written in torch,
    relaxed by autograd Euler steps from the feedforward start, gives the
    same relaxed values, errors, energy and (autograd) parameter gradients.
Every number on the package's side comes from libfep's kernels."""
import os
import sys

import numpy as np
import pytest
import torch

import fep
from conftest import ROOT, model_path

sys.path.insert(0, os.path.join(ROOT, "bench"))
from torch_mlp import bp_grads, fpa_grads  # noqa: E402

TOL = 1e-10


def close(got, want, what):
    want = np.asarray(want)
    scale = max(float(np.abs(want).max()), 1e-30)
    gap = float(np.abs(np.asarray(got) - want).max())
    assert gap <= TOL * scale, "%s: max gap %.3g at scale %.3g" % (what, gap, scale)


@pytest.fixture(scope="module")
def batch():
    x, y = fep.datasets.fashion_mnist("test", limit=16)
    return x.astype(np.float64), y


def mlp_session(m, x, y, **settings):
    s = m.session(batch=len(x), dtype="f64", seed=5, **settings)
    s["x"], s["y"] = x, y
    s.relax()
    return s


def torch_params(s):
    return {k: torch.tensor(v, requires_grad=True) for k, v in s.params().items()}


def test_bp_equals_autograd(mlp, batch):
    x, y = batch
    with mlp_session(mlp, x, y, rule="bp") as s:
        grads = s.grads()
        p = torch_params(s)
    bp_grads(p, torch.tensor(x), torch.tensor(y))
    for k, t in p.items():
        close(grads[k], t.grad.numpy(), "grad." + k)


@pytest.mark.parametrize("rule,steps,eta", [("fpa", 20, 0.5), ("pc", 12, 0.1)])
def test_pc_rules_equal_torch_twin(mlp, batch, rule, steps, eta):
    x, y = batch
    with mlp_session(mlp, x, y, rule=rule, steps=steps, step_size=eta) as s:
        grads = s.grads()
        p = torch_params(s)
    fpa_grads(p, torch.tensor(x), torch.tensor(y), steps, eta, strict=rule == "pc")
    for k, t in p.items():
        close(grads[k], t.grad.numpy(), "%s grad.%s" % (rule, k))


def generative_energy(p, z, h, x):
    """models/fmnist_generative.fep's F summed over the batch (constants dropped)."""
    pred = torch.sigmoid(torch.tanh(h) @ p["W1"].T)
    return 0.5 * (z ** 2).sum() + 0.5 * ((h - z @ p["W2"].T) ** 2).sum() + 0.5 * 4 * ((x - pred) ** 2).sum()


def test_generative_pc_equals_autograd_twin():
    steps, eta = 15, 0.1
    x = torch.tensor(fep.datasets.fashion_mnist("train", limit=8)[0].astype(np.float64))
    with fep.compile(model_path("fmnist_generative")) as m, \
            m.session(batch=len(x), dtype="f64", steps=steps, step_size=eta, seed=2) as s:
        s["x"] = x.numpy()
        energy = s.relax()
        got = {"z": s["z"], "h": s["h"], "energy": energy, "errors": s.errors(), "grads": s.grads()}
        p = {k: torch.tensor(v, requires_grad=True) for k, v in s.params().items()}
    with torch.no_grad():       # feedforward start: z at its prior mean, h at its prediction
        z = torch.zeros(len(x), 20, dtype=torch.float64)
        h = z @ p["W2"].T
    for _ in range(steps):      # Jacobi: every node steps from the same state
        z, h = z.detach().requires_grad_(), h.detach().requires_grad_()
        gz, gh = torch.autograd.grad(generative_energy(p, z, h, x), (z, h))
        z, h = z - eta * gz, h - eta * gh
    z, h = z.detach(), h.detach()
    F = generative_energy(p, z, h, x)
    F.backward()
    close(got["z"], z.numpy(), "relaxed z")
    close(got["h"], h.numpy(), "relaxed h")
    close(got["energy"], F.item() / len(x), "energy per sample")
    with torch.no_grad():
        close(got["errors"]["h"], (h - z @ p["W2"].T).numpy(), "error.h")
        close(got["errors"]["x"], (4 * (x - torch.sigmoid(torch.tanh(h) @ p["W1"].T))).numpy(), "error.x")
    for k in ("W1", "W2"):
        close(got["grads"][k], p[k].grad.numpy(), "grad." + k)
