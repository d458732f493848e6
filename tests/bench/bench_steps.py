"""The passes over a derivative's graph after the derivation (issue 12: each linear in the graph):
`d.steps` (with `d.steps_latex`), `d.index_latex`, `d.to_json()`, `repr(d)`, `d.evaluate` and
`d.check(exact=False)`, on the gradient of an L-layer tanh MLP by W1 and the Hessian of k nested
softmaxes, and the steps of the gradient of a flat sum of N terms (a wide frontier).

    python tests/bench/bench_steps.py [--quick]

For each size: the CPU time of each pass (`time.process_time()`, best of two, on a fresh
derivative each time, so that nothing is cached), the characters it writes, and the number of
distinct nodes of the result. The slope is the log-log fit of time against nodes from size 8 up
(linear: 1). Results: tests/bench/results_steps.md.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import families as F  # noqa: E402

import matcalc  # noqa: E402
from matcalc.expr import postorder  # noqa: E402


def mlp_gradient(L):
    e, s = F._mlp(L)
    return matcalc.diff(e, "W1", shapes=s, budget=600)


def softmax_hessian(k):
    return matcalc.hessian(F.nested_softmax(k)[1], "x", budget=600)


def flat_sum_gradient(n):
    return matcalc.diff(F.flat_sum(n)[1], "x", budget=600)


def _values(d):
    rng = np.random.default_rng(0)
    return {k: rng.standard_normal([3 if isinstance(x, str) else x for x in v]) for k, v in d.parsed.var_shapes.items()}


PASSES = {
    "steps": lambda d: sum(len(s.text) + len(s.latex) for s in d.steps) + len(d.steps_latex),
    "index": lambda d: len(d.index_latex),
    "to_json": lambda d: len(str(d.to_json())),
    "repr": lambda d: len(repr(d)),
    "evaluate": lambda d: d.evaluate(_values(d)).size,
    "check": lambda d: int(d.check(exact=False).within),
}

FAMILIES = {
    "MLP gradient by W1": (mlp_gradient, (8, 16, 32, 64, 128, 200), (8, 16, 32, 64), tuple(PASSES)),
    "nested softmax Hessian": (softmax_hessian, (4, 8, 16, 32, 64), (4, 8, 16, 32), tuple(PASSES)),
    "flat sum gradient": (flat_sum_gradient, (100, 500, 1000, 2000, 5000), (100, 500, 1000), ("steps",)),
}


def measure(make, n, what):
    best, out = math.inf, None
    for _ in range(2):
        d = make(n)
        t0 = time.process_time()
        out = PASSES[what](d)
        best = min(best, time.process_time() - t0)
    return best, out, len(postorder(d.result))


def slope(points):
    pts = [(math.log(x), math.log(max(y, 1e-4))) for x, y in points]
    if len(pts) < 2:
        return float("nan")
    mx, my = sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    F.allow_flat_sums()
    mlp_gradient(2).steps  # warm-up: grammar, sympy's LaTeX printer
    for name, (make, sizes, quick, passes) in FAMILIES.items():
        print(f"\n## {name}\n\n| pass | " + " | ".join(str(n) for n in (quick if args.quick else sizes))
              + " | slope |\n|---|" + "---|" * (len(quick if args.quick else sizes) + 1))
        for what in passes:
            cells, pts = [], []
            for n in quick if args.quick else sizes:
                t, out, nodes = measure(make, n, what)
                cells.append(f"{t * 1000:.0f} ms" + (f", {out:,} ch" if what in ("steps", "index") else ""))
                if n >= 8:
                    pts.append((nodes, t))
            print(f"| {what} | " + " | ".join(cells) + f" | {slope(pts):.2f} |", flush=True)


if __name__ == "__main__":
    main()
