#!/usr/bin/python3
"""Filtering a stream (models/kalman.fep, thesis §3.4): predictive coding as
a Kalman filter, one time step at a time from Python.

Simulates the model's accelerating body (s_t = A s_{t-1} + B u_t + noise,
o_t = C s_t + noise, unit noise, u_t = exp(-0.01 t)), then for each step
binds u_t and o_t, relaxes s (the model's 5 steps from its prediction
A prev(s) + B u), reads the estimate and advances the stream.  Compares the
estimates with an exact Kalman filter using the same matrices and plots
both filters' errors against the true state (PNG).

    PYTHONPATH=python docs/examples/python/kalman_filter.py [--steps 400] [-o kalman.png]
"""
import argparse
import os

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import fep  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def simulate(A, B, C, T, rng):
    s, states, obs, controls = np.zeros(3), [], [], []
    for t in range(T):
        u = np.array([np.exp(-0.01 * t)])
        s = A @ s + B @ u + rng.normal(0, 1, 3)
        states.append(s)
        obs.append(C @ s + rng.normal(0, 1, 3))
        controls.append(u)
    return np.array(states), np.array(obs), np.array(controls)


def kalman(A, B, C, obs, controls):
    """The exact filter, process and observation noise I, from s = 0, P = 0."""
    s, P, out = np.zeros(3), np.zeros((3, 3)), []
    for o, u in zip(obs, controls):
        s, P = A @ s + B @ u, A @ P @ A.T + np.eye(3)
        K = P @ C.T @ np.linalg.inv(C @ P @ C.T + np.eye(3))
        s, P = s + K @ (o - C @ s), (np.eye(3) - K @ C) @ P
        out.append(s)
    return np.array(out)


def pc_filter(session, obs, controls):
    """fepc's estimates, one relaxation per time step."""
    out = []
    for o, u in zip(obs, controls):
        session["u"] = u[None]      # a batch of one stream
        session["o"] = o[None]
        session.relax()
        out.append(session["s"][0])
        session.advance()           # prev(s) <- s
    return np.array(out)


def rms(a):
    return float(np.sqrt(np.mean(np.square(a))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("-o", "--out", default="kalman.png")
    args = ap.parse_args()

    model = fep.compile(os.path.join(ROOT, "models", "kalman.fep"))
    session = model.session(batch=1, dtype="f64")
    A, B, C = session["A"], session["B"], session["C"]     # the model's own matrices
    states, obs, controls = simulate(A, B, C, args.steps, np.random.default_rng(1))
    est = pc_filter(session, obs, controls)
    exact = kalman(A, B, C, obs, controls)
    gap = rms(est - exact) / rms(exact)
    print("PC filter vs exact Kalman filter: RMS gap %.2f%% of the signal's RMS" % (100 * gap))
    print("RMS error against the true state: PC %.3f, Kalman %.3f, raw observations through C^-1 %.3f" % (
        rms(est - states), rms(exact - states), rms(obs @ np.linalg.inv(C).T - states)))

    # The states grow (the body accelerates), so plot each filter's error.
    fig, axes = plt.subplots(3, 1, figsize=(7, 6), sharex=True)
    for i, name in enumerate(("position", "velocity", "acceleration")):
        axes[i].axhline(0, color="0.7", lw=1)
        axes[i].plot(exact[:, i] - states[:, i], color="C0", lw=1, label="exact Kalman filter")
        axes[i].plot(est[:, i] - states[:, i], color="C3", lw=1, ls="--", label="PC (fepc)")
        axes[i].set_ylabel(name + " error")
    axes[0].legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("time step")
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
