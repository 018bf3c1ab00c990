"""fep — fepc's predictive-coding runtime (libfep) from Python.

    import fep
    m = fep.compile("models/fmnist_mlp.fep")
    s = m.session(batch=64, rule="fpa", steps=20)
    x, y = fep.datasets.fashion_mnist("train", limit=6400)
    history = s.fit(x, y, epochs=2, val=640)

Every number is computed by libfep's compiled kernels; fit() runs `fepc
train`'s own loop.  Reference: docs/python.md.
"""
from . import datasets
from ._module import Module, Tensor, compile, compile_string, load_module
from ._native import LIBRARY_PATH
from ._session import Session
from .errors import (ArgumentError, ClosedError, DtypeError, FepError, FepIOError, ModelError, NumericError,
                     ShapeError, TensorNameError)

__version__ = "0.1.0"

__all__ = ["compile", "compile_string", "load_module", "Module", "Session", "Tensor", "datasets", "LIBRARY_PATH",
           "FepError", "FepIOError", "ModelError", "TensorNameError", "ShapeError", "NumericError",
           "ArgumentError", "ClosedError", "DtypeError"]
