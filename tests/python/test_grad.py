"""Gradients, errors, relaxed values and energy through the package equal
`fepc grad`'s bit for bit: same model, same seed, same batch, for several
rules (one with a relaxation's own params), both precisions, a JIT module
and an AOT module built by `fepc build`."""

import numpy as np
import pytest

import fep
from common import read_safetensors, write_safetensors
from conftest import fepc, model_path

CASES = [
    ("fmnist_mlp", "fpa", "f32", ()),
    ("fmnist_mlp", "fpa", "f64", ()),
    ("fmnist_mlp", "bp", "f32", ()),
    ("fmnist_mlp", "pc", "f64", ("steps", 7)),
    ("fmnist_mlp", "pc(backward = learned, error_weights = learned)", "f32", ("steps", 5)),
    ("fmnist_generative", "pc", "f32", ("steps", 20)),
]


def batch_for(model, rng, n=6):
    if model == "fmnist_mlp":
        return {"x": rng.random((n, 784)), "y": rng.integers(0, 10, n)}
    return {"x": rng.random((n, 784))}


def package_outputs(module, rule, dtype, settings, batch):
    n = len(batch["x"])
    with module.session(batch=n, rule=rule, dtype=dtype, seed=3, **settings) as s:
        for name, value in batch.items():
            s[name] = value
        energy = s.relax()
        out = {"grad." + k: v for k, v in s.grads().items()}
        out.update({"error." + k: v for k, v in s.errors().items()})
        for name, t in module.tensors.items():
            if t.kind in ("latent", "observed"):
                out["value." + name] = s[name]
        out["energy"] = np.array(energy * n, dtype=s.dtype)
    return out


@pytest.mark.parametrize("model,rule,dtype,extra", CASES)
def test_package_equals_fepc_grad(tmp_path, model, rule, dtype, extra):
    batch = batch_for(model, np.random.default_rng(7))
    write_safetensors(str(tmp_path / "batch.safetensors"), batch)
    settings = dict([extra]) if extra else {}
    flags = ["--%s" % k.replace("_", "-") for k in settings]
    args = [x for pair in zip(flags, settings.values()) for x in pair]
    fepc("grad", model_path(model), "--batch", tmp_path / "batch.safetensors", "--out", tmp_path / "g.safetensors",
         "--rule", rule, "--dtype", dtype, "--seed", 3, *args)
    want = read_safetensors(str(tmp_path / "g.safetensors"))
    with fep.compile(model_path(model)) as m:
        got = package_outputs(m, rule, dtype, settings, batch)
    assert sorted(got) == sorted(want)
    for k in want:
        assert got[k].dtype == want[k].dtype and got[k].shape == want[k].shape, k
        assert np.array_equal(got[k], want[k]), "%s differs by %g" % (k, np.abs(got[k] - want[k]).max())


def test_aot_module_equals_jit(tmp_path):
    so = tmp_path / "mlp.so"
    fepc("build", model_path("fmnist_mlp"), "-o", so)
    batch = batch_for("fmnist_mlp", np.random.default_rng(11), n=5)
    with fep.load_module(so) as aot, fep.compile(model_path("fmnist_mlp")) as jit:
        assert aot.name == "fmnist_mlp" and list(aot.tensors) == list(jit.tensors)
        a = package_outputs(aot, "fpa", "f32", {}, batch)
        j = package_outputs(jit, "fpa", "f32", {}, batch)
        for k in j:
            assert np.array_equal(a[k], j[k]), k
        # A module holds only the rule it was built with.
        with pytest.raises(fep.ModelError, match="built for rule fpa"):
            aot.session(rule="bp")
