"""The language of issue 13 part 2 and issue 11 item 6: results differentiate again (kron, vec,
unvec by any argument), keepdims and numpy broadcasting of m×1 / 1×n matrices, mean by axis,
dimensions as scalar values (len, rows, cols) and the folds n/n and sum(x − mean x) = 0.

Numbers are checked against central finite differences of `matcalc.evaluate` (itself tied to
numpy by test_rules.py), the generated numpy code against `Derivative.evaluate`.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import matcalc
from public_cases import jacobian_fd

RNG = np.random.default_rng(5)
LN = ("(X - mean(X, axis=1, keepdims=True)) / sqrt(mean((X - mean(X, axis=1, keepdims=True)) ** 2, "
      "axis=1, keepdims=True) + epsilon)")


def _values(shapes: dict, sizes: dict) -> dict:
    out = {}
    for name, dims in shapes.items():
        shp = tuple(sizes.get(d, d) for d in dims)
        out[name] = float(RNG.standard_normal()) if shp == () else RNG.standard_normal(shp)
    return out


def _fd(expr, values, wrt, shapes=None):
    return jacobian_fd(lambda v: matcalc.evaluate(expr, v, shapes=shapes), values, wrt)


# ------------------------------------------------------------------ issue 11 item 6
REDIFF = [
    ("dot(vec(X), c)", "X", {"X": ("m", "n"), "c": ("m*n",)}),
    ("tr(kron(A, X))", "X", {"A": ("m", "m"), "X": ("n", "n")}),
    ("tr(kron(A, X))", "A", {"A": ("m", "m"), "X": ("n", "n")}),
    ("vec(X).T @ kron(B, A) @ vec(X)", "X", {"X": ("m", "n"), "A": ("m", "m"), "B": ("n", "n")}),
    ("kron(A, X)", "X", {"A": ("m", "n"), "X": ("p", "q")}),
    ("kron(A, X)", "A", {"A": ("m", "n"), "X": ("p", "q")}),
]
SIZES = {"m": 2, "n": 3, "p": 2, "q": 3, "m*n": 6}


@pytest.mark.parametrize("expr,wrt,shapes", REDIFF, ids=[f"{e} by {w}" for e, w, _ in REDIFF])
def test_issue_reproducers_differentiate(expr, wrt, shapes):
    """The reproducers of issue 11 item 6 derive, and agree with finite differences."""
    values = _values(shapes, SIZES)
    d = matcalc.diff(expr, wrt, shapes=shapes)
    np.testing.assert_allclose(d.evaluate(values), _fd(expr, values, wrt, shapes), rtol=1e-6, atol=1e-7)
    assert d.check().ok


@pytest.mark.parametrize("expr,wrt,shapes", REDIFF, ids=[f"{e} by {w}" for e, w, _ in REDIFF])
def test_results_differentiate_again(expr, wrt, shapes):
    """Each result's text is an input to diff, vjp and hessian again: differentiating it gives
    the finite differences of evaluating it."""
    values = _values(shapes, SIZES)
    d = matcalc.diff(expr, wrt, shapes=shapes)
    again = matcalc.diff(d.text, wrt, shapes=shapes)
    np.testing.assert_allclose(again.evaluate(values), _fd(d.text, values, wrt, shapes), rtol=1e-6, atol=1e-7)
    if matcalc.parse(expr, shapes=shapes).expr.shape == ():
        h = matcalc.hessian(expr, wrt, shapes=shapes)
        np.testing.assert_allclose(np.reshape(h.evaluate(values), again.evaluate(values).shape),
                                   again.evaluate(values), rtol=1e-7, atol=1e-9)
    v = matcalc.vjp(d.text, wrt, upstream="H", shapes=shapes)
    H = RNG.standard_normal(np.shape(matcalc.evaluate(d.text, values, shapes=shapes)))
    ref = jacobian_fd(lambda w: np.sum(H * matcalc.evaluate(d.text, w, shapes=shapes)), values, wrt)
    np.testing.assert_allclose(v.evaluate({**values, "H": H}), ref, rtol=1e-6, atol=1e-7)


def test_vec_gradient_is_unvec():
    d = matcalc.diff("dot(vec(X), c)", "X")
    assert d.text == "unvec(c, rows(X), cols(X))"
    X, c = RNG.standard_normal((2, 3)), RNG.standard_normal(6)
    np.testing.assert_allclose(d.evaluate({"X": X, "c": c}), c.reshape(2, 3, order="F"))
    assert matcalc.diff(d.text, "c").evaluate({"X": X, "c": c}).shape == (2, 3, 6)


def test_unvec_text_round_trips_and_errors():
    p = matcalc.parse("unvec(v, 2, 3)")
    assert p.shape == (2, 3) and p.text == "unvec(v, 2, 3)"
    v = np.arange(6.0)
    np.testing.assert_array_equal(matcalc.evaluate("unvec(v, 2, 3)", {"v": v}), v.reshape(2, 3, order="F"))
    assert matcalc.parse("vec(unvec(v, m, n))").text == "v"
    with pytest.raises(matcalc.ShapeError, match="unvec"):
        matcalc.parse("unvec(X, 2, 3)")


def test_kron_gradients_closed_form():
    """∂/∂A tr(Gᵀ (A ⊗ B)) = [⟨G_ij, B⟩] and ∂/∂B = Σ A_ij G_ij, directly by blocks."""
    A, B, G = RNG.standard_normal((2, 3)), RNG.standard_normal((4, 2)), RNG.standard_normal((8, 6))
    vals = {"A": A, "B": B, "G": G}
    blocks = G.reshape(2, 4, 3, 2).transpose(0, 2, 1, 3)  # blocks[i, j] = G_ij
    ga = matcalc.vjp("kron(A, B)", "A", upstream="G").evaluate(vals)
    gb = matcalc.vjp("kron(A, B)", "B", upstream="G").evaluate(vals)
    np.testing.assert_allclose(ga, np.einsum("ijkl,kl->ij", blocks, B))
    np.testing.assert_allclose(gb, np.einsum("ij,ijkl->kl", A, blocks))


# ------------------------------------------------------------------ keepdims and broadcasting
@pytest.mark.parametrize("expr,ref", [
    ("sum(X, axis=1, keepdims=True)", lambda X: X.sum(axis=1, keepdims=True)),
    ("sum(X, axis=0, keepdims=True)", lambda X: X.sum(axis=0, keepdims=True)),
    ("mean(X, axis=1, keepdims=True)", lambda X: X.mean(axis=1, keepdims=True)),
    ("mean(X, axis=0, keepdims=True)", lambda X: X.mean(axis=0, keepdims=True)),
    ("mean(X, axis=0)", lambda X: X.mean(axis=0)),
    ("mean(X, axis=1)", lambda X: X.mean(axis=1)),
    ("X - mean(X, axis=1, keepdims=True)", lambda X: X - X.mean(axis=1, keepdims=True)),
    ("sum(X, axis=1, keepdims=True) * sum(X, axis=0, keepdims=True)",
     lambda X: X.sum(axis=1, keepdims=True) * X.sum(axis=0, keepdims=True)),
    ("X / sum(X, axis=1, keepdims=True) + sum(X, axis=0, keepdims=True)",
     lambda X: X / X.sum(axis=1, keepdims=True) + X.sum(axis=0, keepdims=True)),
    ("sum(X, axis=1, keepdims=True).T", lambda X: X.sum(axis=1, keepdims=True).T),
    ("sum(sum(X, axis=1, keepdims=True), axis=1)", lambda X: X.sum(axis=1)),
])
def test_keepdims_evaluates_as_numpy(expr, ref):
    """The same array as numpy (shape included), and the text evaluates to it again."""
    X = RNG.standard_normal((3, 4)) + 2
    got = matcalc.evaluate(expr, {"X": X})
    want = ref(X)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want)
    np.testing.assert_allclose(matcalc.evaluate(matcalc.parse(expr).text, {"X": X}), want)


def test_keepdims_shapes_and_text():
    assert matcalc.parse("sum(X, axis=1, keepdims=True)").shape == ("m", 1)
    assert matcalc.parse("sum(X, axis=0, keepdims=True)").shape == (1, "n")
    assert matcalc.parse("sum(X, axis=1, keepdims=True)").text == "sum(X, axis=1, keepdims=True)"
    assert matcalc.parse("mean(X, axis=1, keepdims=True)").text == "mean(X, axis=1, keepdims=True)"
    assert matcalc.parse("c + r.T", shapes={"c": ("m", 1), "r": ("n",)}).shape == ("m", "n")
    d = matcalc.diff("sum(X, axis=1, keepdims=True)", "X")
    assert d.evaluate({"X": np.ones((3, 4))}).shape == (3, 1, 3, 4)


@pytest.mark.parametrize("expr,shapes,match", [
    ("x + c", {"x": ("n",), "c": ("m", 1)}, "column"),
    ("sum(X, keepdims=True)", None, "needs an axis"),
    ("sum(X, axis=1, keepdims=2)", None, "True or False"),
    ("tr(X, keepdims=True)", None, "no keyword"),
])
def test_keepdims_errors(expr, shapes, match):
    with pytest.raises(matcalc.MatcalcError, match=match):
        matcalc.parse(expr, shapes=shapes)


@pytest.mark.parametrize("wrt", ["X", "g", "b", "epsilon"])
def test_layer_norm_derives_checks_and_compiles(wrt):
    expr = f"sum(W * ({LN} * g + b))"
    shapes = {"epsilon": ()}
    values = {"X": RNG.standard_normal((3, 4)), "W": RNG.standard_normal((3, 4)), "g": RNG.standard_normal(4),
              "b": RNG.standard_normal(4), "epsilon": 0.3}
    d = matcalc.diff(expr, wrt, shapes=shapes)
    assert d.check().ok
    got = d.evaluate(values)
    np.testing.assert_allclose(got, _fd(expr, values, wrt, shapes), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(d.compile("numpy")(**values), got, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(matcalc.evaluate(d.text, values, shapes=shapes), got, rtol=1e-10, atol=1e-12)


def test_layer_norm_gradient_is_the_textbook_form():
    """(G − mean G − x̂ mean(G ⊙ x̂)) / σ: the centred sums fold to zero (no 400-character form)."""
    d = matcalc.vjp(LN, "X", upstream="G")
    assert "mean(G, axis=1, keepdims=True)" in d.text and len(d.text) < 400
    names = [b.split(" = ")[0] for b in d.text.split(" where ")[1].split("; ")]
    assert all(s.count(n) >= 2 for n in names for s in [d.text]), "a where binding nothing uses"
    assert d.check().ok


def test_layer_norm_jacobian_and_hessian():
    d = matcalc.diff(LN, "X")
    X = RNG.standard_normal((3, 4))
    np.testing.assert_allclose(d.evaluate({"X": X, "epsilon": 0.2}), _fd(LN, {"X": X, "epsilon": 0.2}, "X"),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(d.compile("numpy")(X=X, epsilon=0.2), d.evaluate({"X": X, "epsilon": 0.2}))
    h = matcalc.hessian(f"sum(W * {LN})", "X")
    assert h.check().ok


@pytest.mark.parametrize("expr,wrt,shapes", [
    ("sum(A * c * A)", "c", {"c": ("m", 1)}),
    ("A @ c", "c", {"c": ("n", 1)}),
    ("(c + r.T) ** 2", "c", {"c": ("m", 1), "r": ("n",)}),
    ("(c + r.T) ** 2", "r", {"c": ("m", 1), "r": ("n",)}),
    ("sum(exp(c @ r.T) / (1 + c ** 2))", "c", {"c": ("m", 1), "r": ("n",)}),
    ("c.T @ A @ c", "c", {"c": ("m", 1), "A": ("m", "m")}),
])
def test_columns_compile_and_check(expr, wrt, shapes):
    sizes = {"m": 3, "n": 4}
    values = _values({"A": ("m", "n") if "A" not in shapes else shapes["A"], **shapes}, sizes)
    if "A" not in expr:
        values.pop("A")
    d = matcalc.diff(expr, wrt, shapes=shapes)
    got = d.evaluate(values)
    np.testing.assert_allclose(got, _fd(expr, values, wrt, shapes), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(d.compile("numpy")(**values), got, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ dimensions as values, folds
@pytest.mark.parametrize("expr,wrt,text", [
    ("mean(x)", "x", "ones(len(x)) / len(x)"),
    ("sum((x - mean(x)) ** 2)", "x", "2 * (x - mean(x))"),
    ("sum(x - mean(x))", "x", "zeros(len(x))"),
    ("len(x) / len(x) * x", "x", "eye(len(x))"),
    ("sum(ones(len(x))) * dot(x, x)", "x", "2 * len(x) * x"),
    ("rows(X) * cols(X) * sum(X)", "X", "rows(X) * cols(X) * ones(rows(X), cols(X))"),
])
def test_dimension_values_and_folds(expr, wrt, text):
    d = matcalc.diff(expr, wrt)
    assert d.text == text
    x = RNG.standard_normal(4)
    X = RNG.standard_normal((2, 3))
    np.testing.assert_allclose(d.evaluate({"x": x, "X": X}), matcalc.evaluate(d.text, {"x": x, "X": X}))


def test_len_rows_cols_values():
    x, X = np.arange(4.0), np.ones((2, 3))
    assert matcalc.evaluate("len(x) * rows(X) + cols(X)", {"x": x, "X": X}) == 11.0
    assert matcalc.parse("sum(ones(len(x)))").text == "len(x)"
    with pytest.raises(matcalc.ShapeError, match="len"):
        matcalc.parse("len(X)")


def test_mean_axis_on_vectors_and_columns():
    x = RNG.standard_normal(4)
    assert matcalc.evaluate("mean(x, axis=0)", {"x": x}) == pytest.approx(x.mean())
    c = RNG.standard_normal((4, 1))
    np.testing.assert_allclose(matcalc.evaluate("mean(c, axis=1)", {"c": c}, shapes={"c": (4, 1)}), c[:, 0])


# ------------------------------------------------------------------ property: results re-differentiate
SHAPES = {"X": ("m", "n"), "Y": ("m", "n"), "A": ("m", "m"), "B": ("n", "n"), "x": ("n",), "y": ("m",),
          "alpha": ()}
VAL_SIZES = {"m": 2, "n": 3}
LEAVES = {"mn": ["X", "Y", "A @ X", "X @ B", "kron(x.T, y)"], "n": ["x", "X.T @ y", "B @ x"],
          "m": ["y", "X @ x", "A @ y"]}
WRAP = {"mn": ["tanh({})", "{} * X", "exp({}) - Y", "A @ {}", "{} - mean({}, axis=1, keepdims=True)",
               "unvec(vec({}), m, n)"],
        "n": ["sin({})", "{} * x", "B.T @ {}", "{} / (1 + {} ** 2)"],
        "m": ["sigmoid({})", "{} * y", "A @ {}"]}


@st.composite
def _results(draw):
    kind = draw(st.sampled_from(sorted(LEAVES)))
    e = draw(st.sampled_from(LEAVES[kind]))
    for _ in range(draw(st.integers(1, 3))):
        e = draw(st.sampled_from(WRAP[kind])).format(*(["(" + e + ")"] * 2))
    wrt = draw(st.sampled_from(sorted(v for v in SHAPES if v in e) or ["X"]))
    return e, wrt


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(_results())
def test_results_differentiate_again_property(p):
    """Jacobians with more than two axes are written with kron, vec, commutation: their text is an
    input to diff again, and that derivative equals the finite differences of the text."""
    e, wrt = p
    rng = np.random.default_rng(abs(hash((e, wrt))) % 2 ** 32)
    values = {k: (float(rng.standard_normal()) if s == () else rng.standard_normal([VAL_SIZES[d] for d in s]))
              for k, s in SHAPES.items()}
    d = matcalc.diff(e, wrt, shapes=SHAPES)
    again = matcalc.diff(d.text, wrt, shapes=SHAPES)
    got = again.evaluate(values)
    ref = _fd(d.text, values, wrt, SHAPES)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6 * max(1.0, float(np.max(np.abs(ref)))),
                               err_msg=f"d/d{wrt} of {d.text}")


@pytest.mark.parametrize("expr,wrt", [
    # an m×1 column and a vector meet only through the matrix both broadcast against
    ("sum((a - ones(n, m) + sum(Z, axis=1, keepdims=True) + sum(Z, axis=0, keepdims=True)).T @ eye(n))", "Z"),
    ("sum((X + x.T + c - X) ** 2)", "c"),
    ("sum(X - mean(X, axis=0, keepdims=True) * sum(X, axis=1, keepdims=True))", "X"),
])
def test_broadcast_order_independent(expr, wrt):
    shapes = {"c": ("m", 1)} if "c" in expr else None
    d = matcalc.diff(expr, wrt, shapes=shapes)
    assert d.check().ok


def test_hessian_through_keepdims():
    h = matcalc.hessian("sum((X - mean(X, axis=1, keepdims=True)) ** 2)", "X")
    assert h.check().ok
    assert matcalc.diff("sum((X - mean(X, axis=1, keepdims=True)) ** 2)", "X").text == \
        "2 * (X - mean(X, axis=1, keepdims=True))"
