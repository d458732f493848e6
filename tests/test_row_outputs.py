"""A row-vector output has the array layout of API.md: the array `jax.jacobian` gives for the same
function written with 1-D vectors, where `x.T` is `x` (issue 11, item 7)."""
from __future__ import annotations

import numpy as np
import pytest

import matcalc

SIZES = {"m": 3, "n": 4}


def _values(d, rng):
    out = {}
    for name, shape in d.parsed.var_shapes.items():
        shp = tuple(SIZES.get(s, 2) if isinstance(s, str) else s for s in shape)
        out[name] = rng.standard_normal(shp) if shp else float(rng.standard_normal())
    return out


def _jacobian_1d(expr, wrt, values, h=1e-6):
    """Central differences of expr's value flattened the 1-D way (a row is its vector)."""
    def f(v):
        return np.asarray(matcalc.evaluate(expr, {**values, wrt: v}))
    x0 = np.asarray(values[wrt], dtype=float)
    y0 = f(x0)
    y_shape = (y0.shape[1],) if y0.ndim == 2 and y0.shape[0] == 1 else y0.shape
    jac = np.zeros(y_shape + x0.shape)
    for idx in np.ndindex(*x0.shape) if x0.shape else [()]:
        e = np.zeros_like(x0)
        e[idx] = h
        jac[(...,) + idx] = ((f(x0 + e) - f(x0 - e)) / (2 * h)).reshape(y_shape)
    return jac


@pytest.mark.parametrize("expr, wrt", [
    ("x.T", "x"), ("x.T @ A", "A"), ("x.T @ A", "x"), ("(A @ x).T", "x"),
    ("sum(X, axis=0).T", "X"), ("x.T * alpha", "alpha"), ("tanh(x.T @ A)", "A"),
])
def test_row_output_has_the_1d_array_layout(expr, wrt):
    d = matcalc.diff(expr, wrt)
    values = _values(d, np.random.default_rng(0))
    got = d.evaluate(values)
    want = _jacobian_1d(expr, wrt, values)
    assert got.shape == want.shape == tuple(SIZES.get(s, 2) if isinstance(s, str) else s for s in d.dims)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("layout", ["numerator", "denominator"])
def test_row_output_by_a_scalar_stays_1d_in_every_layout(layout):
    d = matcalc.diff("x.T * alpha", "alpha", layout=layout)
    assert d.evaluate({"x": np.arange(3.0), "alpha": 2.0}).shape == (3,)
