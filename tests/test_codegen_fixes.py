"""Regression tests for generated code (issue 11 items 1, 2, 8; issue 12's codegen items;
issue 15's compiled-callable and missing-backend items)."""
from __future__ import annotations

import importlib.util
import inspect
import re

import numpy as np
import pytest

import matcalc
from matcalc.chain import best_order
from matcalc.verify import sample_values


def _values(d, seed=0):
    var_shapes = dict(d.parsed.var_shapes)
    if d.upstream is not None:
        var_shapes[d.upstream] = d.out_shape
    for s in range(seed, seed + 8):
        values, _ = sample_values(var_shapes, d.parsed.expr, s)
        with np.errstate(all="ignore"):
            if np.all(np.isfinite(d.evaluate(values))):
                return values
    raise AssertionError("no finite point")


def _same(d, values=None):
    values = values or _values(d)
    want = np.asarray(d.evaluate(values))
    got = np.asarray(d.compile("numpy")(values))
    assert got.shape == want.shape, (got.shape, want.shape, d.to_python())
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9 * max(1.0, np.abs(want).max()))


# issue 11 item 1: a transposed product inside the Kronecker application lost its parentheses
WRONG = [
    ("hessian", "sum(exp(B @ C @ X))", "X", {"B": (3, 3), "C": (3, 3), "X": (3, 3)}),
    ("diff", "softmax(S @ (S @ Z), axis=1)", "Z", None),
    ("diff", "sum(y * (L @ R @ R), axis=0) * L", "L", None),
    ("diff", "sum(softmax(inv(J @ K), axis=1), axis=1)", "J", None),
    ("diff", "sigmoid(x.T - x.T) / s.T @ K @ a", "s", {"x": (4,), "s": (4,), "K": (4, 4), "a": (4,)}),
]
# issue 11 item 2: ordinary Jacobians with more than two axes crashed
CRASHED = [
    ("diff", "softmax(W@x)", "W", None),
    ("diff", "log(softmax(W@x))", "W", None),
    ("diff", "(y.T@W@x)*y", "W", None),
    ("diff", "softmax(N.T @ j)", "N", None),
    ("diff", "(u.T + v.T) @ exp(Z) @ (Y @ v @ u.T)", "Y", None),   # a column times a Kronecker row
    ("vjp", "(u.T + v.T) @ exp(Z) @ (Y @ v @ u.T)", "v", None),    # a row-vector upstream's size
    ("diff", "diag(abs(v - v))", "X", {"v": ("n",)}),               # a size only a dropped variable gives
]


@pytest.mark.parametrize("kind, expr, wrt, shapes", WRONG + CRASHED, ids=lambda x: str(x)[:40])
@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_generated_code_equals_evaluate(kind, expr, wrt, shapes, backend):
    d = getattr(matcalc, kind)(expr, wrt, shapes=shapes)
    if backend == "numpy":
        _same(d)
        return
    jax = pytest.importorskip("jax")
    values = _values(d)
    with jax.enable_x64(True):
        got = np.asarray(d.compile("jax")(values))
    want = d.evaluate(values)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9 * max(1.0, np.abs(want).max()))


def test_transposed_product_keeps_its_parentheses():
    d = matcalc.hessian("sum(exp(B @ C @ X))", "X")
    src = d.to_python()
    assert "B @ C.T" not in src and ("(B @ C).T" in src or "C.T @ B.T" in src), src
    v = _values(d)
    np.testing.assert_allclose(d.compile()(v), d.evaluate(v), rtol=1e-9, atol=1e-11)


def test_row_output_shape():
    d = matcalc.diff("sigmoid(x.T - x.T) / s.T @ K @ a", "s")
    v = _values(d)
    assert np.shape(d.compile()(v)) == np.shape(d.evaluate(v))


# issue 11 item 8: the function's name is validated like a variable name
@pytest.mark.parametrize("name", ["f():\n    import os\ndef g", "g(x=__import__('os'))", "a b", "1f", "",
                                  "np", "float", "class", "_softmax", None, 3, "x" * 200, "f\n"])
def test_function_name_is_validated(name):
    d = matcalc.diff("x.T @ A @ x", "x")
    with pytest.raises(matcalc.MatcalcError) as e:
        d.to_python(name=name)
    assert not str(e.value).startswith("internal error")


@pytest.mark.parametrize("name", ["grad_w", "f", "derivative", "_private", "A"])
def test_function_name_accepted(name):
    d = matcalc.diff("x.T @ A @ x", "x")
    src = d.to_python(name=name)
    ns: dict = {}
    exec(compile(src, "<test>", "exec"), ns)
    assert ns[name](np.eye(2), np.ones(2)).tolist() == [2.0, 2.0]
    assert len(re.findall(r"^def ", src, re.M)) == 1


# issue 12: a product of 200+ factors is valid Python (no deep parenthesis nesting)
@pytest.mark.parametrize("n", [200, 260, 390])
def test_long_product_chain_compiles(n):
    expr = "x.T@" + "@".join(["A"] * n) + "@x"
    d = matcalc.diff(expr, "x", shapes={"x": (3,), "A": (3, 3)})
    rng = np.random.default_rng(0)
    values = {"A": 0.5 * np.eye(3) + 0.1 * rng.standard_normal((3, 3)), "x": rng.standard_normal(3)}
    _same(d, values)


# issue 12: the cheapest association
def test_outer_product_chain_is_matrix_vector_first():
    d = matcalc.diff("x.T @ inv(S) @ x", "S")
    src = d.to_python()
    body = src.split("def derivative")[1]
    # no n×n @ n×n product: the result is an outer product of two matrix-vector products
    assert "np.outer(" in body and re.search(r"np\.outer\([^()]*@", body), src
    assert not re.search(r"\) @ _t\d+\b(?!\.)", body.split("np.outer")[0]), src
    _same(d)


def test_matrix_chain_order():
    n, v, r = ("n", "n"), ("n",), (1, "n")
    assert best_order([n, n, v]) == (0, (1, 2))           # A @ (B @ x)
    assert best_order([n, v, r, n]) == ((0, 1), (2, 3))   # (A x)(xᵀ B)
    assert best_order([r, n, n]) is None                  # left to right already
    assert best_order([(3, 3), (3, 3)]) is None


def test_gradient_of_a_chain_is_matrix_vector():
    d = matcalc.diff("x.T @ A @ A @ A @ x", "x")
    body = d.to_python().split('"""')[2]
    assert "A @ A" not in body and "A.T @ A.T" not in body and "_t1 @ _t1" not in body, body
    _same(d)


# issue 15: the compiled callable takes the printed source's positional order
def test_compiled_callable_positional_keyword_dict():
    d = matcalc.diff("sum((X @ w - y) ** 2)", "w")
    f = d.compile()
    rng = np.random.default_rng(1)
    X, w, y = rng.standard_normal((4, 3)), rng.standard_normal(3), rng.standard_normal(4)
    want = d.evaluate({"X": X, "w": w, "y": y})
    assert "def derivative(X, w, y):" in d.to_python()
    assert list(inspect.signature(f).parameters) == ["X", "w", "y"]
    for got in (f(X, w, y), f(X, w, y=y), f(X=X, w=w, y=y), f({"X": X, "w": w, "y": y, "other": 1})):
        np.testing.assert_allclose(got, want)
    for bad in (lambda: f(X, w), lambda: f(X, w, y, y), lambda: f(X, w, y, X=X)):
        with pytest.raises(matcalc.MatcalcError):
            bad()


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_missing_backend_says_install(backend, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == backend else real(name, *a))
    d = matcalc.diff("x.T @ A @ x", "x")
    with pytest.raises(matcalc.MatcalcError) as e:
        d.compile(backend)
    assert str(e.value) == f"install {backend} to use this backend (pip install {backend})"
    assert not isinstance(e.value, matcalc.InternalError)
