"""Speed of matcalc's generated numpy code against jax (and torch.func when installed).

    python tests/bench/bench_codegen.py [--quick] [--threads N] [--out tests/bench/results_codegen.md]

a. the gradients and Hessians of tests/bench/bench.py's evaluation problems: the generated numpy
   gradient must take ≤ 1.0× `jax.jit(jax.grad(f))`, the Hessian ≤ 0.5× `jax.jit(jax.hessian(f))`;
b. tensorgrad's benchmark problems: the Hessians of `x.T @ A @ x`, `logsumexp(A @ x)` and a small
   MLP `y.T @ tanh(W2 @ tanh(W1 @ x))` by x at n = 64, 256, 1024, against `jax.jit(jax.hessian)`
   and `torch.func.hessian` (when torch is installed);
c. the cheapest association (issue 12): the gradient of `x.T @ inv(S) @ x` by S, generated code
   against the left-to-right product `-(inv(S).T @ x) @ x.T @ inv(S).T` written by hand.

Every generated function's output is checked against jax's (rtol 1e-6) before it is timed.
Times are the best of several runs of repeated calls (a shared, loaded machine makes medians
noisy); everything in float64 on one thread (`--threads`).
"""
from __future__ import annotations

import math
import os
import platform
import sys
import time


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_threads import pin_threads  # noqa: E402

# one core for the whole process: XLA starts threads of its own whatever its flags say, so
# without the affinity jax would use both cores against numpy's one
THREADS = int(pin_threads(sys.argv, one_core=True))

import numpy as np  # noqa: E402

import matcalc  # noqa: E402

QUICK = "--quick" in sys.argv


def best_ms(fn, block=None, budget=0.6 if not QUICK else 0.15, rounds=5):
    """Best time of one call (ms): `rounds` rounds of as many calls as fit in budget / rounds."""
    out = fn()
    if block:
        block(out)
    t0 = time.perf_counter()
    out = fn()
    if block:
        block(out)
    once = max(time.perf_counter() - t0, 1e-6)
    reps = max(1, int(budget / rounds / once))
    best = math.inf
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(reps):
            out = fn()
        if block:
            block(out)
        best = min(best, (time.perf_counter() - t0) / reps)
    return best * 1e3


def load_jax():
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        return jax, jnp
    except ImportError:
        return None


def load_torch():
    try:
        import torch
        import torch.func  # noqa: F401
        torch.set_num_threads(THREADS)
        return torch
    except ImportError:
        return None


def problems_a(rng, jnp):
    q = 500 if QUICK else 2000
    A = rng.standard_normal((q, q)) / math.sqrt(q)
    m, n = (1000, 200) if QUICK else (5000, 500)
    X = rng.standard_normal((m, n)) / math.sqrt(n)
    a, b, k = (300, 300, 20) if QUICK else (1000, 1000, 50)
    mm, ni, nh, no = (500, 200, 200, 20) if QUICK else (2000, 500, 500, 50)
    return [
        dict(name=f"quadratic `x.T @ A @ x` (n = {q})", expr="x.T @ A @ x", wrt="x",
             values={"x": rng.standard_normal(q), "A": A}, jf=lambda x, A: x @ A @ x, hess=True),
        dict(name=f"logistic regression (m = {m}, n = {n})", expr="sum(log(1 + exp(-y * (X @ w))))", wrt="w",
             values={"w": rng.standard_normal(n), "X": X, "y": rng.choice([-1.0, 1.0], m)},
             jf=lambda w, X, y: jnp.sum(jnp.log(1 + jnp.exp(-y * (X @ w)))), hess=True),
        dict(name=f"matrix factorisation ({a}×{b}, rank {k}) by U", expr="sum((T - U @ V.T) ** 2)", wrt="U",
             values={"U": rng.standard_normal((a, k)), "T": rng.standard_normal((a, b)),
                     "V": rng.standard_normal((b, k))},
             jf=lambda U, T, V: jnp.sum((T - U @ V.T) ** 2), hess=False),
        dict(name=f"2-layer MLP (X {mm}×{ni}, W1 {ni}×{nh}, W2 {nh}×{no}) by W1",
             expr="sum((tanh(X @ W1) @ W2 - Y) ** 2)", wrt="W1",
             values={"W1": rng.standard_normal((ni, nh)) / math.sqrt(ni), "X": rng.standard_normal((mm, ni)),
                     "W2": rng.standard_normal((nh, no)) / math.sqrt(nh), "Y": rng.standard_normal((mm, no))},
             jf=lambda W1, X, W2, Y: jnp.sum((jnp.tanh(X @ W1) @ W2 - Y) ** 2), hess=False),
    ]


def problems_b(rng, n, jnp, torch):
    A = rng.standard_normal((n, n)) / math.sqrt(n)
    W1, W2 = rng.standard_normal((n, n)) / math.sqrt(n), rng.standard_normal((n, n)) / math.sqrt(n)
    out = [
        dict(name=f"`x.T @ A @ x` (n = {n})", expr="x.T @ A @ x", wrt="x",
             values={"x": rng.standard_normal(n), "A": A}, jf=lambda x, A: x @ A @ x,
             tf=lambda x, A: x @ A @ x),
        dict(name=f"`logsumexp(A @ x)` (n = {n})", expr="logsumexp(A @ x)", wrt="x",
             values={"x": rng.standard_normal(n), "A": A},
             jf=lambda x, A: _jax_lse(jnp, A @ x), tf=lambda x, A: torch.logsumexp(A @ x, 0) if torch else None),
        dict(name=f"MLP `y.T @ tanh(W2 @ tanh(W1 @ x))` (n = {n})", expr="y.T @ tanh(W2 @ tanh(W1 @ x))", wrt="x",
             values={"x": rng.standard_normal(n), "W1": W1, "W2": W2, "y": rng.standard_normal(n)},
             jf=lambda x, W1, W2, y: y @ jnp.tanh(W2 @ jnp.tanh(W1 @ x)),
             tf=lambda x, W1, W2, y: y @ torch.tanh(W2 @ torch.tanh(W1 @ x)) if torch else None),
    ]
    return out


def _jax_lse(jnp, z):
    c = jnp.max(z)
    return jnp.log(jnp.sum(jnp.exp(z - c))) + c


def run_one(p, kind, jax, torch=None):
    """(matcalc ms, jax ms, torch ms or None, check) for the gradient or Hessian of p."""
    d = (matcalc.diff if kind == "gradient" else matcalc.hessian)(p["expr"], p["wrt"])
    f = d.compile("numpy")
    names = list(p["values"])  # the wrt first: jax differentiates argument 0
    args = [p["values"][k] for k in names]
    got = f(p["values"])
    t_np = best_ms(lambda: f(p["values"]))
    t_jax = t_torch = None
    check = "not compared (no jax)"
    if jax is not None:
        jx, jnp = jax
        g = jx.jit(jx.grad(p["jf"]) if kind == "gradient" else jx.hessian(p["jf"]))
        jargs = [jnp.asarray(a) for a in args]
        ref = np.asarray(g(*jargs))
        check = "ok" if np.allclose(got, ref, rtol=1e-6, atol=1e-9 * max(1, np.abs(ref).max())) else "**DIFFERS**"
        t_jax = best_ms(lambda: g(*jargs), block=lambda o: o.block_until_ready())
    if torch is not None and p.get("tf") is not None:
        targs = [torch.as_tensor(a) for a in args]
        tfun = torch.func.hessian(p["tf"]) if kind == "Hessian" else torch.func.grad(p["tf"])
        t_torch = best_ms(lambda: tfun(*targs))
    return d, t_np, t_jax, t_torch, check


def fmt(x):
    return "—" if x is None else f"{x:.3g}"


def main():
    rng = np.random.default_rng(0)
    jax, torch = load_jax(), load_torch()
    jnp = jax[1] if jax else None
    lines = ["# Generated code against jax / torch (tests/bench/bench_codegen.py)", ""]
    la = os.getloadavg()
    lines.append(f"mode **{'quick' if QUICK else 'full'}**; Python {platform.python_version()}, numpy {np.__version__}, "
                 f"jax {jax[0].__version__ if jax else 'absent'}, torch {torch.__version__ if torch else 'absent'}; "
                 f"{platform.platform()}, {os.cpu_count()} CPUs, {THREADS} thread(s), load average "
                 f"{la[0]:.1f} {la[1]:.1f} {la[2]:.1f} at start; {time.strftime('%Y-%m-%d %H:%M')}")
    lines += ["", "Best-of-rounds ms per call, warm (jax compiled beforehand); ratio = matcalc numpy / jax "
              "(below 1: matcalc faster). Targets: gradient ≤ 1.0×, Hessian ≤ 0.5×.", ""]
    goals = []
    lines += ["## a. bench.py's evaluation problems", "",
              "| problem | derivative | matcalc numpy ms | jax.jit ms | ratio | target | check |", "|---|---|---|---|---|---|---|"]
    for p in problems_a(rng, jnp):
        for kind in ("gradient", "Hessian") if p["hess"] else ("gradient",):
            d, t_np, t_jax, _, check = run_one(p, kind, jax)
            r = t_np / t_jax if t_jax else None
            target = 1.0 if kind == "gradient" else 0.5
            met = r is not None and r <= target
            goals.append((f"{p['name']} {kind}", r, target))
            lines.append(f"| {p['name']} | {kind} | {fmt(t_np)} | {fmt(t_jax)} | {fmt(r)}× | ≤ {target}× "
                         f"{'met' if met else '**missed**'} | {check} |")
    lines += ["", "## b. tensorgrad's Hessian problems", "",
              "| problem | matcalc numpy ms | jax.jit(jax.hessian) ms | torch.func.hessian ms | numpy / jax | check |",
              "|---|---|---|---|---|---|"]
    for n in ((64, 256) if QUICK else (64, 256, 1024)):
        for p in problems_b(rng, n, jnp, torch):
            d, t_np, t_jax, t_torch, check = run_one(p, "Hessian", jax, torch)
            r = t_np / t_jax if t_jax else None
            goals.append((f"{p['name']} Hessian", r, 0.5))
            lines.append(f"| {p['name']} | {fmt(t_np)} | {fmt(t_jax)} | {fmt(t_torch)} | {fmt(r)}× | {check} |")
    lines += ["", "## c. the cheapest association", ""]
    n = 500 if QUICK else 2000
    A, B = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    a, b = rng.standard_normal(n), rng.standard_normal(n)
    d = matcalc.diff("a.T @ A @ X @ B @ b", "X")
    f = d.compile("numpy")
    vals = {"A": A, "B": B, "a": a, "b": b, "X": np.zeros((n, n))}

    def by_hand():  # the product left to right: A.T a, then an outer product, then n×n @ n×n
        return (A.T @ a)[:, None] * b[None, :] @ B.T

    assert np.allclose(f(vals), by_hand())
    t_gen, t_hand = best_ms(lambda: f(vals)), best_ms(by_hand)
    lines += [f"gradient of `a.T @ A @ X @ B @ b` by X (`{d.text}`) at n = {n}: matcalc's code "
              f"`{d.to_python().splitlines()[-1].strip()}` {t_gen:.3g} ms; the product left to right "
              f"{t_hand:.3g} ms ({t_hand / t_gen:.1f}× slower)."]
    S = rng.standard_normal((n, n)) + 2 * math.sqrt(n) * np.eye(n)
    x = rng.standard_normal(n)
    d = matcalc.diff("x.T @ inv(S) @ x", "S")
    f = d.compile("numpy")
    t_inv = np.linalg.inv(S)
    t_gen = best_ms(lambda: f(S, x))
    t_prod = best_ms(lambda: -((t_inv.T @ x)[:, None] * x[None, :]) @ t_inv.T)
    lines += ["", f"gradient of `x.T @ inv(S) @ x` by S at n = {n}: matcalc's code "
              f"`{d.to_python().splitlines()[-1].strip()}` (the inverse included) {t_gen:.3g} ms; the product "
              f"left to right alone (inverse excluded) {t_prod:.3g} ms."]
    lines += ["", "## targets", "", "| problem | ratio | target |", "|---|---|---|"]
    for name, r, target in goals:
        lines.append(f"| {name} | {fmt(r)}× | ≤ {target}× {'met' if r is not None and r <= target else '**missed**'} |")
    la = os.getloadavg()
    lines += ["", f"_load average at the end {la[0]:.1f} {la[1]:.1f} {la[2]:.1f}._", ""]
    text = "\n".join(lines)
    print(text)
    if "--out" in sys.argv:
        with open(sys.argv[sys.argv.index("--out") + 1], "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
