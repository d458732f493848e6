#!/usr/bin/env python
"""matcalc benchmarks (issue "Benchmarks"): a script, not a test.

    python tests/bench/bench.py [--quick] [--out tests/bench/results.md]

Prints Markdown tables (and writes them to --out):

  a. derivation latency on the public cases (tests/public_cases.py), matcalc and sympy's
     MatrixSymbol calculus side by side, warm, in one process;
  b. scaling: the gradient of an L-layer tanh MLP's squared loss by W1, L = 1 … 64
     (sympy in a subprocess with a timeout, so a hang cannot stall the script);
  c. evaluation speed of matcalc's generated code (numpy, and jax under jax.jit) against
     jax.grad / jax.hessian under jax.jit (skipped, with a note, when jax is absent);
  d. a Targets section: met / missed, and by how much.

`--quick` runs everything smaller and with fewer repetitions (under ~60 s in total).
The script never edits matcalc; it only calls its public API (plus `postorder` for node counts).
"""
from __future__ import annotations

import argparse
import gc
import io
import itertools
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path


from bench_threads import pin_threads  # noqa: E402

THREADS = pin_threads(sys.argv, one_core=True)  # XLA starts threads of its own: one core for both sides

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
ROOT = TESTS.parent
sys.path.insert(0, str(TESTS))

import matcalc  # noqa: E402
from matcalc.expr import postorder  # noqa: E402

import public_cases as P  # noqa: E402

# ----------------------------------------------------------------------------- settings

FULL = dict(lat_reps=30, lat_warm=3, sym_reps=30, sym_warm=2,
            scale_L=(1, 2, 4, 8, 16, 32, 64), scale_reps=15, sym_mlp_timeout=60.0, sym_mlp_stop_on_error=False,
            eval_budget=1.0, eval_min=5, eval_max=200,
            quad_n=2000, logit_m=5000, logit_n=500, mf=(1000, 1000, 50), mlp=(2000, 500, 500, 50))
QUICK = dict(lat_reps=6, lat_warm=1, sym_reps=2, sym_warm=1,
             scale_L=(1, 2, 4, 8, 16, 32, 64), scale_reps=3, sym_mlp_timeout=20.0, sym_mlp_stop_on_error=True,
             eval_budget=0.15, eval_min=3, eval_max=30,
             quad_n=500, logit_m=1000, logit_n=100, mf=(300, 300, 20), mlp=(500, 100, 100, 10))

TARGETS = dict(lat_median_ms=10.0, lat_p95_ms=50.0, scale_ratio=80.0, hess_ratio=1.0, grad_ratio=1.2)


class Report:
    """Collects Markdown; prints each piece as it is produced."""

    def __init__(self):
        self.buf = io.StringIO()

    def __call__(self, text: str = ""):
        print(text, flush=True)
        self.buf.write(text + "\n")

    def table(self, header, rows):
        self("| " + " | ".join(header) + " |")
        self("|" + "|".join("---" for _ in header) + "|")
        for r in rows:
            self("| " + " | ".join(str(c) for c in r) + " |")
        self()


def ms(x):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 100 else f"{x:.0f}"


def ratio(x):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:.3f}x" if x < 0.1 else f"{x:.2f}x" if x < 100 else f"{x:.0f}x"


def time_calls(fn, reps, warm, before=None):
    """Wall times (ms) of `reps` calls of fn after `warm` untimed ones; `before()` runs untimed."""
    for _ in range(warm):
        if before:
            before()
        fn()
    out = []
    for _ in range(reps):
        if before:
            before()
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def median(xs):
    return float(np.median(xs)) if len(xs) else float("nan")


def p95(xs):
    return float(np.percentile(xs, 95)) if len(xs) else float("nan")


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else float("nan")


# ============================================================================ a. latency

def derive(case):
    shapes = None if case.get("defaults") else case["shapes"]
    if case["kind"] == "diff":
        return matcalc.diff(case["expr"], case["wrt"], shapes=shapes, layout=case.get("layout", "mixed"))
    if case["kind"] == "hessian":
        return matcalc.hessian(case["expr"], case["wrt"], shapes=shapes)
    return matcalc.vjp(case["expr"], case["wrt"], upstream=case.get("upstream", "G"), shapes=shapes)


# sympy's side: per case, one or more equivalent MatrixSymbol formulations (tried in order; the
# first that sympy differentiates to a closed form is the one timed). Vectors are n×1 matrices,
# `sum(v)` is 1ᵀv, element-wise functions are `applyfunc`. None: sympy cannot express the case.
def _sympy_cases():
    import sympy as sp
    from sympy import (Determinant, HadamardPower, HadamardProduct, Inverse, OneMatrix,
                       Trace)

    def sq(e):  # sum of squares of a vector/matrix expression
        return Trace(e.T * e)

    t = sp.Dummy("t")
    return {
        "seed-dot-by-w": [lambda s: s.w.T * s.x],
        "seed-Ax-jacobian": [lambda s: s.A * s.x],
        "seed-ew-div-by-u": [lambda s: HadamardProduct(s.u, s.v.applyfunc(sp.Lambda(t, 1 / t)))],
        "seed-linear-regression": [lambda s: (s.X * s.w - s.y).T * (s.X * s.w - s.y)],
        "seed-exp-jacobian": [lambda s: s.x.applyfunc(sp.exp)],
        "lin-aTXb": [lambda s: s.a.T * s.X * s.b],
        "lin-sum-Ax": [lambda s: OneMatrix(1, s.A.shape[0]) * s.A * s.x],
        "lin-scaled-dot": [lambda s: 2 * s.c.T * s.x],
        "quad-xTx": [lambda s: s.x.T * s.x],
        "quad-bXTXc": [lambda s: s.b.T * s.X.T * s.X * s.c],
        "quad-ridge": [lambda s: sq(s.A * s.x - s.b) + s["lambda"] * s.x.T * s.x,
                       lambda s: (s.A * s.x - s.b).T * (s.A * s.x - s.b) + s["lambda"] * s.x.T * s.x],
        "tr-AX": [lambda s: Trace(s.A * s.X)],
        "tr-XTAX": [lambda s: Trace(s.X.T * s.A * s.X)],
        "tr-XX": [lambda s: Trace(s.X * s.X)],
        "tr-AXTB": [lambda s: Trace(s.A * s.X.T * s.B)],
        "det-X": [lambda s: Determinant(s.X)],
        "logdet-X": [lambda s: sp.log(Determinant(s.X))],
        "inv-aXb": [lambda s: s.a.T * Inverse(s.X) * s.b],
        "tr-invX-A": [lambda s: Trace(Inverse(s.X) * s.A)],
        "ew-sum-exp": [lambda s: OneMatrix(1, s.x.shape[0]) * s.x.applyfunc(sp.exp),
                       lambda s: Trace(OneMatrix(1, s.x.shape[0]) * s.x.applyfunc(sp.exp))],
        "ew-sin-hadamard": [lambda s: Trace(s.W.T * s.X.applyfunc(sp.sin))],
        "ew-sqrt-jacobian": [lambda s: s.x.applyfunc(sp.sqrt)],
        "ew-cube": [lambda s: OneMatrix(1, s.x.shape[0]) * HadamardPower(s.x, 3),
                    lambda s: OneMatrix(1, s.x.shape[0]) * HadamardProduct(s.x, s.x, s.x)],
        "ml-logistic": [lambda s: OneMatrix(1, s.X.shape[0]) * (OneMatrix(s.X.shape[0], 1) + HadamardProduct(-s.y, s.X * s.w).applyfunc(sp.exp)).applyfunc(sp.log),
                        lambda s: OneMatrix(1, s.X.shape[0]) * HadamardProduct(s.y, s.X * s.w).applyfunc(sp.Lambda(t, sp.log(1 + sp.exp(-t))))],
        "ml-tanh-layer": [lambda s: OneMatrix(1, s.X.shape[0]) * (s.X * s.W).applyfunc(sp.tanh) * s.v],
        "ml-matrix-factorisation": [lambda s: sq(s.T - s.U * s.V.T)],
        "ml-logsumexp": [lambda s: sp.log(Trace(OneMatrix(1, s.x.shape[0]) * s.x.applyfunc(sp.exp)))],
        "ml-gaussian-quad": [lambda s: sp.Rational(1, 2) * s.x.T * Inverse(s.S) * s.x],
        "jac-softmax": None,  # no softmax in sympy's matrix calculus
        "jac-tanh-Ax": [lambda s: (s.A * s.x).applyfunc(sp.tanh)],
        "jac-vector-by-scalar": [lambda s: s.alpha * s.x],
        "layout-numerator-Ax": [lambda s: s.A * s.x],
        "layout-denominator-Ax": [lambda s: s.A * s.x],
        "layout-numerator-trAX": [lambda s: Trace(s.A * s.X)],
        "mm-XW-by-W": [lambda s: s.X * s.W],
        "mm-inv": [lambda s: Inverse(s.X)],
        "mm-headline-defaults": [lambda s: s.X * s.W + OneMatrix(s.X.shape[0], 1) * s.b.T],
        "vjp-WX-by-X": [lambda s: s.W * s.X],
        "vjp-bias": [lambda s: s.X * s.W + OneMatrix(s.X.shape[0], 1) * s.b.T],
        "vjp-tanh-layer": [lambda s: (s.X * s.W).applyfunc(sp.tanh)],
        "hess-quadratic": [lambda s: s.x.T * s.A * s.x],
        "hess-least-squares": [lambda s: sq(s.A * s.x - s.b), lambda s: (s.A * s.x - s.b).T * (s.A * s.x - s.b)],
    }


class _NS(dict):
    __getattr__ = dict.__getitem__


def sympy_namespace(case, concrete=False):
    import sympy as sp
    dims = {}

    def dim(d):
        if isinstance(d, int):
            return d
        if concrete:
            return P.DIM_SIZES[d]
        if d not in dims:
            dims[d] = sp.Symbol(d, integer=True, positive=True)
        return dims[d]

    s = _NS()
    for name, shape in case["shapes"].items():
        if len(shape) == 0:
            s[name] = sp.Symbol(name)
        elif len(shape) == 1:
            s[name] = sp.MatrixSymbol(name, dim(shape[0]), 1)
        else:
            s[name] = sp.MatrixSymbol(name, dim(shape[0]), dim(shape[1]))
    return s


def sympy_derive(case, build):
    """Build the sympy expression for the case and differentiate it as the case asks."""
    import sympy as sp
    s = sympy_namespace(case)
    f = build(s)
    x = s[case["wrt"]]
    if case["kind"] == "hessian":
        return f.diff(x).diff(x)
    if case["kind"] == "vjp":
        G = sp.MatrixSymbol(case.get("upstream", "G"), *f.shape)
        return sp.Trace(G.T * f).diff(x)
    return f.diff(x)


def sympy_unevaluated(r):
    import sympy as sp
    return r.has(sp.Derivative) or type(r).__name__ == "ArrayDerivative"


def sympy_value(expr, case, values):
    """Numbers of a sympy (matrix / array) expression: dimensions and variables substituted."""
    import sympy as sp
    sizes = {sp.Symbol(d, integer=True, positive=True): v for d, v in P.DIM_SIZES.items()}
    e = expr.subs(sizes)
    rep = {}
    for sym in e.free_symbols:
        if isinstance(sym, sp.MatrixSymbol):
            v = np.asarray(values[sym.name], dtype=float)
            rep[sym] = sp.ImmutableMatrix(v.reshape(sym.shape[0], sym.shape[1]) if v.ndim == 1 else v)
        elif isinstance(sym, sp.Symbol) and sym.name in values:
            rep[sym] = sp.Float(values[sym.name])
    r = e.xreplace(rep).doit()
    if hasattr(r, "as_explicit") and not isinstance(r, sp.MatrixBase):
        r = r.as_explicit()
    if isinstance(r, sp.MatrixBase):
        return np.array(r.evalf().tolist(), dtype=float)
    if isinstance(r, sp.NDimArray):
        return np.array(sp.Array(r).applyfunc(lambda z: z.evalf()).tolist(), dtype=float)
    return np.array(float(r))


def same_up_to_layout(got, ref, rtol=1e-6, atol=1e-8):
    """Equal after dropping unit axes, for some order of the axes (layouts differ between tools)."""
    got, ref = np.squeeze(np.asarray(got, dtype=float)), np.squeeze(np.asarray(ref, dtype=float))
    if got.size != ref.size:
        return False
    if got.ndim != ref.ndim:
        return got.ndim <= 1 and ref.ndim <= 1 and np.allclose(got.reshape(-1), ref.reshape(-1), rtol, atol)
    for perm in itertools.permutations(range(got.ndim)):
        g = np.transpose(got, perm)
        if g.shape == ref.shape and np.allclose(g, ref, rtol=rtol, atol=atol):
            return True
    return False


def part_a(R, cfg, results):
    import sympy as sp
    from sympy.core.cache import clear_cache

    R("## a. Derivation latency on the public cases")
    R()
    R(f"In-process, warm: each derivation runs {cfg['lat_warm']} times untimed, then {cfg['lat_reps']} times "
      f"timed (ms, wall clock). matcalc: `diff` / `hessian` / `vjp` from the expression string (parse, shape "
      f"inference, derivation, simplification; `.text` not included). sympy {sp.__version__}: building the "
      f"`MatrixSymbol` expression and `.diff()` ({cfg['sym_warm']} untimed, {cfg['sym_reps']} timed); sympy's "
      f"global cache is cleared before every call (untimed), otherwise a repeat returns the memoised result. "
      f"*sympy result*: ok = numerically equal to matcalc's derivative up to the order of axes (layout); "
      f"wrong = a closed form with different numbers; unevaluated = an unevaluated `Derivative`; "
      f"error = sympy raises; n/a = sympy's matrix calculus cannot express the case.")
    R()
    builders = _sympy_cases()
    rows, all_mc, ratios = [], [], []
    per_case = []
    counts = {}
    for case in P.CASES:
        if case["kind"] == "error":
            continue
        t_mc = time_calls(lambda: derive(case), cfg["lat_reps"], cfg["lat_warm"])
        all_mc += t_mc
        d = derive(case)
        values = P.sample(case, seed=0)
        ref = d.evaluate(values)
        # sympy: find the first formulation sympy handles, check it, then time it
        status, t_sy, chosen = "n/a", [], None
        alts = builders.get(case["id"])
        if alts:
            last_err = None
            for build in alts:
                try:
                    clear_cache()
                    r = sympy_derive(case, build)
                except Exception as e:  # noqa: BLE001 - sympy's failures are data here
                    last_err = f"error ({type(e).__name__})"
                    continue
                if sympy_unevaluated(r):
                    last_err = "unevaluated"
                    continue
                chosen = (build, r)
                break
            if chosen is None:
                status = last_err
            else:
                try:
                    ok = same_up_to_layout(sympy_value(chosen[1], case, values), ref)
                    status = "ok" if ok else f"**wrong** (`{str(chosen[1])[:60]}`)"
                except Exception as e:  # noqa: BLE001
                    status = f"unchecked ({type(e).__name__})"
                build = chosen[0]
                t_sy = time_calls(lambda: sympy_derive(case, build), cfg["sym_reps"], cfg["sym_warm"], before=clear_cache)
        key = status.split(" ")[0].strip("*")
        counts[key] = counts.get(key, 0) + 1
        rat = median(t_sy) / median(t_mc) if t_sy else None
        if rat and status == "ok":
            ratios.append(rat)
        per_case.append(dict(id=case["id"], median=median(t_mc), p95=p95(t_mc)))
        rows.append([f"`{case['id']}`", case["kind"], ms(median(t_mc)), ms(p95(t_mc)),
                     ms(median(t_sy)) if t_sy else "—", ms(p95(t_sy)) if t_sy else "—",
                     ratio(rat), status])
    R.table(["case", "kind", "matcalc median", "matcalc p95", "sympy median", "sympy p95", "sympy / matcalc", "sympy result"], rows)
    worst_med = max(per_case, key=lambda c: c["median"])
    worst_p95 = max(per_case, key=lambda c: c["p95"])
    R(f"**matcalc over all {len(per_case)} cases × {cfg['lat_reps']} calls:** median {ms(median(all_mc))} ms, "
      f"p95 {ms(p95(all_mc))} ms, max {ms(max(all_mc))} ms; slowest case median `{worst_med['id']}` "
      f"{ms(worst_med['median'])} ms, highest case p95 `{worst_p95['id']}` {ms(worst_p95['p95'])} ms.  ")
    R(f"**sympy results:** " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ".  ")
    R(f"**sympy / matcalc** (median time, on the {len(ratios)} cases sympy gets right): geometric mean "
      f"{ratio(geomean(ratios))}, range {ratio(min(ratios)) if ratios else '—'} … {ratio(max(ratios)) if ratios else '—'}.")
    R()
    results["lat"] = dict(median=median(all_mc), p95=p95(all_mc), per_case=per_case)


# ============================================================================ b. scaling

def mlp_expr(L: int) -> str:
    """sum((tanh(…tanh(X @ W1) @ W2…) @ WL - Y) ** 2): L weight matrices, L-1 tanh layers."""
    e = "X @ W1"
    for i in range(2, L + 1):
        e = f"tanh({e}) @ W{i}"
    return f"sum(({e} - Y) ** 2)"


def mlp_shapes(L: int) -> dict:
    s = {"X": ("m", "n"), "Y": ("m", "n")}
    s.update({f"W{i}": ("n", "n") for i in range(1, L + 1)})
    return s


def mlp_values(L: int, m=3, n=4, seed=0):
    rng = np.random.default_rng(seed)
    v = {"X": rng.standard_normal((m, n)), "Y": rng.standard_normal((m, n))}
    v.update({f"W{i}": rng.standard_normal((n, n)) / math.sqrt(n) for i in range(1, L + 1)})
    return v


def mlp_numpy(L: int, v):
    Z = v["X"] @ v["W1"]
    for i in range(2, L + 1):
        Z = np.tanh(Z) @ v[f"W{i}"]
    return np.sum((Z - v["Y"]) ** 2)


def sympy_mlp_worker(L: int):
    """Run in a subprocess: sympy's gradient of the L-layer MLP loss; prints one JSON line."""
    import sympy as sp
    from sympy.core.cache import clear_cache

    def build(L, m, n):
        X, Y = sp.MatrixSymbol("X", m, n), sp.MatrixSymbol("Y", m, n)
        Ws = [sp.MatrixSymbol(f"W{i}", n, n) for i in range(1, L + 1)]
        Z = X * Ws[0]
        for W in Ws[1:]:
            Z = Z.applyfunc(sp.tanh) * W
        E = Z - Y
        return sp.Trace(E.T * E), Ws[0]

    m, n = sp.Symbol("m", integer=True, positive=True), sp.Symbol("n", integer=True, positive=True)
    f, W1 = build(1, m, n)
    f.diff(W1)  # warm-up: import sympy's array-expression machinery
    clear_cache()
    out = dict(L=L)
    t0 = time.perf_counter()
    try:
        f, W1 = build(L, m, n)
        g = f.diff(W1)
        out["ms"] = (time.perf_counter() - t0) * 1e3
    except Exception as e:  # noqa: BLE001
        out["ms"] = (time.perf_counter() - t0) * 1e3
        out["status"] = f"error ({type(e).__name__}: {str(e)[:60]})"
        print(json.dumps(out), flush=True)
        return
    out["len"] = len(str(g))
    out["nodes"] = len(set(sp.preorder_traversal(g)))
    if sympy_unevaluated(g):
        out["status"] = "unevaluated"
    else:
        try:
            vals = mlp_values(L)
            case = dict(shapes=mlp_shapes(L))
            got = sympy_value(g, case, vals)
            ref = matcalc.diff(mlp_expr(L), "W1", shapes=mlp_shapes(L)).evaluate(vals)
            out["status"] = "ok" if same_up_to_layout(got, ref) else "**wrong**"
        except Exception as e:  # noqa: BLE001
            out["status"] = f"**wrong** (numbers fail: {type(e).__name__}: {str(e)[:50]})"
    print(json.dumps(out), flush=True)


def run_sympy_mlp(L: int, timeout: float):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--sympy-mlp", str(L)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(L=L, status=f"timeout (> {timeout:.0f} s)")
    for line in reversed(p.stdout.strip().splitlines()):
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            continue
    return dict(L=L, status=f"crashed (exit {p.returncode}: {p.stderr.strip().splitlines()[-1][:60] if p.stderr.strip() else ''})")


def part_b(R, cfg, results):
    R("## b. Scaling: gradient of an L-layer tanh MLP by W1")
    R()
    R("`sum((tanh(…tanh(X @ W1) @ W2…) @ WL - Y) ** 2)` by `W1`, X m×n, every W n×n, Y m×n (L weight "
      "matrices, L−1 tanh layers; L = 1 is least squares). matcalc: median of "
      f"{cfg['scale_reps']} warm derivations (ms); *nodes* = `len(postorder(d.result))`; *text* = `len(d.text)`; "
      "*check* = `d.evaluate` against central finite differences at m=3, n=4. sympy: `MatrixSymbol` with "
      "`applyfunc(tanh)` and `Trace(E.T*E)` for the sum of squares, one cold derivation in a subprocess "
      f"(timeout {cfg['sym_mlp_timeout']:.0f} s per L), checked numerically against matcalc; *sympy size* = "
      "`len(str(result))`.")
    R()
    rows, data = [], {}
    sym_stop = None
    for L in cfg["scale_L"]:
        expr, shapes = mlp_expr(L), mlp_shapes(L)
        t = time_calls(lambda: matcalc.diff(expr, "W1", shapes=shapes), cfg["scale_reps"], 1)
        d = matcalc.diff(expr, "W1", shapes=shapes)
        t_text = time_calls(lambda: matcalc.diff(expr, "W1", shapes=shapes).text, max(1, cfg["scale_reps"] // 3), 0)
        nodes, text = len(postorder(d.result)), d.text
        vals = mlp_values(L)
        ref = P.jacobian_fd(lambda v: mlp_numpy(L, v), vals, "W1")
        ok = np.allclose(d.evaluate(vals), ref, rtol=1e-5, atol=1e-6)
        if sym_stop is None:
            s = run_sympy_mlp(L, cfg["sym_mlp_timeout"])
            if s["status"].startswith("timeout") or (cfg["sym_mlp_stop_on_error"] and s["status"] != "ok"):
                sym_stop = L
        else:
            s = dict(status=f"not run (stopped at L = {sym_stop})")
        data[L] = dict(ms=median(t), nodes=nodes, text=len(text), ms_text=median(t_text), ok=ok)
        base = data[cfg["scale_L"][0]]
        rows.append([L, ms(median(t)), ratio(median(t) / base["ms"]), nodes, ratio(nodes / base["nodes"]),
                     len(text), ratio(len(text) / base["text"]), ms(median(t_text)), "ok" if ok else "**WRONG**",
                     ms(s.get("ms")) if "ms" in s and "len" in s else ("—" if "ms" not in s else f"({ms(s['ms'])})"),
                     s.get("len", "—"), s["status"]])
    R.table(["L", "matcalc ms", "× L=1", "nodes", "× L=1", "len(text)", "× L=1", "ms incl. .text", "check",
             "sympy ms", "sympy size", "sympy result"], rows)
    Ls = list(data)
    if len(Ls) >= 3:
        # least-squares slope of log(size) against log(L) over L >= 4: 1 = linear, 2 = quadratic
        big = [L for L in Ls if L >= 4]
        for key, label in (("ms", "time"), ("nodes", "nodes"), ("text", "text length")):
            y = np.log([data[L][key] for L in big])
            x = np.log(big)
            slope = np.polyfit(x, y, 1)[0]
            R(f"- growth exponent of {label} in L (fit over L = {big[0]}…{big[-1]}): {slope:.2f}")
        R()
    if any(not data[L]["ok"] for L in Ls):
        R("**matcalc's gradient failed the finite-difference check for some L (see above).**")
        R()
    results["scale"] = data


# ============================================================================ c. evaluation

def eval_problems(cfg, rng):
    n = cfg["quad_n"]
    A = rng.standard_normal((n, n)) / math.sqrt(n)
    quad = dict(name=f"quadratic `x.T @ A @ x` (n = {n})", expr="x.T @ A @ x", wrt="x",
                shapes={"x": ("n",), "A": ("n", "n")}, values={"x": rng.standard_normal(n), "A": A},
                args=("x", "A"), hessian=True)
    m, n = cfg["logit_m"], cfg["logit_n"]
    logit = dict(name=f"logistic regression (m = {m}, n = {n})", expr="sum(log(1 + exp(-y * (X @ w))))", wrt="w",
                 shapes={"X": ("m", "n"), "y": ("m",), "w": ("n",)},
                 values={"X": rng.standard_normal((m, n)) / math.sqrt(n), "y": rng.choice([-1.0, 1.0], m),
                         "w": rng.standard_normal(n)},
                 args=("w", "X", "y"), hessian=True)
    a, b, k = cfg["mf"]
    mf = dict(name=f"matrix factorisation ({a}×{b}, rank {k}) by U", expr="sum((T - U @ V.T) ** 2)", wrt="U",
              shapes={"T": ("m", "p"), "U": ("m", "k"), "V": ("p", "k")},
              values={"T": rng.standard_normal((a, b)), "U": rng.standard_normal((a, k)), "V": rng.standard_normal((b, k))},
              args=("U", "T", "V"), hessian=False,
              why=f"Hessian by U is ({a}·{k})² = {(a * k) ** 2:,} entries")
    mm, ni, nh, no = cfg["mlp"]
    mlp = dict(name=f"2-layer MLP (X {mm}×{ni}, W1 {ni}×{nh}, W2 {nh}×{no}) by W1",
               expr="sum((tanh(X @ W1) @ W2 - Y) ** 2)", wrt="W1",
               shapes={"X": ("m", "n"), "W1": ("n", "h"), "W2": ("h", "o"), "Y": ("m", "o")},
               values={"X": rng.standard_normal((mm, ni)), "W1": rng.standard_normal((ni, nh)) / math.sqrt(ni),
                       "W2": rng.standard_normal((nh, no)) / math.sqrt(nh), "Y": rng.standard_normal((mm, no))},
               args=("W1", "X", "W2", "Y"), hessian=False,
               why=f"Hessian by W1 is ({ni}·{nh})² = {(ni * nh) ** 2:,} entries")
    return [quad, logit, mf, mlp]


def _jax_functions(jnp):
    return {
        "x.T @ A @ x": lambda x, A: x @ A @ x,
        "sum(log(1 + exp(-y * (X @ w))))": lambda w, X, y: jnp.sum(jnp.log(1 + jnp.exp(-y * (X @ w)))),
        "sum((T - U @ V.T) ** 2)": lambda U, T, V: jnp.sum((T - U @ V.T) ** 2),
        "sum((tanh(X @ W1) @ W2 - Y) ** 2)": lambda W1, X, W2, Y: jnp.sum((jnp.tanh(X @ W1) @ W2 - Y) ** 2),
    }


def bench_eval(fn, cfg, block=False):
    """Median ms of fn() after a warm-up, repeated to fill the time budget."""
    def call():
        r = fn()
        if block:
            r.block_until_ready()
        return r
    t0 = time.perf_counter()
    call()
    call()
    est = max((time.perf_counter() - t0) / 2, 1e-6)
    reps = int(min(cfg["eval_max"], max(cfg["eval_min"], cfg["eval_budget"] / est)))
    gc.collect()
    return median(time_calls(call, reps, 0))


def part_c(R, cfg, results, jax_mod):
    R("## c. Evaluation speed of the generated code")
    R()
    rng = np.random.default_rng(0)
    probs = eval_problems(cfg, rng)
    if jax_mod is None:
        R("> **jax is not installed**: the jax columns (matcalc's jax code under `jax.jit`, `jax.grad` / "
          "`jax.hessian` under `jax.jit`) are skipped; generated numpy code is checked against "
          "`Derivative.evaluate` instead. Install with `pip install jax jaxlib`.")
        R()
    else:
        jax, jnp = jax_mod
        R(f"jax {jax.__version__} on {jax.default_backend()} with float64 enabled (`jax_enable_x64`), everything "
          "in float64. *matcalc numpy*: `d.compile(\"numpy\")` called with numpy arrays; *matcalc jax*: "
          "`jax.jit` of `d.compile(\"jax\")`; *jax*: `jax.jit(jax.grad(f))` / `jax.jit(jax.hessian(f))` of the "
          "same function written in `jax.numpy`; jax inputs are device arrays made beforehand and results are "
          "`block_until_ready()`. Median ms, warm (compilation excluded; it is listed in the second table). "
          "Every generated function's output is checked against jax's with `np.allclose` (rtol 1e-6) before "
          "it is timed. Ratio = matcalc / jax (below 1: matcalc is faster).")
        R()
        jfs = _jax_functions(jnp)
    rows, once_rows, out = [], [], []
    for pb in probs:
        kinds = [("gradient", False)] + ([("Hessian", True)] if pb["hessian"] else [])
        for kind, hess in kinds:
            t0 = time.perf_counter()
            d = (matcalc.hessian(pb["expr"], pb["wrt"], shapes=pb["shapes"]) if hess
                 else matcalc.diff(pb["expr"], pb["wrt"], shapes=pb["shapes"]))
            t_derive = (time.perf_counter() - t0) * 1e3
            t0 = time.perf_counter()
            f_np = d.compile("numpy")
            t_gen = (time.perf_counter() - t0) * 1e3
            vals = pb["values"]
            got_np = np.asarray(f_np(vals))
            rec = dict(problem=pb["name"], kind=kind, text=d.text)
            if jax_mod is None:
                ref = d.evaluate(vals)
                ok_np = bool(np.allclose(got_np, ref, rtol=1e-6, atol=1e-8))
                t_np = bench_eval(lambda: f_np(vals), cfg) if ok_np else None
                rec.update(np=t_np, ok_np=ok_np)
                rows.append([pb["name"], kind, f"`{d.text}`", ms(t_np), "—", "—", "—", "—",
                             "numpy ok (vs evaluate)" if ok_np else "**numpy WRONG**"])
                once_rows.append([pb["name"], kind, ms(t_derive), ms(t_gen), "—", "—"])
                out.append(rec)
                continue
            jvals = {k: jnp.asarray(v) for k, v in vals.items()}
            jargs = [jvals[a] for a in pb["args"]]
            f = jfs[pb["expr"]]
            ref_fn = jax.jit(jax.hessian(f) if hess else jax.grad(f))
            t0 = time.perf_counter()
            ref = np.asarray(ref_fn(*jargs).block_until_ready())
            t_jax_compile = (time.perf_counter() - t0) * 1e3
            f_jx_raw = d.compile("jax")
            f_jx = jax.jit(lambda v: f_jx_raw(v))
            t0 = time.perf_counter()
            got_jx = np.asarray(f_jx(jvals).block_until_ready())
            t_mcj_compile = (time.perf_counter() - t0) * 1e3
            ok_np = got_np.shape == ref.shape and bool(np.allclose(got_np, ref, rtol=1e-6, atol=1e-8))
            ok_jx = got_jx.shape == ref.shape and bool(np.allclose(got_jx, ref, rtol=1e-6, atol=1e-8))
            t_jax = bench_eval(lambda: ref_fn(*jargs), cfg, block=True)
            t_np = bench_eval(lambda: f_np(vals), cfg) if ok_np else None
            t_jx = bench_eval(lambda: f_jx(jvals), cfg, block=True) if ok_jx else None
            rec.update(np=t_np, jx=t_jx, jax=t_jax, ok_np=ok_np, ok_jx=ok_jx,
                       r_np=t_np / t_jax if t_np else None, r_jx=t_jx / t_jax if t_jx else None)
            out.append(rec)
            check = "ok" if ok_np and ok_jx else ", ".join(
                f"**{w} WRONG** (max err {np.max(np.abs(g - ref)) if g.shape == ref.shape else 'shape ' + str(g.shape)})"
                for w, ok, g in (("numpy", ok_np, got_np), ("jax", ok_jx, got_jx)) if not ok)
            rows.append([pb["name"], kind, f"`{d.text}`", ms(t_np), ms(t_jx), ms(t_jax),
                         ratio(rec["r_np"]), ratio(rec["r_jx"]), check])
            once_rows.append([pb["name"], kind, ms(t_derive), ms(t_gen), ms(t_mcj_compile), ms(t_jax_compile)])
        if not pb["hessian"]:
            rows.append([pb["name"], "Hessian", "—", "—", "—", "—", "—", "—", f"not benchmarked: {pb['why']}"])
    R.table(["problem", "derivative", "matcalc result (`d.text`)", "matcalc numpy ms", "matcalc jax (jit) ms",
             "jax (jit) ms", "numpy / jax", "matcalc-jax / jax", "check"], rows)
    R("One-off costs (ms): matcalc's derivation, its numpy code generation (`compile`), the first call of the "
      "jitted matcalc-jax function (trace + XLA compile + run), and the first call of jitted `jax.grad` / "
      "`jax.hessian` (trace + compile + run).")
    R()
    R.table(["problem", "derivative", "matcalc derive", "matcalc codegen (numpy)", "matcalc-jax first call",
             "jax first call"], once_rows)
    results["eval"] = out


# ============================================================================ d. targets

def part_targets(R, results, have_jax):
    R("## Targets")
    R()
    rows = []

    def verdict(value, limit):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "not measured"
        return "met" if value <= limit else f"**missed** by {value / limit:.2f}x ({value - limit:+.3g})"

    lat = results.get("lat")
    if lat:
        rows.append(["median derivation ≤ 10 ms (public cases, all calls pooled)", f"{ms(lat['median'])} ms",
                     verdict(lat["median"], TARGETS["lat_median_ms"])])
        rows.append(["p95 derivation ≤ 50 ms (public cases, all calls pooled)", f"{ms(lat['p95'])} ms",
                     verdict(lat["p95"], TARGETS["lat_p95_ms"])])
        over_med = [c for c in lat["per_case"] if c["median"] > TARGETS["lat_median_ms"]]
        over_p95 = [c for c in lat["per_case"] if c["p95"] > TARGETS["lat_p95_ms"]]
        rows.append(["… and on every case separately", f"{len(over_med)} case medians > 10 ms, {len(over_p95)} case p95s > 50 ms",
                     "met" if not over_med and not over_p95 else "**missed**: " + ", ".join(
                         f"`{c['id']}`" for c in over_med + over_p95)])
    sc = results.get("scale")
    if sc and 1 in sc and 64 in sc:
        rt, rn = sc[64]["ms"] / sc[1]["ms"], sc[64]["nodes"] / sc[1]["nodes"]
        rows.append(["time at L = 64 ≤ 80 × time at L = 1", ratio(rt), verdict(rt, TARGETS["scale_ratio"])])
        rows.append(["nodes at L = 64 ≤ 80 × nodes at L = 1", ratio(rn), verdict(rn, TARGETS["scale_ratio"])])
        rows.append(["(not a target) text length at L = 64 / L = 1", ratio(sc[64]["text"] / sc[1]["text"]), "—"])
    ev = results.get("eval")
    if ev and have_jax:
        for backend, key in (("numpy", "r_np"), ("jax-jit", "r_jx")):
            for kind, limit in (("Hessian", TARGETS["hess_ratio"]), ("gradient", TARGETS["grad_ratio"])):
                for rec in (r for r in ev if r["kind"] == kind):
                    what = ("at least as fast as jit jax.hessian" if kind == "Hessian" else "within 1.2x of jit jax.grad")
                    ok_key = "ok_np" if backend == "numpy" else "ok_jx"
                    val = rec[key] if rec[ok_key] else None
                    rows.append([f"generated {kind} ({backend}) {what}: {rec['problem']}",
                                 ratio(val) if val else "wrong result", verdict(val, limit) if val else "**missed** (wrong result)"])
    elif ev:
        rows.append(["generated code vs jax", "jax not installed", "not measured"])
    for label, (measured, met) in results.get("families", {}).items():
        rows.append([label, measured, "met" if met else "**missed**"])
    R.table(["target", "measured", "verdict"], rows)


# ============================================================================ main

def environment(cfg_name, have_jax):
    import sympy
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "matcalc", "grammar"],
                               capture_output=True, text=True).stdout.strip()
        commit += " (matcalc/ or grammar/ modified)" if dirty else ""
    except OSError:
        commit = "?"
    jv = "not installed"
    if have_jax:
        import jax
        jv = jax.__version__
    return (f"mode **{cfg_name}**; matcalc {commit}; Python {platform.python_version()}, numpy {np.__version__}, "
            f"sympy {sympy.__version__}, jax {jv}; {platform.platform()}, {os.cpu_count()} CPUs, load average "
            f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at start; BLAS/XLA threads: "
            f"{'library defaults' if THREADS == '0' else THREADS}; {time.strftime('%Y-%m-%d %H:%M')}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, fewer repetitions (< ~60 s)")
    ap.add_argument("--out", help="also write the Markdown report to this file")
    ap.add_argument("--threads", default="1",
                    help="BLAS / XLA threads: 1 (default) pins numpy's BLAS and XLA to one thread each, so that "
                         "both sides of part c use the same resources and a busy machine cannot stall OpenBLAS's "
                         "thread pool; N sets OPENBLAS/OMP/MKL_NUM_THREADS=N; 0 leaves the libraries' defaults")
    ap.add_argument("--parts", default="abce", help="which parts to run (subset of 'abce'), default all")
    ap.add_argument("--sympy-mlp", type=int, help=argparse.SUPPRESS)  # worker mode for part b
    args = ap.parse_args(argv)
    if args.sympy_mlp is not None:
        sympy_mlp_worker(args.sympy_mlp)
        return 0
    cfg = QUICK if args.quick else FULL
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        jax_mod = (jax, jnp)
    except ImportError:
        jax_mod = None
    R = Report()
    start = time.perf_counter()
    R("# matcalc benchmarks")
    R()
    R(environment("quick" if args.quick else "full", jax_mod is not None))
    R()
    results = {}
    if "a" in args.parts:
        part_a(R, cfg, results)
    if "b" in args.parts:
        part_b(R, cfg, results)
    if "c" in args.parts:
        part_c(R, cfg, results, jax_mod)
    if "e" in args.parts:
        import families
        results["families"] = families.report(R, families.measure(args.quick, log=lambda *_: None), args.quick)
    part_targets(R, results, jax_mod is not None)
    R(f"_Total run time: {time.perf_counter() - start:.1f} s; load average at the end "
      f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}._")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(R.buf.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
