#!/usr/bin/python3
"""PyTorch twins of models/fmnist_mlp.fep, for baselines measured side by
side with fepc (same initial parameters, same data order is not attempted:
shuffling uses torch's generator).

  bp    backpropagation on the same graph (cross-entropy summed over the
        batch, Adam), the usual way to train this MLP;
  fpa   the fixed-prediction PC algorithm written plainly in eager PyTorch:
        feedforward pass, `steps` Jacobi relaxation steps of the errors
        with frozen predictions and Jacobians, then the Hebbian gradients.
  pc    strict PC: predictions recomputed at every relaxation step.

usage: torch_mlp.py {bp,fpa,pc} INIT.safetensors [--epochs N] [--limit N] [--threads N]
Prints one line per epoch: epoch, test accuracy, seconds of training.
"""
import argparse
import gzip
import os
import struct
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "repro"))
from common import read_safetensors  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(split):
    x = idx("%s/%s-images-idx3-ubyte.gz" % (DATA, split)).reshape(-1, 784).astype(np.float32) / 255
    y = idx("%s/%s-labels-idx1-ubyte.gz" % (DATA, split)).astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


def read_params(path):
    """fepc's params file as float32 tensors that require gradients."""
    return {name: torch.tensor(arr.astype(np.float32), requires_grad=True)
            for name, arr in read_safetensors(path).items()}


def forward(p, x):
    h1 = x @ p["W1"].T + p["b1"]
    h2 = torch.tanh(h1) @ p["W2"].T + p["b2"]
    return h1, h2, torch.tanh(h2) @ p["W3"].T + p["b3"]


def bp_grads(p, x, y):
    _, _, logits = forward(p, x)
    loss = torch.nn.functional.cross_entropy(logits, y, reduction="sum")
    for t in p.values():
        t.grad = None
    loss.backward()


def fpa_grads(p, x, y, steps, eta, strict):
    """PC on the same graph; gradients are written into .grad (∂F/∂θ)."""
    with torch.no_grad():
        W1, b1, W2, b2, W3, b3 = (p[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3"))
        onehot = torch.nn.functional.one_hot(y, 10).float()
        h1_bar, h2_bar, logits = forward(p, x)
        h1, h2 = h1_bar.clone(), h2_bar.clone()
        for _ in range(steps):
            if strict:
                m1 = x @ W1.T + b1
                m2 = torch.tanh(h1) @ W2.T + b2
                out = torch.tanh(h2) @ W3.T + b3
                a1, a2 = h1, h2
            else:
                m1, m2, out = h1_bar, h2_bar, logits
                a1, a2 = h1_bar, h2_bar
            e1, e2 = h1 - m1, h2 - m2
            ey = onehot - torch.softmax(out, 1)
            d1 = e1 - (e2 @ W2) * (1 - torch.tanh(a1) ** 2)
            d2 = e2 - (ey @ W3) * (1 - torch.tanh(a2) ** 2)
            h1, h2 = h1 - eta * d1, h2 - eta * d2
        if strict:
            m1, m2, out = x @ W1.T + b1, torch.tanh(h1) @ W2.T + b2, torch.tanh(h2) @ W3.T + b3
            a1, a2 = h1, h2
        else:
            m1, m2, out, a1, a2 = h1_bar, h2_bar, logits, h1_bar, h2_bar
        e1, e2, ey = h1 - m1, h2 - m2, onehot - torch.softmax(out, 1)
        grads = {"W1": -(e1.T @ x), "b1": -e1.sum(0), "W2": -(e2.T @ torch.tanh(a1)), "b2": -e2.sum(0),
                 "W3": -(ey.T @ torch.tanh(a2)), "b3": -ey.sum(0)}
    for k, g in grads.items():
        p[k].grad = g


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("algo", choices=["bp", "fpa", "pc"])
    ap.add_argument("init")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--step-size", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    xtr, ytr = load("train")
    xte, yte = load("t10k")
    if args.limit:
        xtr, ytr = xtr[:args.limit], ytr[:args.limit]
    p = read_params(args.init)
    opt = torch.optim.Adam(p.values(), lr=1e-3)
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(len(xtr))
        start = time.perf_counter()
        for at in range(0, len(xtr), 64):
            idx_b = order[at:at + 64]
            if args.algo == "bp":
                bp_grads(p, xtr[idx_b], ytr[idx_b])
            else:
                fpa_grads(p, xtr[idx_b], ytr[idx_b], args.steps, args.step_size, args.algo == "pc")
            opt.step()
        seconds = time.perf_counter() - start
        with torch.no_grad():
            acc = (forward(p, xte)[2].argmax(1) == yte).float().mean().item()
        print("epoch %d test_accuracy %.4f seconds %.3f" % (epoch, acc, seconds), flush=True)


if __name__ == "__main__":
    main()
