"""Results are the same from any number of threads at once (API.md v2).

Every call is made once alone (the reference), then from 8 threads at once with a tiny switch
interval so that threads interleave inside node construction; every threaded result must equal
its reference exactly (text, LaTeX, numbers) and the garbage collector's state is left alone.
"""
from __future__ import annotations

import gc
import sys
import threading

import numpy as np
import pytest

import matcalc

from public_cases import CASES, sample

N_THREADS = 8
CALLS_PER_THREAD = 260  # 8 × 260 = 2 080 calls, each a derivation plus its text/LaTeX/numbers

EXTRA = [
    ("diff", "x.T @ M @ x - x.T @ M @ x + sum(x)", "x"),
    ("diff", "sum(tanh(W2 @ tanh(W1 @ x)))", "W1"),
    ("diff", "tanh(W @ x + b)", "W"),
    ("vjp", "sigmoid(X @ W) * X @ W", "W"),
    ("hessian", "sum(exp(A @ x)) + x.T @ A @ x", "x"),
    ("diff", "logdet(X.T @ X) + tr(inv(X.T @ X))", "X"),
]


def _calls():
    out = []
    for c in CASES:
        if c["kind"] == "error":
            continue
        kw = {} if c.get("defaults") else {"shapes": c["shapes"]}
        if c["kind"] == "diff":
            kw["layout"] = c.get("layout", "mixed")
        if c["kind"] == "vjp":
            kw["upstream"] = c.get("upstream", "G")
        out.append((c["kind"], c["expr"], c["wrt"], kw, sample(c, seed=3)))
    for kind, expr, wrt in EXTRA:
        d = getattr(matcalc, kind)(expr, wrt)
        shapes = {k: tuple(3 if isinstance(s, str) or True else s for s in v)
                  for k, v in d.parsed.var_shapes.items()}
        rng = np.random.default_rng(7)
        values = {k: (rng.standard_normal(s) if s else float(rng.standard_normal())) for k, s in shapes.items()}
        if kind == "vjp":
            values["G"] = rng.standard_normal(tuple(3 for _ in d.out_shape))
        out.append((kind, expr, wrt, {}, values))
    return out


def _run(call):
    kind, expr, wrt, kw, values = call
    d = getattr(matcalc, kind)(expr, wrt, **kw)
    text, latex = d.text, d.latex
    value = d.evaluate(values)
    again = matcalc.evaluate(text, values) if len(value.shape) <= 2 else None
    return text, latex, value, again


def _same(a, b) -> bool:
    if a[:2] != b[:2]:
        return False
    if not np.array_equal(a[2], b[2]):
        return False
    return (a[3] is None and b[3] is None) or np.array_equal(a[3], b[3])


@pytest.fixture
def fast_switching():
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def test_results_under_threads_equal_results_alone(fast_switching):
    calls = _calls()
    reference = [_run(c) for c in calls]
    gc_before = gc.isenabled()
    failures, errors = [], []
    barrier = threading.Barrier(N_THREADS)

    def worker(k: int):
        for j in range(CALLS_PER_THREAD):
            # every thread starts the same call at the same moment, from no shared nodes:
            # the way two threads come to build one node at once
            barrier.wait()
            i = (j * 7 + (k % 2)) % len(calls)
            try:
                got = _run(calls[i])
            except Exception as e:  # noqa: BLE001 - every exception is a failure here
                errors.append((calls[i][:3], repr(e)))
                continue
            if not _same(got, reference[i]):
                failures.append((calls[i][:3], got[0], reference[i][0]))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:5]
    assert not failures, failures[:5]
    assert gc.isenabled() == gc_before


@pytest.mark.parametrize("enabled", [True, False])
def test_the_api_leaves_the_garbage_collector_alone(enabled):
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        matcalc.diff("sum((X @ w - y) ** 2)", "w").text
        matcalc.hessian("x.T @ A @ x", "x").latex
        assert gc.isenabled() == enabled
    finally:
        gc.enable() if was else gc.disable()
