"""Modules: a compiled model (fep.compile, fep.compile_string) or a shared
object built by `fepc build` (fep.load_module), its tensors, and the
sessions opened on it.

A Module owns libfep's FepModule.  Sessions keep their module alive; closing
a module (explicitly or with `with`) closes its sessions first, so no
handle ever outlives what it points into.
"""
import collections
import os
import weakref

from ._native import ffi, lib
from .errors import ClosedError, DtypeError, raise_for

KINDS = ("param", "const", "input", "latent", "observed")

Tensor = collections.namedtuple("Tensor", "name kind shape categorical family family_index rule_made")
Tensor.__doc__ = """A tensor of the model: `kind` is one of param, const, input, latent,
observed; `shape` excludes a value node's batch dimension; `categorical`
nodes also take class indices; `family`/`family_index` name x[3] as
element 3 of family x (else None/0); `rule_made` params were added by a
rule's relaxation (back.W, psi.v)."""


def check(status):
    """Raises the exception for a failed libfep call."""
    if status:
        raise_for(status, ffi.string(lib.fep_last_error()).decode("utf-8", "replace"))


def text_arg(value, what):
    """A str or path argument as bytes for C; DtypeError for anything else."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "surrogateescape")
    if not isinstance(value, str):
        raise DtypeError("%s must be a string or path, not %s" % (what, type(value).__name__))
    if "\0" in value:
        raise DtypeError("%s contains a NUL character" % what)
    return value.encode("utf-8", "surrogateescape")


def _open(fn, *args):
    out = ffi.new("FepModule **")
    check(fn(*args, out))
    return Module(out[0])


def compile(path):
    """Compiles a .fep file and JIT-compiles its kernels for this CPU."""
    return _open(lib.fep_compile_file, text_arg(path, "path"))


def compile_string(source, name="<string>"):
    """Compiles model source text; `name` stands for the file in diagnostics."""
    return _open(lib.fep_compile_string, text_arg(name, "name"), text_arg(source, "source"))


def load_module(path):
    """Loads a shared object written by `fepc build M.fep -o m.so`."""
    return _open(lib.fep_load_so, text_arg(path, "path"))


class Module:
    """A compiled model.  `tensors` lists its tensors; `session(...)` opens a
    session on it."""

    def __init__(self, handle):
        self._handle = handle
        self._sessions = weakref.WeakSet()
        self._tensors = None   # {name: Tensor}, replaced (not mutated) when the model grows
        self._count = ffi.new("int *")
        self.name = ffi.string(lib.fep_module_name(handle)).decode()

    def _live(self):
        if self._handle is None:
            raise ClosedError("module '%s' is closed" % self.name)
        return self._handle

    @property
    def tensors(self):
        """{name: Tensor} in model order (declared tensors, then params rules added)."""
        return dict(self._table())

    def _table(self):
        """The cached {name: Tensor}, refreshed when the model has grown."""
        h = self._live()
        n = self._count
        check(lib.fep_tensor_count(h, n))
        if self._tensors is None or len(self._tensors) != n[0]:   # a rule may have added params
            info = ffi.new("FepTensorInfo *")
            table = {}
            for i in range(n[0]):
                check(lib.fep_tensor_at(h, i, info))
                name = ffi.string(info.name).decode()
                family = ffi.string(info.family).decode() if info.family else None
                table[name] = Tensor(name, KINDS[info.kind], tuple(info.dims[k] for k in range(info.rank)),
                                     bool(info.categorical), family, info.family_index, bool(info.rule_made))
            self._tensors = table
        return self._tensors

    def session(self, batch=None, *, dtype="f32", threads=None, **settings):
        """Opens a session.  `batch` and every keyword in `settings` are train
        keys (rule, steps, step_size, optimizer, epochs, seed, integrator,
        momentum, tol, schedule, warmup), checked exactly as `fepc --key
        value` checks them; values are numbers or .fep text ("pc(backward =
        learned)", "adam(lr = 0.01)").  `dtype` is "f32" or "f64" (or the
        numpy type); `threads` the batch-parallel threads (default: one per
        core; results do not depend on it)."""
        from ._session import Session   # the two modules refer to each other
        s = Session(self, batch, dtype, threads, settings)
        self._sessions.add(s)
        return s

    def close(self):
        """Frees the module and closes its sessions; later use raises ClosedError."""
        if self._handle is None:
            return
        for s in list(self._sessions):
            s.close()
        lib.fep_module_free(self._handle)
        self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_handle", None) is not None:
            try:
                self.close()
            except Exception:   # interpreter shutdown may have torn down the module globals
                pass

    def __repr__(self):
        return "<fep.Module %s%s>" % (self.name, "" if self._handle is not None else " (closed)")
