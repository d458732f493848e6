"""Guard against a super-linear blow-up of deep derivatives (the full measurement is part b of
tests/bench/bench.py): the gradient of an L-layer tanh MLP's squared loss by W1,

    sum((tanh(...tanh(X @ W1) @ W2...) @ WL - Y) ** 2)      (L weight matrices, L - 1 tanh layers)

must derive quickly at L = 16 and its text must grow linearly in L. The bounds are loose, so that
machine noise never fails CI; a result that repeats the shared activations instead of naming them
(`where`) grows quadratically and fails them by a wide margin.

The text is compared with that of the one-tanh-layer network (L = 2). Against L = 1 (plain least
squares, `2 * X.T @ (X @ W1 - Y)`, 22 characters) even perfectly linear growth is ~36x at L = 16,
since every extra layer adds a roughly constant ~50 characters (`@ Wk.T) * (1 - tk ** 2)` plus a
`where` binding), more than twice the whole L = 1 result; a 20x bound on that base could not hold.
"""
import time

import matcalc


def mlp_expr(L: int) -> str:
    e = "X @ W1"
    for i in range(2, L + 1):
        e = f"tanh({e}) @ W{i}"
    return f"sum(({e} - Y) ** 2)"


def mlp_shapes(L: int) -> dict:
    shapes = {"X": ("m", "n"), "Y": ("m", "n")}
    shapes.update({f"W{i}": ("n", "n") for i in range(1, L + 1)})
    return shapes


def _text(L: int) -> str:
    return matcalc.diff(mlp_expr(L), "W1", shapes=mlp_shapes(L)).text


def test_mlp16_gradient_derives_in_under_two_seconds():
    _text(2)  # warm-up: loads the grammar, as any session's first call does
    t0 = time.perf_counter()
    d = matcalc.diff(mlp_expr(16), "W1", shapes=mlp_shapes(16))
    text = d.text
    elapsed = time.perf_counter() - t0
    assert text
    assert elapsed < 2.0, f"L = 16 MLP gradient took {elapsed:.2f} s (derivation and .text)"


def test_mlp_gradient_text_grows_linearly():
    n2, n8, n16 = (len(_text(L)) for L in (2, 8, 16))
    assert n16 <= 20 * n2, f"len(text): {n16} at L = 16, {n2} at L = 2 (one tanh layer)"
    # doubling the depth doubles a linear text (quadratic: x4)
    assert n16 <= 3 * n8, f"len(text): {n16} at L = 16, {n8} at L = 8"


# ----------------------------------------------------------------------------- issue 12's families
# The work is counted in the budget's units (matcalc.budget: nodes asked for, arguments read,
# nodes visited), which are deterministic: these guards never depend on the machine's load.
# Doubling the size of a linear family doubles its work; the bounds leave room above that and
# stay far below what the blow-ups did (×2.5 per *level* for the nested softmax, ~L^2.5 for the
# MLP Hessian, N² for the flat sum). The full measurement: tests/bench/families.py.

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from matcalc import budget  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "bench"))
import families as F  # noqa: E402


_MEASURE = """
import sys, matcalc
from matcalc import budget
sys.path.insert(0, {bench!r})
import families as F
F.allow_flat_sums()
kind, expr, wrt, shapes = getattr(F, {fn!r})({n})
with budget.limit(120) as scope:
    d = getattr(matcalc, kind)(expr, wrt, shapes=shapes)
print(scope.work, len(d.text))
"""


def _work_and_text(fn, n: int) -> tuple[int, int]:
    """(work units, len(text)) of `families.fn(n)` derived in a fresh interpreter: the count then
    does not depend on which nodes (and per-node memos) earlier tests happen to leave alive."""
    import subprocess
    code = _MEASURE.format(bench=str(Path(__file__).parent / "bench"), fn=fn.__name__, n=n)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    work, length = out.stdout.split()
    return int(work), int(length)


def _work(fn, n: int) -> int:
    return _work_and_text(fn, n)[0]


def test_nested_softmax_hessian_is_linear_in_depth():
    w8, w16 = _work(F.nested_softmax, 8), _work(F.nested_softmax, 16)
    assert w16 <= 3 * w8, f"work {w16} at 16 levels, {w8} at 8"
    t0 = time.perf_counter()
    matcalc.hessian(F.nested_softmax(12)[1], "x")
    elapsed = time.perf_counter() - t0
    assert elapsed < 2.0, f"12-level nested softmax Hessian took {elapsed:.2f} s (was 13 s)"


def test_mlp_hessian_grows_about_linearly():
    w16, w32 = _work(F.mlp_hessian_w1, 16), _work(F.mlp_hessian_w1, 32)
    assert w32 <= 3.5 * w16, f"work {w32} at L = 32, {w16} at L = 16"


def test_flat_sum_is_linear_in_its_terms(monkeypatch):
    import matcalc.grammar
    monkeypatch.setitem(matcalc.grammar.LIMITS, "max_depth", max(matcalc.grammar.LIMITS["max_depth"], 2000))
    w1, w2 = _work(F.flat_sum, 500), _work(F.flat_sum, 1000)
    assert w2 <= 2.5 * w1, f"work {w2} for 1000 terms, {w1} for 500"


# Each family of issue 12 at two sizes, the second twice the first: the work units and the length
# of the text must about double (quadratic growth: x4). Sizes past the points where long products
# start nesting (simplify.FLAT_MAX, MUL_FLAT_MAX), so the ratio measures the steady growth.
LINEAR_FAMILIES = [
    ("nested softmax", F.nested_softmax, 16),
    ("nested softmax, yᵀ", F.nested_softmax_dot, 16),
    ("nested softmax(A ·)", F.nested_softmax_affine, 16),
    ("nested swish gradient", F.swish_gradient, 16),
    ("nested swish Hessian", F.swish_hessian, 16),
    ("MLP Hessian by W1", F.mlp_hessian_w1, 16),
    ("MLP Hessian by x", F.mlp_hessian_x, 16),
    ("residual network gradient", F.resnet_gradient, 16),
    ("residual network Hessian", F.resnet_hessian, 16),
]


import pytest  # noqa: E402


@pytest.mark.parametrize("name, build, n", LINEAR_FAMILIES, ids=[f[0] for f in LINEAR_FAMILIES])
def test_family_work_and_text_double_with_its_size(name, build, n):
    (w1, t1), (w2, t2) = _work_and_text(build, n), _work_and_text(build, 2 * n)
    assert w2 <= 2.5 * w1, f"{name}: work {w2} at size {2 * n}, {w1} at {n}"
    assert t2 <= 2.5 * t1, f"{name}: len(text) {t2} at size {2 * n}, {t1} at {n}"
