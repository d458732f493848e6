"""det's derivative where its argument is singular: every channel computes det(A) A⁻¹ as adj(A).

The derivative of det is written det(A) A⁻ᵀ (the text the golden tests pin); its value, the
transposed adjugate, exists at a singular A although A⁻¹ does not. `d.evaluate`, the generated
code (numpy, and jax when installed), the text read back and `check()` must all give the same
numbers, and those numbers must be the finite differences — at rank n − 1 (the gradient is a
rank-one matrix), at rank ≤ n − 2 (the gradient is zero) and near a singular matrix.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import matcalc
from matcalc.adjugate import adjugate
from public_cases import jacobian_fd

SHAPES = {"X": ("n", "n"), "A": ("n", "n")}


def _cofactor_adjugate(a: np.ndarray) -> np.ndarray:
    """adj(A) by its definition, the transposed matrix of cofactors."""
    n = a.shape[0]
    if n == 1:
        return np.ones((1, 1))
    c = np.zeros_like(a)
    for i, j in itertools.product(range(n), range(n)):
        minor = np.delete(np.delete(a, i, 0), j, 1)
        c[i, j] = (-1) ** (i + j) * np.linalg.det(minor)
    return c.T


def _of_rank(n: int, r: int, seed: int, smallest: float = 0.0) -> np.ndarray:
    """A random n×n matrix of rank r (its other singular values `smallest`)."""
    rng = np.random.default_rng(seed)
    u = np.linalg.qr(rng.standard_normal((n, n)))[0]
    v = np.linalg.qr(rng.standard_normal((n, n)))[0]
    s = np.concatenate([rng.uniform(0.5, 2.0, r), np.full(n - r, smallest)])
    return u @ np.diag(s) @ v.T


POINTS = {
    "diag(1, 1, 0)": np.diag([1.0, 1.0, 0.0]),
    "rank n-1": _of_rank(3, 2, 1),
    "rank n-2": _of_rank(3, 1, 2),
    "zero": np.zeros((3, 3)),
    "near singular": _of_rank(3, 2, 3, smallest=1e-9),
    "rank n-1, n = 4": _of_rank(4, 3, 4),
    "rank n-2, n = 4": _of_rank(4, 2, 5),
    "invertible": _of_rank(3, 3, 6),
}

EXPRS = ["det(X)", "det(X) ** 2", "det(X @ X)", "det(A @ X)", "det(X.T @ A)", "det(X + A)", "det(X) * tr(X)",
         "sigmoid(det(X))", "det(X) ** 3", "det(X) * sum(X)", "det(2 * X)", "det(-X) + det(X / 2)"]


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_adjugate_of_invertible_matrix_is_det_times_inverse(n):
    a = np.random.default_rng(n).standard_normal((n, n))
    np.testing.assert_allclose(adjugate(a), np.linalg.det(a) * np.linalg.inv(a), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("point", list(POINTS), ids=list(POINTS))
def test_adjugate_is_the_cofactor_matrix(point):
    a = POINTS[point]
    np.testing.assert_allclose(adjugate(a), _cofactor_adjugate(a), rtol=1e-9, atol=1e-12)


def test_adjugate_at_rank_n_minus_2_is_zero():
    for seed in range(5):
        assert np.abs(adjugate(_of_rank(4, 2, seed))).max() < 1e-14


def _values(point: str) -> dict:
    x = POINTS[point]
    a = np.random.default_rng(7).standard_normal(x.shape)
    return {"X": x, "A": a}


@pytest.mark.parametrize("point", list(POINTS), ids=list(POINTS))
@pytest.mark.parametrize("expr", EXPRS)
def test_det_gradient_at_singular_points(expr, point):
    """d.evaluate is the finite differences; generated code and the text read back agree."""
    values = _values(point)
    d = matcalc.diff(expr, "X", shapes=SHAPES)
    got = d.evaluate(values)
    want = jacobian_fd(lambda v: matcalc.evaluate(expr, v, shapes=SHAPES), values, "X")
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7, err_msg=f"{expr} at {point}")
    np.testing.assert_allclose(d.compile()(values), got, rtol=1e-12, atol=1e-14, err_msg="generated numpy code")
    np.testing.assert_allclose(matcalc.evaluate(d.text, values, shapes=SHAPES), got, rtol=1e-12, atol=1e-14,
                               err_msg=f"text {d.text!r}")


@pytest.mark.parametrize("point", ["diag(1, 1, 0)", "rank n-1", "rank n-2"])
@pytest.mark.parametrize("expr", ["det(X)", "det(X @ X)", "det(A @ X)"])
def test_det_vjp_at_singular_points(expr, point):
    values = dict(_values(point), G=1.5)
    v = matcalc.vjp(expr, "X", upstream="G", shapes=dict(SHAPES, G=()))
    want = 1.5 * jacobian_fd(lambda w: matcalc.evaluate(expr, w, shapes=SHAPES), values, "X")
    np.testing.assert_allclose(v.evaluate(values), want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(v.compile()(values), v.evaluate(values), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("point", list(POINTS), ids=list(POINTS))
@pytest.mark.parametrize("expr", ["det(X)", "det(X) ** 2", "det(X @ X)", "det(A @ X)"])
def test_det_gradient_jax_agrees(expr, point):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    values = _values(point)
    d = matcalc.diff(expr, "X", shapes=SHAPES)
    np.testing.assert_allclose(np.asarray(d.compile(backend="jax")(values)), d.evaluate(values),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("inner", [2, 1], ids=["rank n-1", "rank n-2"])
def test_check_of_det_of_a_rank_deficient_product(inner):
    """det(Z @ W) with Z 3×k, W k×3, k < 3 is singular at every point check() samples."""
    shapes = {"Z": (3, inner), "W": (inner, 3)}
    for wrt in ("Z", "W"):
        d = matcalc.diff("det(Z @ W) + sum(Z @ W)", wrt, shapes=shapes)
        r = d.check(backend="numpy")
        assert r.ok, f"d/d{wrt}: {r}"


def test_text_keeps_det_times_inverse():
    """The numbers come from the adjugate; the text stays the textbook form."""
    assert matcalc.diff("det(X)", "X").text == "det(X) * inv(X).T"
    assert matcalc.diff("det(X)", "X", layout="numerator").text == "det(X) * inv(X)"


def test_nonfinite_entry_gives_nan_on_every_channel():
    values = {"X": np.array([[1.0, np.nan], [0.0, 1.0]])}
    d = matcalc.diff("det(X)", "X")
    got = d.evaluate(values)
    assert np.isnan(got).all()
    with np.errstate(all="ignore"):
        assert np.isnan(d.compile()(values)).all()


def test_grad_block_at_a_singular_point():
    """Several gradients from one sweep (matcalc.grad): its evaluate and its one function."""
    values = _values("rank n-1")
    g = matcalc.grad("det(A @ X) + det(X)", "X,A", shapes=SHAPES)
    got = g.evaluate(values)
    for name in ("X", "A"):
        want = jacobian_fd(lambda v: matcalc.evaluate("det(A @ X) + det(X)", v, shapes=SHAPES), values, name)
        np.testing.assert_allclose(got[name], want, rtol=1e-6, atol=1e-7, err_msg=name)
    code = g.compile()(values)
    for name, value in zip(g.wrts, code):
        np.testing.assert_allclose(value, got[name], rtol=1e-12, atol=1e-14, err_msg=name)
