"""The package's API on real models: tensors, sessions and their settings,
reading and writing tensors (copies, shapes, dtypes), relaxation, clamping
and prediction, save/load, streams; and the exception each bad input
raises, with fepc's full message."""
import numpy as np
import pytest

import fep
from conftest import model_path


def test_module_tensors(mlp):
    t = mlp.tensors
    assert list(t)[:3] == ["x", "W1", "b1"] and mlp.name == "fmnist_mlp"
    assert t["W1"] == fep.Tensor("W1", "param", (256, 784), False, None, 0, False)
    assert t["y"].kind == "observed" and t["y"].categorical and t["h1"].kind == "latent"
    rnn = fep.compile(model_path("names_rnn"))
    assert rnn.tensors["x[3]"].family == "x" and rnn.tensors["x[3]"].family_index == 3
    rnn.close()


def test_settings_are_per_session_and_checked():
    mlp = fep.compile(model_path("fmnist_mlp"))
    older = mlp.session()
    s = mlp.session(batch=16, rule="pc(backward = learned)", steps=7, step_size=0.25, optimizer="sgd(lr = 0.01)",
                    schedule="cosine", seed=9)
    assert s.batch == 16
    c = s.config
    assert (c["rule"], c["steps"], c["step_size"], c["schedule"], c["seed"]) == \
        ("pc(backward = learned, derivative = exact, error_weights = identity)", 7, 0.25, "cosine", 9)
    assert c["optimizer"].startswith("sgd(lr = 0.01,")
    assert mlp.tensors["back.W2"].rule_made          # the relaxation's params joined the model
    other = mlp.session()
    assert (other.config["rule"], other.config["steps"], other.batch) == ("fpa", 20, 64)
    with pytest.raises(fep.TensorNameError, match="another rule"):
        older["back.W2"]                                     # opened before the rule added it
    assert s["back.W2"].shape == (256, 256)
    mlp.close()


def test_reads_are_copies_and_writes_are_checked(mlp):
    with mlp.session(batch=4) as s:
        w = s["W1"]
        assert w.shape == (256, 784) and w.dtype == np.float32
        w[:] = 0
        assert np.abs(s["W1"]).max() > 0                     # the copy is the caller's
        s["W1"] = np.ones((256, 784), np.float64)            # same_kind cast
        assert np.array_equal(s["W1"], np.ones((256, 784), np.float32))
        s["b1"] = np.arange(256)                             # ints are numbers too
        assert s["b1"][255] == 255
        s["x"] = np.full((4, 784), 0.5, np.float32)
        s["y"] = np.array([1, 2, 3, 4])                      # class indices for a categorical node
        assert np.array_equal(s["y"], np.eye(10, dtype=np.float32)[[1, 2, 3, 4]])
        s["y"] = np.eye(10)[[0, 1, 2, 3]]                    # or one-hot
        e = s.relax()
        assert e == s.energy and np.isfinite(e)
        assert set(s.errors()) == {"h1", "h2", "y"} and s.errors()["h1"].shape == (4, 256)
        assert s["error.y"].shape == (4, 10)


def test_f64_session_keeps_doubles():
    with fep.compile(model_path("scalar_graph")) as m, m.session(batch=1, dtype="f64") as s:
        s["theta"] = np.array([1 / 3])
        assert s["theta"][0] == 1 / 3 and s.dtype is np.float64


def test_clamp_predict_save_load(mlp, fmnist, tmp_path):
    (x, y), _ = fmnist
    with mlp.session(batch=64) as s:
        s.fit(x[:640], y[:640], epochs=1, progress=False)
        s.save(tmp_path / "p.safetensors")
        trained = s.params()
        s.clamp("y", False)                                  # predict: y free, set to its prediction
        s["x"] = x[:64]
        s.relax()
        predicted = s["y"].argmax(1)
        assert (predicted == y[:64]).mean() > 0.5
    with mlp.session(batch=64) as t:
        t.load(tmp_path / "p.safetensors")
        assert all(np.array_equal(t[k], v) for k, v in trained.items())
        t.clamp("y", False)
        t["x"] = x[:64]
        t.relax()
        assert np.array_equal(t["y"].argmax(1), predicted)


def test_learn_moves_params_and_lowers_energy(mlp, fmnist):
    (x, y), _ = fmnist
    with mlp.session(batch=64, optimizer="sgd(lr = 0.0005)") as s:
        s["x"], s["y"] = x[:64], y[:64]
        before = s.relax()
        w = s["W3"]
        grads = s.grads()
        s.learn()
        assert np.allclose(s["W3"], w - 0.0005 * grads["W3"], rtol=0, atol=1e-6)
        assert s.relax() < before


def test_stream_advance_carries_state():
    with fep.compile(model_path("kalman")) as m, m.session(batch=1, dtype="f64") as s:
        s["u"], s["o"] = [[1.0]], [[0.5, -0.2, 1.0]]
        s.relax()
        first = s["s"]
        assert np.array_equal(s["prev.s"], np.zeros((1, 3)))
        s.advance()
        assert np.array_equal(s["prev.s"], first)
        s["prev.s"] = np.zeros((1, 3))                       # restart the stream
        s.relax()
        assert np.array_equal(s["s"], first)


def test_model_errors_carry_fepc_diagnostics(tmp_path):
    with pytest.raises(fep.ModelError) as e:
        fep.compile_string("model m\nparam W : [3, 3] = zeros\nlatent h : [3] ~ normal(W @ q)\n", name="m.fep")
    assert str(e.value) == ("m.fep:3:29: error: unknown name 'q'\n"
                            "   3 | latent h : [3] ~ normal(W @ q)\n"
                            "     |                             ^\n")
    assert e.value.status == 2 and isinstance(e.value, fep.FepError)
    (tmp_path / "bad.fep").write_text("model m\nlatent h : [3] ~ normal(0\n")
    with pytest.raises(fep.ModelError, match=r"bad.fep:\d+:\d+: error"):
        fep.compile(tmp_path / "bad.fep")


def test_train_key_errors_read_as_the_command_line(mlp):
    with pytest.raises(fep.ArgumentError) as e:
        mlp.session(steps=-3)
    assert str(e.value) == ("--steps:1:1: error: train key 'steps' expects an integer >= 0, got -3\n"
                            "   1 | -3\n     | ^~\n")
    with pytest.raises(fep.ArgumentError, match="did you mean 'steps'"):
        mlp.session(stepz=3)


BAD = [
    (lambda m, s: fep.compile(None), fep.DtypeError),
    (lambda m, s: fep.compile("/no/such/model.fep"), fep.FepIOError),
    (lambda m, s: fep.load_module("/no/such/m.so"), fep.FepIOError),
    (lambda m, s: fep.load_module(model_path("kalman")), fep.ModelError),
    (lambda m, s: fep.compile_string(b"\xff\xfe", name="x"), fep.ModelError),
    (lambda m, s: m.session(batch=-1), fep.ArgumentError),
    (lambda m, s: m.session(batch=0), fep.ArgumentError),
    (lambda m, s: m.session(batch=2.5), fep.ArgumentError),
    (lambda m, s: m.session(batch="many"), fep.ArgumentError),
    (lambda m, s: m.session(batch=True), fep.DtypeError),
    (lambda m, s: m.session(steps=[1]), fep.DtypeError),
    (lambda m, s: m.session(step_size=float("nan")), fep.ArgumentError),
    (lambda m, s: m.session(rule="pc(backward = sideways)"), fep.ArgumentError),
    (lambda m, s: m.session(dtype="f16"), fep.ArgumentError),
    (lambda m, s: m.session(threads=-1), fep.ArgumentError),
    (lambda m, s: m.session(threads=1.5), fep.DtypeError),
    (lambda m, s: s.__setitem__("x", np.zeros((4, 783))), fep.ShapeError),
    (lambda m, s: s.__setitem__("x", np.zeros((3, 784))), fep.ShapeError),
    (lambda m, s: s.__setitem__("x", np.zeros((4, 784), complex)), fep.DtypeError),
    (lambda m, s: s.__setitem__("x", None), fep.DtypeError),
    (lambda m, s: s.__setitem__("x", "pixels"), fep.DtypeError),
    (lambda m, s: s.__setitem__("x", [[1, 2], [3]]), fep.DtypeError),
    (lambda m, s: s.__setitem__("y", np.array([0, 1, 2, 10])), fep.ShapeError),
    (lambda m, s: s.__setitem__("y", np.array([0, 1, 2, 0.5])), fep.ShapeError),
    (lambda m, s: s.__setitem__("nope", 1.0), fep.TensorNameError),
    (lambda m, s: s.__setitem__("error.h1", np.zeros((4, 256))), fep.TensorNameError),
    (lambda m, s: s[None], fep.DtypeError),
    (lambda m, s: s["grad.nope"], fep.TensorNameError),
    (lambda m, s: s.learn(), fep.ArgumentError),
    (lambda m, s: s.energy, fep.ArgumentError),
    (lambda m, s: s.grads(), fep.ArgumentError),
    (lambda m, s: s.relax(steps=-2), fep.ArgumentError),
    (lambda m, s: s.relax(steps="5"), fep.DtypeError),
    (lambda m, s: s.clamp("x", False), fep.TensorNameError),
    (lambda m, s: s.clamp(7), fep.DtypeError),
    (lambda m, s: s.load("/no/such/p.safetensors"), fep.FepIOError),
    (lambda m, s: s.load(model_path("kalman")), fep.FepIOError),
    (lambda m, s: s.save("/no/such/dir/p.safetensors"), fep.FepIOError),
    (lambda m, s: s.fit(np.zeros((10, 783)), np.zeros(10)), fep.ShapeError),
    (lambda m, s: s.fit(np.zeros((10, 784)), np.full(10, 12)), fep.ShapeError),
    (lambda m, s: s.fit(np.zeros((10, 784)), np.zeros(9)), fep.ShapeError),
    (lambda m, s: s.fit(np.zeros((10, 784))), fep.ShapeError),
    (lambda m, s: s.fit(np.zeros((0, 784)), np.zeros(0)), fep.ShapeError),
    (lambda m, s: s.fit(None, np.zeros(10)), fep.DtypeError),
    (lambda m, s: s.fit({"x": np.zeros((10, 784)), "z": np.zeros(10)}), fep.TensorNameError),
    (lambda m, s: s.fit({"h1": np.zeros((10, 256))}), fep.ShapeError),
    (lambda m, s: s.fit({"x": np.zeros((10, 784))}, np.zeros(10)), fep.ArgumentError),
    (lambda m, s: s.fit(np.zeros((10, 784)), np.zeros(10), val=10), fep.ArgumentError),
    (lambda m, s: s.fit(np.zeros((10, 784)), np.zeros(10), val=-1), fep.ArgumentError),
    (lambda m, s: s.fit(np.zeros((10, 784)), np.zeros(10), val=(1, 2, 3)), fep.ArgumentError),
    (lambda m, s: s.fit(np.zeros((10, 784)), np.zeros(10), epochs=-1), fep.ArgumentError),
    (lambda m, s: s.fit(np.zeros((10, 784)), np.zeros(10), epochs="2"), fep.DtypeError),
    (lambda m, s: s.fit(np.zeros((10, 784)), np.zeros(10), clip=-1), fep.ArgumentError),
    (lambda m, s: s.fit(np.zeros((10, 784)), np.zeros(10), clip="big"), fep.DtypeError),
    (lambda m, s: s.fit(np.zeros((10, 784)), np.zeros(10), progress="fancy"), fep.ArgumentError),
    (lambda m, s: s.fit(np.zeros((10, 784)), np.zeros(10), callback=3), fep.DtypeError),
    (lambda m, s: s.evaluate(np.zeros((10, 784))), fep.ShapeError),
]


@pytest.mark.parametrize("call,expected", BAD, ids=range(len(BAD)))
def test_bad_input_raises_documented_type(mlp, call, expected):
    with mlp.session(batch=4) as s:
        with pytest.raises(expected) as e:
            call(mlp, s)
        assert isinstance(e.value, fep.FepError) and str(e.value)
        assert type(e.value).__name__ != "FepError"
        s["x"] = np.zeros((4, 784))                          # the session still works afterwards
        s["y"] = np.zeros(4, np.int64)
        assert np.isfinite(s.relax())


def test_exception_classes_are_also_builtins():
    assert issubclass(fep.ShapeError, ValueError) and issubclass(fep.ArgumentError, ValueError)
    assert issubclass(fep.DtypeError, TypeError) and issubclass(fep.TensorNameError, KeyError)
    assert issubclass(fep.FepIOError, OSError) and issubclass(fep.NumericError, ArithmeticError)
    assert issubclass(fep.ClosedError, fep.ArgumentError)


def test_closed_handles_raise_not_crash(mlp):
    s = mlp.session(batch=2)
    s.close()
    s.close()                                                 # idempotent
    for call in (lambda: s["W1"], lambda: s.relax(), lambda: s.__setitem__("x", np.zeros((2, 784))),
                 lambda: s.fit(np.zeros((2, 784)), np.zeros(2)), lambda: s.save("p.safetensors")):
        with pytest.raises(fep.ClosedError):
            call()
    m = fep.compile(model_path("kalman"))
    t = m.session(batch=1)
    m.close()                                                 # closes its sessions first
    with pytest.raises(fep.ClosedError):
        t.relax()
    with pytest.raises(fep.ClosedError):
        m.session()
    with pytest.raises(fep.ClosedError):
        m.tensors


def test_stream_equals_fepc_filter(tmp_path):
    """A Python loop of set, relax, read, advance gives `fepc filter`'s estimates bit for bit."""
    from conftest import fepc
    rng = np.random.default_rng(2)
    u = np.exp(-0.01 * np.arange(150))[:, None]
    o = np.cumsum(rng.normal(size=(150, 3)), axis=0)
    with open(tmp_path / "s.csv", "w") as f:
        f.write("u,o[0],o[1],o[2]\n")
        for ut, ot in zip(u, o):
            f.write("%.17g,%.17g,%.17g,%.17g\n" % (ut[0], *ot))
    fepc("filter", model_path("kalman"), "--data", tmp_path / "s.csv", "--out", tmp_path / "e.csv")
    want = np.loadtxt(tmp_path / "e.csv", delimiter=",", skiprows=1, dtype=np.float64).astype(np.float32)
    with fep.compile(model_path("kalman")) as m, m.session(batch=1) as s:
        got = []
        for ut, ot in zip(u, o):
            s["u"], s["o"] = ut[None], ot[None]
            s.relax()
            got.append(s["s"][0])
            s.advance()
    assert np.array_equal(np.array(got), want)
