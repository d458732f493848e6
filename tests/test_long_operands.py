"""Sums and products longer than `simplify.FLAT_MAX` (issue 12).

Past FLAT_MAX operands a sum or product is kept whole, as one operand of the sum or product built
from it, instead of being flattened into it (flattening a chain that grows by one factor per layer
is quadratic in the depth). These tests hold such results to the same bar as every other: the
derivative agrees with finite differences (`d.check()`), and every channel (generated numpy code,
the text read back, `where` order) agrees with `d.evaluate` (the oracle of tests/test_oracle.py);
like terms are still collected and a deep network's Hessian keeps its nested (Horner) form.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import matcalc
from matcalc.simplify import FLAT_MAX
from test_oracle import BACKENDS, _domain_values, _judge, derive, run_channels

sys.path.insert(0, str(Path(__file__).parent / "bench"))
import families as F  # noqa: E402

N = FLAT_MAX + 9  # past the limit, and not a multiple of it


def _chain(k: int) -> str:
    return " @ ".join(f"A{i % 3}" for i in range(k))


SQ = {"A0": ("n", "n"), "A1": ("n", "n"), "A2": ("n", "n"), "x": ("n",), "y": ("n",)}

# (kind, expression, variable, shapes)
PROBLEMS = [
    ("diff", f"y.T @ {_chain(N)} @ x", "x", SQ),
    ("diff", f"y.T @ {_chain(N)} @ x", "A1", SQ),
    ("diff", f"y.T @ ({_chain(N // 2)}) @ ({_chain(N // 2 + 3)}) @ x", "A0", SQ),
    ("hessian", f"x.T @ {_chain(N)} @ x", "x", SQ),
    ("diff", "sum(" + " + ".join(f"sin({i + 1} * x)" for i in range(N)) + ")", "x", {"x": ("n",)}),
    ("diff", "sum(" + " * ".join(f"cos(x + {i})" for i in range(N)) + ")", "x", {"x": ("n",)}),
    ("diff", "sum(" + " * ".join("x" if i % 4 == 0 else f"tanh(x * {i})" for i in range(N)) + ")", "x",
     {"x": ("n",)}),
    F.swish_gradient(N),
    F.swish_hessian(10),  # its products pass FLAT_MAX; deeper, its text passes max_length
    F.mlp_hessian_x(N),
    F.mlp_hessian_w1(FLAT_MAX // 2 + 3),
    F.nested_softmax_affine(FLAT_MAX + 1),
    F.resnet_gradient(N),
    F.resnet_hessian(FLAT_MAX + 2),
]


@pytest.mark.parametrize("problem", PROBLEMS, ids=[f"{p[0]}-{p[2]}-{len(p[1])}" for p in PROBLEMS])
def test_long_operands_every_channel(problem):
    kind, expr, wrt, shapes = problem
    failures: dict = {}
    d = derive(kind, expr, wrt, shapes, failures, kind)
    if d is not None:
        run_channels(d, _domain_values(d), shapes, failures, kind, BACKENDS)
    _judge(failures, None, f"{kind} of {expr[:60]} by {wrt}")


@pytest.mark.parametrize("problem", PROBLEMS[:8], ids=[f"{p[0]}-{p[2]}-{len(p[1])}" for p in PROBLEMS[:8]])
def test_long_operands_agree_with_finite_differences(problem):
    kind, expr, wrt, shapes = problem
    d = getattr(matcalc, kind)(expr, wrt, shapes=shapes)
    assert d.check(exact=False), d.text[:300]


def test_a_long_sum_still_collects_like_terms():
    terms = [f"sin({i + 1} * x)" for i in range(N)]
    d = matcalc.diff("sum(" + " + ".join(terms + terms[:3]) + ")", "x", shapes={"x": ("n",)})
    assert d.text.count("cos(x)") == 1 and "2 * cos(x)" in d.text, d.text


def test_a_long_product_and_its_repeat_collect_into_a_power():
    prod = " * ".join(f"cos(x + {i})" for i in range(N))
    d = matcalc.diff(f"sum(({prod}) * ({prod}))", "x", shapes={"x": ("n",)})
    e = matcalc.parse(f"({prod}) ** 2", shapes={"x": ("n",)})
    ref = matcalc.diff(f"sum(({prod}) ** 2)", "x", shapes={"x": ("n",)})
    assert d.text == ref.text, (d.text[:200], ref.text[:200])
    assert e is not None


def test_deep_mlp_hessian_keeps_its_nested_form():
    """Past FLAT_MAX the Jacobian chains nest, and factoring still finds the Horner form:
    W1ᵀ(D1 W2ᵀ(… WLᵀ … WL …) W2 D1 + diag(…)) W1: each Wk closes its level once, `…) @ Wk @`."""
    kind, expr, wrt, shapes = F.mlp_hessian_x(24)
    text = matcalc.hessian(expr, wrt, shapes=shapes).text
    main = text.split(" where ")[0]
    for k in range(2, 25):
        assert main.count(f") @ W{k} @ ") == 1, (k, main[:400])
    assert len(main) < 60 * 24, len(main)


def test_long_chain_text_evaluates_like_the_derivative():
    d = matcalc.diff(f"y.T @ {_chain(3 * N)} @ x", "x", shapes=SQ)
    rng = np.random.default_rng(0)
    values = {k: rng.standard_normal((4, 4) if len(s) == 2 else (4,)) / 2 for k, s in SQ.items()}
    np.testing.assert_allclose(matcalc.evaluate(d.text, values, shapes=SQ), d.evaluate(values), rtol=1e-9)
