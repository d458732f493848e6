"""Constant folding follows IEEE arithmetic, as numpy computes: an inf or nan constant is never
folded away, on any channel.

1/0 is inf, 0/0 and inf − inf are nan, 0 · inf is nan, log(0) is −inf, sqrt(−1) nan; a constant
array (zeros, ones, c · ones) folds like its number. `0 * x` is still 0 for an expression x and
`x - x` still 0: those are the symbolic rules, about expressions, not constants. A finite number
that overflows a float (1e308 · 1e308) is refused; one inside a function (exp(1000)) stays
unfolded, a finite number, so 0 · exp(1000) is 0. The text writes the constants so that they
read back (`(1 / 0)`, `(0 / 0)`), LaTeX and unicode name them, generated code computes them.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import matcalc
from matcalc.leaves import const, over, plus, power, times

X = np.array([0.5, 2.0])
Y = np.array([3.0, -1.0])
VALUES = {"x": X, "y": Y}
INF, NAN = np.inf, np.nan

# expression -> what numpy computes for it (x, y finite and nonzero)
CASES = {
    "0/0 * x": NAN * X,
    "0/0 + x": NAN + X,
    "0 * (1/0) * x": NAN * X,
    "(1/0 - 1/0) * x": NAN * X,
    "1/0 * x": INF * X,
    "-1/0 * x": -INF * X,
    "x / 0": INF * X,
    "x - 1/0": X - INF,
    "0 ** -1 * x": INF * X,
    "(-8) ** (1/3) * x": NAN * X,
    "log(0) * x": -INF * X,
    "0 * sqrt(-1) * x": NAN * X,
    "0 * log(x - x) * y": NAN * Y,
    "(x - x) ** -1": np.full(2, INF),
    "(x - x) / (x - x)": np.full(2, NAN),
    "0 * maximum(x - x, 0/0) * y": NAN * Y,
    "minimum(1/0, 2) * x": 2 * X,
    "zeros(2).T @ ((1/0) * ones(2)) * x": NAN * X,
    "zeros(2, 2) @ ((1/0) * y)": np.full(2, NAN),
    "sum(ones(2) * (1/0)) * 0 * x": NAN * X,
    "x ** (1/0)": X ** INF,
    "x ** (-1/0)": X ** -INF,
    "(1/0) * x - (1/0) * x": NAN * X,
    "(1/0) * x + (1/0) * y": np.array([INF, NAN]),  # inf · 3 + inf · (−1)
    "exp(1000) * 0 * x": 0 * X,       # a finite number: 0 times it is 0
    "0 * x": 0 * X,                   # the symbolic rule stays
    "x - x": 0 * X,
}


@pytest.mark.parametrize("expr", list(CASES))
def test_evaluate_follows_ieee(expr):
    got = matcalc.evaluate(expr, VALUES)
    want = np.broadcast_to(CASES[expr], np.shape(got))
    assert np.array_equal(np.asarray(got, dtype=float), want, equal_nan=True), f"{expr}: {got} != {want}"


@pytest.mark.parametrize("expr", list(CASES))
def test_text_reads_back_the_same_constant(expr):
    p = matcalc.parse(expr)
    again = matcalc.evaluate(p.text, VALUES)
    assert np.array_equal(again, matcalc.evaluate(expr, VALUES), equal_nan=True), p.text
    assert "inf" not in p.text and "nan" not in p.text, p.text


def test_display_names():
    p = matcalc.parse("(1/0) * x + (0/0) * y - (1/0)")
    assert p.text == "(1 / 0) * x + (0 / 0) * y - (1 / 0)"
    assert r"\infty" in p.latex and r"\mathrm{NaN}" in p.latex
    d = matcalc.diff("(0/0) * sum(x) + (1/0) * dot(x, y)", "x")
    assert "NaN" in d.unicode and "∞" in d.unicode


@pytest.mark.parametrize("expr", ["1e308 * 1e308 * x", "1e200 * x * 1e200", "1e308 * x + 1e308 * x", "x / 1e-310"])
def test_finite_overflow_is_refused(expr):
    with pytest.raises(matcalc.MatcalcError, match="overflows"):
        matcalc.parse(expr)


def test_folding_arithmetic_matches_numpy():
    vals = [0.0, 1.0, -1.0, 2.5, -2.5, 0.5, -0.5, 3.0, 1 / 3, INF, -INF, NAN, 1e300, -1e-300]
    with np.errstate(all="ignore"):
        for a in vals:
            for b in vals:
                for ours, theirs in [(power, np.power), (over, np.divide), (times, np.multiply), (plus, np.add)]:
                    try:
                        v = ours(a, b)
                    except matcalc.MatcalcError:  # an overflow: refused, or (power) kept unfolded
                        assert math.isinf(theirs(a, b)), (ours.__name__, a, b)
                        continue
                    if v is None:
                        assert ours is power and math.isinf(theirs(a, b)), (a, b)
                        continue
                    # the same number, inf or nan (a power's last bit may differ: C's pow against numpy's)
                    assert np.isclose(v, theirs(np.float64(a), np.float64(b)), rtol=4e-16, atol=0, equal_nan=True), \
                        (ours.__name__, a, b, v)


def test_one_nan_node():
    """nan != nan, so the intern table would miss it: every nan constant is the same node."""
    assert const(math.inf * 0) is const(float("nan"))
    assert matcalc.parse("0/0 * x").expr is matcalc.parse("(1/0 - 1/0) * x").expr


@pytest.mark.parametrize("kind", ["diff", "hessian"])
def test_derivative_keeps_the_constant(kind):
    d = getattr(matcalc, kind)("(0/0) * sum(x * x) + sum(x * x)", "x")
    assert np.isnan(d.evaluate(VALUES)).all()
    with np.errstate(all="ignore"):
        assert np.array_equal(d.compile()(VALUES), d.evaluate(VALUES), equal_nan=True)
