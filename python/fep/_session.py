"""Sessions: every tensor of a model for one batch size, with relaxation,
learning, gradients, training (fit) and evaluation.

Reading a tensor (`s["W1"]`, errors(), grads()) returns a new numpy array,
a copy of the session's memory: it stays valid after the session changes
or closes, and writing to it changes nothing in the session.  Writing
(`s["x"] = a`) copies the array in, after checking its shape and type.
"""
import numbers

import numpy as np

from . import _training
from ._module import check, text_arg
from ._native import ffi, lib
from .errors import ArgumentError, ClosedError, DtypeError, ShapeError, TensorNameError

_DTYPES = {"f32": np.float32, "float32": np.float32, "f64": np.float64, "float64": np.float64}


def _dtype_of(dtype):
    if isinstance(dtype, str) and dtype in _DTYPES:
        return _DTYPES[dtype]
    try:
        d = np.dtype(dtype)
    except TypeError:
        d = None
    if d in (np.dtype(np.float32), np.dtype(np.float64)):
        return d.type
    raise ArgumentError("dtype must be 'f32' or 'f64', not %r" % (dtype,))


def setting_text(key, value):
    """A train-key value as .fep text: numbers as literals, strings as written."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
        raise DtypeError("train key '%s' takes a number or .fep text, not %s" % (key, type(value).__name__))
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return str(int(value))
    return repr(float(value))


def _parse_config(text):
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" = ")
        try:
            out[key] = int(value)
        except ValueError:
            try:
                out[key] = float(value)
            except ValueError:
                out[key] = value
    return out


class Session:
    """Opened by Module.session(); see there for the arguments."""

    def __init__(self, module, batch, dtype, threads, settings):
        self.module = module
        self._handle = None
        self._names = {}                       # name -> (the module's table it was found in, _resolve's result)
        self._energy = ffi.new("double *")
        self.dtype = _dtype_of(dtype)
        if threads is None:
            threads = 0
        if isinstance(threads, bool) or not isinstance(threads, numbers.Integral):
            raise DtypeError("threads must be an integer, not %s" % type(threads).__name__)
        if not 0 <= threads <= 256:
            raise ArgumentError("threads must be 0 (one per core) to 256, not %d" % threads)
        if batch is not None:
            settings = dict(settings, batch=batch)
        pairs = [(k, setting_text(k, v)) for k, v in settings.items() if v is not None]
        keys = [ffi.new("char[]", k.encode()) for k, _ in pairs]
        values = [ffi.new("char[]", text_arg(v, "train key '%s'" % k)) for k, v in pairs]
        opt = ffi.new("FepSessionOptions *")
        opt.f64 = int(self.dtype is np.float64)
        opt.threads = int(threads)
        opt.n_settings = len(pairs)
        key_array = ffi.new("const char *[]", keys or [ffi.NULL])
        value_array = ffi.new("const char *[]", values or [ffi.NULL])
        opt.keys = key_array
        opt.values = value_array
        out = ffi.new("FepSession **")
        check(lib.fep_session_open(module._live(), opt, out))
        self._handle = out[0]
        self.threads = int(threads)
        self.config = self._config()
        self.batch = self.config["batch"]

    # ---- lifetime ----

    def _live(self):
        if self._handle is None:
            raise ClosedError("session is closed")
        self.module._live()
        return self._handle

    def close(self):
        """Frees the session; later use raises ClosedError."""
        if self._handle is not None:
            lib.fep_session_free(self._handle)
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
        state = "closed" if self._handle is None else "batch %d, rule %s, %s" % (
            self.batch, self.config["rule"], np.dtype(self.dtype).name)
        return "<fep.Session of %s: %s>" % (self.module.name, state)

    def _config(self):
        needed = ffi.new("size_t *")
        buf = ffi.new("char[]", 2048)
        check(lib.fep_session_config(self._live(), buf, 2048, needed))
        if needed[0] > 2048:
            buf = ffi.new("char[]", needed[0])
            check(lib.fep_session_config(self._live(), buf, needed[0], needed))
        return _parse_config(ffi.string(buf).decode())

    # ---- tensors ----

    def _resolve(self, name):
        """(name as bytes, array shape, Tensor) of a tensor or derived buffer name."""
        table = self.module._table()
        hit = self._names.get(name) if isinstance(name, str) else None
        if hit is not None and hit[0] is table:
            return hit[1]
        found = self._resolve_in(name, table)
        if isinstance(name, str):
            self._names[name] = (table, found)
        return found

    def _resolve_in(self, name, tensors):
        key = text_arg(name, "tensor name")
        name = key.decode("utf-8", "surrogateescape")
        base = name
        for prefix in ("error.", "grad.", "prev."):
            if name.startswith(prefix) and name not in tensors:
                base = name[len(prefix):]
        t = tensors.get(base)
        if t is None:
            raise TensorNameError("model '%s' has no tensor '%s'" % (self.module.name, name))
        is_value = t.kind in ("input", "latent", "observed")
        return key, ((self.batch,) + t.shape if is_value else t.shape), t

    def __getitem__(self, name):
        """A copy of tensor NAME (value nodes: [batch, *shape]); also the derived
        buffers error.NODE, grad.PARAM and prev.NODE."""
        key, shape, _ = self._resolve(name)
        out = np.empty(shape, dtype=self.dtype)
        get = lib.fep_get_f64 if self.dtype is np.float64 else lib.fep_get
        ctype = "double[]" if self.dtype is np.float64 else "float[]"
        check(get(self._live(), key, ffi.from_buffer(ctype, out, require_writable=True), out.size))
        return out

    def __setitem__(self, name, value):
        """Copies an array into tensor NAME: exactly its shape (value nodes
        [batch, *shape]; a categorical node also takes [batch] class indices),
        real numbers (bool, int, float; cast to the session's dtype)."""
        key, shape, t = self._resolve(name)
        a = _real_array(value, "tensor '%s'" % name)
        if t.categorical and a.shape == (self.batch,) and len(t.shape) == 1 and shape == (self.batch,) + t.shape:
            a = _one_hot(a, t.shape[0], name)
        if a.shape != shape:
            raise ShapeError("tensor '%s' takes an array of shape %s%s, not %s" % (
                name, shape, " (or class indices of shape (%d,))" % self.batch if t.categorical else "",
                a.shape))
        a = np.ascontiguousarray(a, dtype=self.dtype)
        put = lib.fep_set_f64 if self.dtype is np.float64 else lib.fep_set
        ctype = "double[]" if self.dtype is np.float64 else "float[]"
        check(put(self._live(), key, ffi.from_buffer(ctype, a), a.size))

    def clamp(self, name, clamped=True):
        """Clamps (True) or frees (False) a latent or observed node; a free
        observed node is set to its prediction by relax()."""
        check(lib.fep_clamp(self._live(), text_arg(name, "node name"), int(bool(clamped))))

    # ---- relaxation and learning ----

    def relax(self, steps=None):
        """Relaxes the free nodes (`steps` steps; default: the `steps` key) and
        returns the mean energy per sample."""
        if steps is None:
            steps = -1
        elif isinstance(steps, bool) or not isinstance(steps, numbers.Integral):
            raise DtypeError("steps must be an integer, not %s" % type(steps).__name__)
        elif not 0 <= steps <= 2**31 - 1:
            raise ArgumentError("steps must be >= 0, not %d" % steps)
        check(lib.fep_relax(self._live(), int(steps)))
        return self.energy

    def learn(self):
        """One optimizer step on the params at the relaxed values."""
        check(lib.fep_learn(self._live()))

    def advance(self):
        """Ends a stream time step: prev(x) <- x for every node read through prev()."""
        check(lib.fep_advance(self._live()))

    @property
    def energy(self):
        """Mean energy per sample after the last relax()."""
        check(lib.fep_energy(self._live(), self._energy))
        return self._energy[0]

    def errors(self):
        """{node: precision-weighted prediction error} of every latent and
        observed node after relax() (copies, [batch, *shape])."""
        return self._derived("error.", ("latent", "observed"))

    def grads(self):
        """{param: dF/dparam summed over the batch} at the relaxed values,
        without an update (what `fepc grad` writes as grad.PARAM)."""
        check(lib.fep_grads(self._live()))
        return self._derived("grad.", ("param",))

    def _derived(self, prefix, kinds):
        out = {}
        for name, t in self.module._table().items():
            if t.kind in kinds:
                try:
                    out[name] = self[prefix + name]
                except TensorNameError:
                    pass   # no such buffer under this session's rule (a fixed param, another rule's param)
        return out

    # ---- parameters ----

    def save(self, path):
        """Writes every param to a safetensors file (atomically)."""
        check(lib.fep_save_params(self._live(), text_arg(path, "path")))

    def load(self, path):
        """Reads params from a safetensors file (names and shapes checked)."""
        check(lib.fep_load_params(self._live(), text_arg(path, "path")))

    def params(self):
        """{name: copy} of every param of this session."""
        return self._derived("", ("param",))

    # ---- training ----

    def fit(self, x, y=None, *, epochs=None, val=None, callback=None, progress=True, clip=0.0, report_every=None):
        """Trains with `fepc train`'s compiled loop; see fep._training.fit."""
        return _training.fit(self, x, y, epochs=epochs, val=val, callback=callback, progress=progress, clip=clip,
                             report_every=report_every)

    def evaluate(self, x, y=None):
        """`fepc eval`'s figures on data: {"energy": ..., "accuracy": ...}."""
        return _training.evaluate(self, x, y)


def _real_array(value, what):
    """value as a numpy array of real numbers; DtypeError otherwise."""
    if value is None:
        raise DtypeError("%s takes an array of numbers, not None" % what)
    try:
        a = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise DtypeError("%s takes an array of numbers: %s" % (what, e)) from None
    if a.dtype.kind not in "biuf":
        raise DtypeError("%s takes real numbers (bool, int or float), not %s" % (what, a.dtype))
    return a


def _one_hot(indices, classes, name):
    k = np.asarray(indices)
    if k.dtype.kind == "f" and not np.all(np.isfinite(k) & (k == np.floor(k))):
        raise ShapeError("tensor '%s': class indices must be whole numbers" % name, 4)
    if np.any((k < 0) | (k >= classes)):
        raise ShapeError("tensor '%s': class indices must be in 0..%d" % (name, classes - 1))
    out = np.zeros((k.shape[0], classes))
    out[np.arange(k.shape[0]), k.astype(np.int64)] = 1
    return out
