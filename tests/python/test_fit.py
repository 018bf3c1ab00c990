"""Session.fit and Session.evaluate run fepc's own training and evaluation
loops: with the same seed and data they give `fepc train`'s and `fepc
eval`'s numbers exactly (Fashion-MNIST subsets, bound arrays with a
held-out split, an unrolled RNN's family input); callbacks can stop
training, errors in them propagate; divergence raises NumericError."""
import csv

import numpy as np
import pytest

import fep
from common import read_safetensors
from conftest import fepc, model_path


def read_log(path):
    with open(path) as f:
        return [{k: float(v) if v else None for k, v in row.items()} for row in csv.DictReader(f)]


def assert_history_is_log(history, log, accuracy_key):
    assert history["epoch"] == [int(r["epoch"]) for r in log]
    for got, row in zip(history["energy"], log):
        assert abs(got - row["energy"]) <= 1e-8 * abs(row["energy"])   # the log prints 9 digits
    assert history["train_accuracy"] == [r["train_accuracy"] for r in log]
    assert history[accuracy_key] == [r["test_accuracy"] for r in log]


def test_fit_equals_fepc_train_on_fashion_mnist(mlp, tmp_path):
    fepc("train", model_path("fmnist_mlp"), "--epochs", 2, "--limit", 2000, "--seed", 4, "--log", tmp_path / "l.csv",
         "--save", tmp_path / "p.safetensors")
    x, y = fep.datasets.fashion_mnist("train", limit=2000)
    xt, yt = fep.datasets.fashion_mnist("test")
    with mlp.session(seed=4) as s:
        history = s.fit(x, y, epochs=2, val=(xt, yt), progress=False)
        assert_history_is_log(history, read_log(tmp_path / "l.csv"), "val_accuracy")
        assert history["val_accuracy"][-1] > 0.7
        assert len(history["val_energy"]) == 2 and len(history["seconds"]) == 2
        # evaluate() is `fepc eval` on the test split with the trained params.
        out = fepc("eval", model_path("fmnist_mlp"), "--params", tmp_path / "p.safetensors").stdout
        want = dict(line.split(": ") for line in out.strip().splitlines())
        got = s.evaluate(xt, yt)
        assert "%.4f" % got["accuracy"] == want["accuracy"] and "%.4f" % got["energy"] == want["energy"]
        # The params are the CLI's too, bit for bit.
        s.save(tmp_path / "mine.safetensors")
        theirs = read_safetensors(str(tmp_path / "p.safetensors"))
        mine = read_safetensors(str(tmp_path / "mine.safetensors"))
        assert all(np.array_equal(theirs[k], mine[k]) for k in theirs)


def test_holdout_equals_fepc_val_with_bound_files(mlp, fmnist, tmp_path):
    (x, y), _ = fmnist
    x, y = x[:640], y[:640]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    fepc("train", model_path("fmnist_mlp"), "--bind", "x=%s" % (tmp_path / "x.npy"), "--bind",
         "y=%s" % (tmp_path / "y.npy"), "--val", 128, "--epochs", 2, "--log", tmp_path / "l.csv")
    with mlp.session() as s:
        history = s.fit({"x": x, "y": y.astype(np.float64)}, epochs=2, val=128, progress=False)
    assert_history_is_log(history, read_log(tmp_path / "l.csv"), "val_accuracy")


def test_family_input_equals_fepc_train(tmp_path):
    rng = np.random.default_rng(5)
    x = np.eye(57, dtype=np.float32)[rng.integers(0, 57, (96, 12))]     # [n, T, 57] one-hot letters
    y = rng.integers(0, 18, 96)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    fepc("train", model_path("names_rnn"), "--bind", "x=%s" % (tmp_path / "x.npy"), "--bind",
         "y=%s" % (tmp_path / "y.npy"), "--val", 32, "--epochs", 1, "--steps", 8, "--log", tmp_path / "l.csv")
    with fep.compile(model_path("names_rnn")) as m, m.session(steps=8) as s:
        history = s.fit(x, y, epochs=1, val=32, progress=False)
    assert_history_is_log(history, read_log(tmp_path / "l.csv"), "val_accuracy")


def test_generative_fit_reports_validation_energy(fmnist):
    (x, _), (xt, _) = fmnist
    with fep.compile(model_path("fmnist_generative")) as m, m.session(optimizer="sgd(lr = 0.001)", steps=20) as s:
        history = s.fit(x[:256], epochs=2, val=xt[:128], progress=False)
        assert set(history) == {"epoch", "energy", "val_energy", "seconds"}
        assert history["energy"][1] < history["energy"][0]
        assert s.evaluate(xt[:128])["energy"] == pytest.approx(history["val_energy"][-1], rel=1e-12)
        assert "accuracy" not in s.evaluate(xt[:128])


def test_callback_stops_and_sees_each_epoch(mlp, fmnist):
    (x, y), _ = fmnist
    seen = []
    with mlp.session() as s:
        history = s.fit(x[:256], y[:256], epochs=5, progress=False,
                        callback=lambda epoch, logs: seen.append((epoch, dict(logs))) or epoch == 2)
    assert [e for e, _ in seen] == [1, 2] and history["epoch"] == [1, 2]
    assert seen[1][1]["energy"] == history["energy"][1] and "train_accuracy" in seen[0][1]


def test_callback_errors_propagate(mlp, fmnist):
    (x, y), _ = fmnist
    with mlp.session() as s:
        def boom(epoch, logs):
            raise ValueError("stop here")
        with pytest.raises(ValueError, match="stop here"):
            s.fit(x[:128], y[:128], epochs=3, callback=boom, progress=False)

        def interrupt(epoch, logs):
            raise KeyboardInterrupt
        with pytest.raises(KeyboardInterrupt):
            s.fit(x[:128], y[:128], epochs=3, callback=interrupt, progress=False)
        assert s.fit(x[:128], y[:128], epochs=1, progress=False)["epoch"] == [1]   # still usable


def test_progress_modes(mlp, fmnist, capsys):
    (x, y), _ = fmnist
    with mlp.session() as s:
        s.fit(x[:128], y[:128], epochs=2, progress="plain")
        err = capsys.readouterr().err
        assert err.count("\n") == 2 and err.startswith("epoch 1/2  energy ") and "train_accuracy" in err
        s.fit(x[:128], y[:128], epochs=1, progress=False)
        assert capsys.readouterr().err == ""
        s.fit(x[:128], y[:128], epochs=1, progress="tqdm")
        err = capsys.readouterr().err
        assert "epoch 1/1" in err and "128/128" in err and "train_accuracy" in err


def test_second_fit_continues_and_f64_trains(mlp, fmnist):
    (x, y), (xt, yt) = fmnist
    with mlp.session() as s:
        first = s.fit(x, y, epochs=1, val=(xt, yt), progress=False)
        second = s.fit(x, y, epochs=1, val=(xt, yt), progress=False)
        assert second["val_accuracy"][0] > first["val_accuracy"][0]
    with mlp.session(dtype="f64") as s:
        h64 = s.fit(x, y, epochs=1, val=(xt, yt), progress=False)
        assert s["W1"].dtype == np.float64
    assert abs(h64["val_accuracy"][0] - first["val_accuracy"][0]) < 0.02


def test_divergence_raises_numeric_error(mlp, fmnist):
    (x, y), _ = fmnist
    with mlp.session() as s:
        s["W3"] = np.full((10, 256), np.inf)
        with pytest.raises(fep.NumericError, match="epoch 1, batch 0: training diverged: non-finite values"):
            s.fit(x[:128], y[:128], epochs=1, progress=False)
