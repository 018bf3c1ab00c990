#!/usr/bin/python3
"""Hierarchical generative PC (models/fmnist_generative.fep, thesis §3.3)
from Python: trains z (20) -> h (128) -> x (784) on Fashion-MNIST images,
then reconstructs test images it never saw and saves originals above
their reconstructions as a PNG (matplotlib).

    PYTHONPATH=python docs/examples/python/generative.py [--limit 6400] [--epochs 3] [-o reconstructions.png]

Reconstruction: clamp x to an image, relax h and z (the model's 100 steps),
and read the model's prediction of x.  The error of x is precision-weighted,
error.x = 4 (x - prediction), so the prediction is x - error.x / 4.
The model's own sgd(lr = 0.01) diverges when gradients are summed over a
batch of 64 (docs/RESULTS.md); a session override sets 0.001.
"""
import argparse
import os

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import fep  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PREC_X = 4.0   # the model's precision on x


def reconstruct(model, params, images):
    """The model's prediction of each image after relaxing h and z against
    it, and the relaxed h."""
    with model.session(batch=len(images)) as s:
        s.load(params)
        s["x"] = images
        s.relax()
        return images - s.errors()["x"] / PREC_X, s["h"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=6400, help="training images")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--show", type=int, default=8, help="test images to reconstruct")
    ap.add_argument("-o", "--out", default="reconstructions.png")
    args = ap.parse_args()

    model = fep.compile(os.path.join(ROOT, "models", "fmnist_generative.fep"))
    session = model.session(optimizer="sgd(lr = 0.001)")
    x, _ = fep.datasets.fashion_mnist("train", limit=args.limit)
    x_test, _ = fep.datasets.fashion_mnist("test", limit=max(args.show, 256))
    history = session.fit(x, epochs=args.epochs, val=x_test)     # no labels: x is the observed node
    print("energy per image by epoch:", " ".join("%.2f" % e for e in history["energy"]))
    params = args.out + ".params.safetensors"
    session.save(params)

    rec, h = reconstruct(model, params, x_test)
    os.remove(params)
    # The same prediction swept down from the relaxed h in numpy: sigmoid(W1 @ tanh(h)).
    sweep = 1 / (1 + np.exp(-np.tanh(h) @ session["W1"].T))
    print("prediction from error.x vs numpy's sweep from h: max gap %.2g" % float(np.abs(sweep - rec).max()))
    print("test reconstruction error per pixel (MSE): %.4f; mean-image baseline %.4f" % (
        float(np.mean((rec - x_test) ** 2)), float(np.mean((x.mean(0) - x_test) ** 2))))

    n = args.show
    fig, axes = plt.subplots(2, n, figsize=(n * 1.2, 2.6))
    for i in range(n):
        for row, img in enumerate((x_test[i], rec[i])):
            axes[row, i].imshow(np.clip(img, 0, 1).reshape(28, 28), cmap="gray", vmin=0, vmax=1)
            axes[row, i].axis("off")
    axes[0, 0].set_title("test images", loc="left", fontsize=8)
    axes[1, 0].set_title("reconstructions", loc="left", fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
