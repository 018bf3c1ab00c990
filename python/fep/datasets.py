"""Fashion-MNIST as numpy arrays, read from the IDX files Debian's
dataset-fashion-mnist installs (or $FEP_FASHION_MNIST), the data `fepc
train` uses by default: images as float32 pixels / 255, [N, 784] (the
same floats fepc computes), labels as int64 class indices [N]."""
import gzip
import os
import struct

import numpy as np

from .errors import FepIOError

SPLITS = {"train": "train", "test": "t10k"}


def _idx(path):
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise FepIOError("%s: %s" % (path, e), 1) from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 8:
        raise FepIOError("%s: not an IDX file of bytes" % path, 1)
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    if len(data) != 4 + 4 * ndim + int(np.prod(dims)):
        raise FepIOError("%s: IDX size does not match its dimensions %s" % (path, dims), 1)
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def fashion_mnist(split="train", limit=None):
    """(images, labels) of the train or test split, the first `limit` samples if given."""
    if split not in SPLITS:
        raise ValueError("split must be 'train' or 'test', not %r" % (split,))
    root = os.environ.get("FEP_FASHION_MNIST") or "/usr/share/datasets/fashion-mnist"
    images = _idx(os.path.join(root, "%s-images-idx3-ubyte.gz" % SPLITS[split]))
    labels = _idx(os.path.join(root, "%s-labels-idx1-ubyte.gz" % SPLITS[split]))
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = images.reshape(len(images), -1).astype(np.float32) / np.float32(255)
    return x, labels.astype(np.int64)
