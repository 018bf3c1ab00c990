"""Session.fit and Session.evaluate: numpy arrays handed to libfep as a
data set (FepData), then `fepc train`'s and `fepc eval`'s own compiled
loops (fep_fit, fep_evaluate in runtime/api_fit.c over runtime/train.c).
Python runs only between batches, for the progress display, every
`report_every` batches.

Data binds to nodes as `fepc train --bind` files do: x to the model's
input node and y to its observed node (a model without inputs, like a
generative one, takes its observed data as x), or a dict {node: array}
for anything else.  Arrays are [samples, *node shape] (a family x[t] as
[samples, T, *shape]), any real dtype; a categorical node also takes class
indices [samples].  They are copied into the data set as float32, as
fepc stores data.
"""
import math
import sys

import numpy as np

from ._native import ffi, lib
from .errors import ArgumentError, DtypeError

_HISTORY_KEYS = ("epoch", "energy", "train_accuracy", "val_accuracy", "val_energy", "seconds")


def _data_nodes(module, kind):
    """Nodes (or families) of one kind, in model order."""
    names = []
    for t in module._table().values():
        name = t.family or t.name
        if t.kind == kind and name not in names:
            names.append(name)
    return names


def _columns(module, x, y, what):
    """[(node, array)] for x, y (or a dict)."""
    if isinstance(x, dict):
        if y is not None:
            raise ArgumentError("%s: give a dict {node: array} or x and y, not both" % what)
        return list(x.items())
    inputs, observed = _data_nodes(module, "input"), _data_nodes(module, "observed")
    if not inputs:
        if len(observed) != 1 or y is not None:
            raise ArgumentError("%s: model '%s' has no input node and observed nodes %s: pass x as the observed "
                                "data%s" % (what, module.name, ", ".join(observed) or "(none)",
                                            "" if len(observed) == 1 else ", or a dict {node: array}"))
        return [(observed[0], x)]
    if len(inputs) != 1:
        raise ArgumentError("%s: model '%s' has input nodes %s: pass a dict {node: array}"
                            % (what, module.name, ", ".join(inputs)))
    cols = [(inputs[0], x)]
    if y is not None:
        if len(observed) != 1:
            raise ArgumentError("%s: model '%s' has observed nodes %s: pass a dict {node: array}"
                                % (what, module.name, ", ".join(observed) or "(none)"))
        cols.append((observed[0], y))
    return cols


class _Data:
    """A FepData built from arrays; freed with the object (or on close)."""

    def __init__(self, module, columns, what):
        from ._module import check, text_arg
        out = ffi.new("FepData **")
        check(lib.fep_data_new(module._live(), out))
        self.handle = ffi.gc(out[0], lib.fep_data_free)
        for node, value in columns:
            key = text_arg(node, "%s node name" % what)
            if value is None:
                raise DtypeError("%s: array for '%s' is None" % (what, node))
            try:
                a = np.asarray(value)
            except (TypeError, ValueError) as e:
                raise DtypeError("%s: array for '%s': %s" % (what, node, e)) from None
            if a.dtype.kind not in "biuf":
                raise DtypeError("%s: array for '%s' must hold real numbers (bool, int or float), not %s"
                                 % (what, node, a.dtype))
            f32 = a.dtype == np.float32
            a = np.ascontiguousarray(a, dtype=np.float32 if f32 else np.float64)
            dims = ffi.new("int64_t[]", list(a.shape) or [0])
            check(lib.fep_data_add(self.handle, key, ffi.from_buffer(a), int(not f32), a.ndim, dims))
        self.samples = lib.fep_data_samples(self.handle)


class _Progress:
    """Per-batch bars with tqdm, one line per epoch without it, or nothing."""

    def __init__(self, mode):
        self.tqdm = None
        if mode in (True, "auto", "tqdm"):
            try:
                from tqdm import tqdm
                self.tqdm = tqdm
            except ImportError:
                if mode == "tqdm":
                    raise
        self.mode = mode
        self.bar = None
        self.done = 0

    def batch(self, epoch, epochs, done, total):
        if not self.tqdm:
            return
        if self.bar is None:
            self.bar = self.tqdm(total=total, desc="epoch %d/%d" % (epoch, epochs), unit="sample", leave=True,
                                 file=sys.stderr)
            self.done = 0
        self.bar.update(done - self.done)
        self.done = done

    def batch_energy(self, energy):
        if self.bar is not None:
            self.bar.set_postfix(energy="%.4f" % energy, refresh=False)

    def epoch(self, logs):
        text = "  ".join("%s %.4f" % (k, v) for k, v in logs.items() if k not in ("epoch", "epochs", "seconds"))
        if self.bar is not None:
            self.bar.set_postfix_str(text)
            self.bar.close()
            self.bar = None
        elif self.mode in (True, "auto", "plain"):
            print("epoch %d/%d  %s  %.1fs" % (logs["epoch"], logs["epochs"], text, logs["seconds"]),
                  file=sys.stderr, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _epoch_logs(stats):
    logs = {"epoch": stats.epoch, "epochs": stats.epochs, "energy": stats.energy}
    for k in ("train_accuracy", "val_accuracy", "val_energy"):
        v = getattr(stats, k)
        if not math.isnan(v):
            logs[k] = v
    logs["seconds"] = stats.seconds
    return logs


def _int_arg(value, what, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DtypeError("%s must be an integer, not %s" % (what, type(value).__name__))
    if not low <= value <= 2**31 - 1:
        raise ArgumentError("%s must be >= %d, not %d" % (what, low, value))
    return int(value)


def fit(session, x, y=None, *, epochs=None, val=None, callback=None, progress=True, clip=0.0, report_every=None):
    """Trains the session's params with `fepc train`'s loop (seeded shuffle,
    batches of the `batch` key, the session's rule, optimizer and schedule).

    x, y      training data (see the module's docstring);
    epochs    epochs to run (default: the `epochs` key);
    val       validation data scored after each epoch: (x, y), x alone, a
              dict, or an int N to hold out N training samples as `fepc train
              --val N` does;
    callback  callback(epoch, logs) after each epoch (logs: this epoch's
              figures); returning True stops training;
    progress  True/"auto" (tqdm bars if tqdm is installed, else a line per
              epoch), "tqdm", "plain" or False;
    clip      clamp gradient entries to +-clip (0: off);
    report_every  batches between progress updates (default: 20, or a
              hundredth of an epoch when that is more).
    Returns the history: {key: [one value per epoch]} for epoch, energy,
    seconds (training time, evaluation excluded) and, where they apply,
    train_accuracy, val_accuracy, val_energy.  The optimizer's state is the
    session's: a second fit (or learn()) continues from it.  An exception
    in the callback or a KeyboardInterrupt stops training after the current
    batch and is raised again."""
    from ._module import check
    handle = session._live()
    if progress not in (True, False, "auto", "tqdm", "plain"):
        raise ArgumentError("progress must be True, False, 'auto', 'tqdm' or 'plain', not %r" % (progress,))
    if callback is not None and not callable(callback):
        raise DtypeError("callback must be callable")
    opt = ffi.new("FepFitOptions *")
    opt.epochs = -1 if epochs is None else _int_arg(epochs, "epochs", 0)
    try:
        opt.clip = float(clip)
    except (TypeError, ValueError):
        raise DtypeError("clip must be a number, not %s" % type(clip).__name__) from None
    train = _Data(session.module, _columns(session.module, x, y, "training data"), "training data")
    val_data = None
    if isinstance(val, (int, np.integer)) and not isinstance(val, bool):
        opt.holdout = _int_arg(val, "val", 0)
    elif val is not None:
        vx, vy = val, None
        if isinstance(val, (tuple, list)):
            if len(val) not in (1, 2):
                raise ArgumentError("val must be an int, (x, y), x or a dict {node: array}")
            vx, vy = val[0], val[1] if len(val) == 2 else None
        val_data = _Data(session.module, _columns(session.module, vx, vy, "validation data"), "validation data")
    batches = max(1, -(-(train.samples - opt.holdout) // max(1, session.batch)))
    opt.report_every = _int_arg(report_every, "report_every", 1) if report_every is not None else \
        max(20, batches // 100)
    history = {k: [] for k in _HISTORY_KEYS}
    failure = []
    bar = _Progress(progress)

    def on_batch(ctx, epoch, done, total, energy):
        try:
            bar.batch(epoch, opt.epochs if opt.epochs >= 0 else session.config["epochs"], done, total)
            bar.batch_energy(energy)
            return 0
        except BaseException as e:   # KeyboardInterrupt too: stop, then raise it below
            failure.append(e)
            return 1

    def on_epoch(ctx, stats):
        try:
            logs = _epoch_logs(stats)
            for k in _HISTORY_KEYS:
                history[k].append(logs.get(k, math.nan))
            bar.epoch(logs)
            stop = callback is not None and callback(stats.epoch, {k: v for k, v in logs.items() if k != "epochs"})
            return 1 if stop is True else 0
        except BaseException as e:
            failure.append(e)
            return 1

    batch_cb = ffi.callback("FepBatchCallback", on_batch)
    epoch_cb = ffi.callback("FepEpochCallback", on_epoch)
    opt.on_batch = batch_cb
    opt.on_epoch = epoch_cb
    try:
        status = lib.fep_fit(handle, train.handle, val_data.handle if val_data else ffi.NULL, opt)
    finally:
        bar.close()
    if failure:
        raise failure[0]
    check(status)
    return {k: v for k, v in history.items() if k in ("epoch", "energy", "seconds") or
            any(not math.isnan(x) for x in v)}


def evaluate(session, x, y=None):
    """{"energy": mean clamped energy per sample, "accuracy": ...} on data
    (accuracy only with a categorical observed node)."""
    from ._module import check
    handle = session._live()
    data = _Data(session.module, _columns(session.module, x, y, "evaluation data"), "evaluation data")
    acc, energy = ffi.new("double *"), ffi.new("double *")
    check(lib.fep_evaluate(handle, data.handle, acc, energy))
    out = {"energy": energy[0]}
    if not math.isnan(acc[0]):
        out["accuracy"] = acc[0]
    return out
