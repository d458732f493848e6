"""Benchmark: a two-layer network's four gradients from `matcalc.grad` against jax.

    python tests/bench/bench_grad.py [--n 200] [--reps 200] [--threads 1] [--out tests/bench/results_grad.md]

For the squared loss `sum((tanh(X @ W1 + b1) @ W2 + b2 - Y)**2)` and the softmax cross-entropy
`-sum(Y * log(softmax(tanh(X @ W1 + b1) @ W2 + b2, axis=1)))` (every size n), it times
- *matcalc numpy*: `matcalc.grad(expr, "W1,b1,W2,b2").compile("numpy")`, one function returning
  the four gradients;
- *matcalc jax*: `jax.jit` of `compile("jax")` (when jax is installed);
- *jax*: `jax.jit(jax.grad(f, argnums=(0, 1, 2, 3)))` of the same loss in `jax.numpy`;
all in float64, after checking that every output agrees with jax's (rtol 1e-8).  With
`--threads 1` (the default) the process is pinned to one core, so that neither side gets more
cores than the other (XLA runs threads of its own whatever its flags say).  Calls are
interleaved (one of each per round) so that load on the machine hits all of them alike; the
figure is the median over the rounds.  jax is optional: without it only matcalc is timed.
"""
from __future__ import annotations

import argparse
import os
import sys


from bench_threads import pin_threads  # noqa: E402

THREADS = pin_threads(sys.argv, one_core=True)

import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from statistics import median  # noqa: E402

import numpy as np  # noqa: E402

import matcalc  # noqa: E402

WRTS = "W1,b1,W2,b2"
LOSSES = {
    "squared loss": "sum((tanh(X @ W1 + b1) @ W2 + b2 - Y)**2)",
    "softmax cross-entropy": "-sum(Y * log(softmax(tanh(X @ W1 + b1) @ W2 + b2, axis=1)))",
}


def _jax():
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        return jax, jnp
    except ImportError:
        return None


def _jax_loss(name, jnp, jax):
    if name == "squared loss":
        def f(W1, b1, W2, b2, X, Y):
            return jnp.sum((jnp.tanh(X @ W1 + b1) @ W2 + b2 - Y) ** 2)
    else:
        def f(W1, b1, W2, b2, X, Y):
            return -jnp.sum(Y * jax.nn.log_softmax(jnp.tanh(X @ W1 + b1) @ W2 + b2, axis=1))
    return f


def _values(n, rng, name):
    v = {"X": rng.standard_normal((n, n)), "W1": rng.standard_normal((n, n)) / np.sqrt(n),
         "b1": rng.standard_normal(n), "W2": rng.standard_normal((n, n)) / np.sqrt(n),
         "b2": rng.standard_normal(n), "Y": rng.standard_normal((n, n))}
    if name != "squared loss":
        y = np.abs(v["Y"]) + 0.1
        v["Y"] = y / y.sum(axis=1, keepdims=True)
    return v


def _time_interleaved(fns: dict, reps: int) -> dict:
    for fn in fns.values():  # warm up (and compile)
        fn()
        fn()
    times = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - t0) * 1e3)
    return {k: (median(t), min(t)) for k, t in times.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--threads", default="1")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    jx = _jax()
    rng = np.random.default_rng(0)
    lines = [f"# `matcalc.grad` against `jax.grad(f, argnums=(0, 1, 2, 3))`", "",
             f"n = {args.n} (X, W1, W2, Y all n×n; b1, b2 of n entries), float64, {args.threads} thread(s)"
             + (" pinned to one core, " if args.threads == "1" else ", ")
             + f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores, "
             f"median of {args.reps} interleaved rounds; numpy {np.__version__}"
             + (f", jax {jx[0].__version__} on {jx[0].default_backend()}" if jx else ", jax not installed")
             + f"; {platform.processor() or platform.machine()}, Python {platform.python_version()}.", "",
             "Each cell: median / fastest call, in ms; the ratios are of the medians (and of the fastest calls).", "",
             "| loss | matcalc numpy | matcalc jax (jit) | jax.jit(jax.grad) | numpy / jax | matcalc-jax / jax |",
             "|---|---|---|---|---|---|"]
    for name, expr in LOSSES.items():
        g = matcalc.grad(expr, WRTS, assume="rows_sum_to_one=Y" if name != "squared loss" else None)
        v = _values(args.n, rng, name)
        f_np = g.compile("numpy")
        fns = {"np": lambda: f_np(v)}
        want = g.evaluate(v)
        for k, got in zip(g.wrts, f_np(v)):
            assert np.allclose(got, want[k], rtol=1e-8, atol=1e-10), (name, k)
        if jx:
            jax, jnp = jx
            ref = jax.jit(jax.grad(_jax_loss(name, jnp, jax), argnums=(0, 1, 2, 3)))
            jv = {k: jnp.asarray(a) for k, a in v.items()}
            jargs = [jv[k] for k in ("W1", "b1", "W2", "b2", "X", "Y")]
            f_jraw = g.compile("jax")
            f_jx = jax.jit(lambda vals: f_jraw(vals))
            ref_out = [np.asarray(a) for a in ref(*jargs)]
            for k, got, r in zip(g.wrts, f_np(v), ref_out):
                assert np.allclose(got, r, rtol=1e-8, atol=1e-10), (name, k, "numpy vs jax")
            for k, got, r in zip(g.wrts, f_jx(jv), ref_out):
                assert np.allclose(np.asarray(got), r, rtol=1e-8, atol=1e-10), (name, k, "matcalc jax vs jax")
            fns["jx"] = lambda: jax.block_until_ready(f_jx(jv))
            fns["jax"] = lambda: jax.block_until_ready(ref(*jargs))
        t = _time_interleaved(fns, args.reps)
        def cell(k):
            return f"{t[k][0]:.2f} / {t[k][1]:.2f}"

        def ratio(k):
            return f"{t[k][0] / t['jax'][0]:.2f} ({t[k][1] / t['jax'][1]:.2f})"
        if jx:
            lines.append(f"| {name} | {cell('np')} | {cell('jx')} | {cell('jax')} | {ratio('np')} | {ratio('jx')} |")
        else:
            lines.append(f"| {name} | {cell('np')} | – | – | – | – |")
    lines += ["", "Target: matcalc's generated function at most 1.1× jax's time (ratio ≤ 1.1).",
              "The generated numpy function for the squared loss:", "", "```python",
              matcalc.grad(LOSSES["squared loss"], WRTS).to_python().rstrip(), "```", ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
