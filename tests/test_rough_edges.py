"""The rough edges a new user hits (issue 15, item 2): each test failed before its fix."""
from __future__ import annotations

import json

import numpy as np
import pytest

import matcalc
from matcalc.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---- an expression (or a name) starting with '-' is not an option
@pytest.mark.parametrize("argv,text", [
    (("diff", "-x.T@y", "x", "-q", "--format", "text"), "-y"),
    (("diff", "-sum((X@w - y)**2)", "w", "--format=text", "-q"), "-2 * X.T @ (X @ w - y)"),
    (("diff", "--format", "text", "-sum(x*y)", "-q", "x"), "-y"),
    (("diff", "-q", "-2*x.T@y", "x", "--shape", "x=n", "--format", "text"), "-2 * y"),
    (("vjp", "-W@X", "X", "--upstream", "H", "-q", "--format", "text"), None),
])
def test_expression_starting_with_minus(capsys, argv, text):
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert out.strip() == (text or matcalc.vjp("-W@X", "X", upstream="H").text)


def test_real_options_still_work_beside_a_minus_expression(capsys):
    code, out, err = run(capsys, "diff", "-y.T@log(softmax(W@x))", "W", "--assume", "sums_to_one=y",
                         "--format", "json")
    assert code == 0, err
    assert json.loads(out)["text"] == "(softmax(W @ x) - y) @ x.T"
    code, out, err = run(capsys, "diff", "-x.T@y", "x", "--bogus")
    assert code == 2 and "unrecognized arguments: --bogus" in err
    code, out, err = run(capsys, "diff", "--shape", "x=n", "-x.T@y")
    assert code == 2 and "WRT" in err


# ---- a variable the expression does not use
def test_warning_for_an_absent_variable(capsys):
    d = matcalc.diff("sum((X @ W - Y) ** 2)", "w")
    assert len(d.warnings) == 1
    w = d.warnings[0]
    assert "w does not occur" in w and "X, W, Y" in w and "did you mean W?" in w
    assert matcalc.diff("sum((X @ W - Y) ** 2)", "W").warnings == []
    code, out, err = run(capsys, "diff", "sum((X @ W - Y) ** 2)", "w", "-q")
    assert code == 0 and "warning: w does not occur" in err and "did you mean W?" in err
    assert "warning" not in out
    code, out, err = run(capsys, "diff", "sum((X @ W - Y) ** 2)", "w", "--format", "json")
    assert json.loads(out)["warnings"] == matcalc.diff("sum((X @ W - Y) ** 2)", "w").warnings


def test_warning_names_a_near_miss_and_no_false_alarm():
    assert "did you mean theta?" in matcalc.diff("sum(theta * x)", "thetta").warnings[0]
    assert matcalc.diff("x - x", "x").warnings == []  # it occurs, even if it cancels
    assert matcalc.diff("2", "x").warnings[0].startswith("x does not occur")


# ---- symmetric declares square
def test_symmetric_declares_square(capsys):
    d = matcalc.diff("tr(A @ X)", "A", symmetric=["A"])
    assert d.variable_shapes["A"] == d.variable_shapes["X"] == "m×m"
    assert d.text == "X.T" and d.check().ok
    code, out, err = run(capsys, "diff", "tr(A @ X)", "A", "--symmetric", "A", "--format", "text", "-q")
    assert code == 0, err
    assert out.strip() == "X.T"
    with pytest.raises(matcalc.MatcalcError, match="only a square matrix"):
        matcalc.diff("tr(A @ X)", "A", symmetric=["A"], shapes={"A": ("m", "n")})


# ---- sums_to_one
def test_sums_to_one_single_sample_cross_entropy():
    d = matcalc.diff("-y.T @ log(softmax(W @ x))", "W", assume="sums_to_one=y")
    assert d.text == "(softmax(W @ x) - y) @ x.T"
    assert d.check().ok
    d = matcalc.diff("-y.T @ log(softmax(W @ x))", "W", assume={"sums_to_one": "y"})
    assert d.latex == r"\left(\operatorname{softmax}\left(W x\right) - y\right) x^{T}"
    assert "sum(y)" in matcalc.diff("-y.T @ log(softmax(W @ x))", "W").text  # without the fact
    with pytest.raises(matcalc.MatcalcError, match="sums_to_one needs a vector; use rows_sum_to_one"):
        matcalc.diff("-sum(Y * log(softmax(X, axis=1)))", "X", assume="sums_to_one=Y")
    with pytest.raises(matcalc.MatcalcError, match="use sums_to_one for a vector"):
        matcalc.diff("-y.T @ log(softmax(W @ x))", "W", assume="rows_sum_to_one=y")


# ---- hessian(layout=...) and other wrong keywords
def test_hessian_layout_is_accepted_and_the_same():
    h = matcalc.hessian("x.T @ A @ x", "x")
    for layout in ("mixed", "numerator", "denominator"):
        assert matcalc.hessian("x.T @ A @ x", "x", layout=layout).text == h.text
    with pytest.raises(matcalc.MatcalcError, match="layout must be one of"):
        matcalc.hessian("x.T @ A @ x", "x", layout="rows")


def test_wrong_keyword_is_a_clear_error_not_internal():
    with pytest.raises(matcalc.MatcalcError) as e:
        matcalc.diff("x.T @ y", "x", upstream="G")
    assert not isinstance(e.value, matcalc.InternalError)
    assert "unexpected keyword argument 'upstream'" in str(e.value)


# ---- --layout with more than two axes
def test_layout_with_more_than_two_axes_says_so(capsys):
    d = matcalc.diff("X @ W", "W", layout="numerator")
    assert any("at most two axes" in w for w in d.warnings)
    assert matcalc.diff("X @ W", "W").warnings == []
    assert matcalc.diff("A @ x", "x", layout="numerator").warnings == []
    code, out, err = run(capsys, "diff", "X@W", "W", "--layout", "denominator", "-q")
    assert code == 0 and "at most two axes" in err


# ---- error hints for habits
@pytest.mark.parametrize("expr,hint", [
    ("x^2", "did you mean x**2?"),
    ("sum(x)^3", "did you mean ** for a power"),
    ("x'@y", "did you mean x.T (the transpose)?"),
    ("(A@B)'", "did you mean .T for a transpose"),
])
def test_habit_hints(capsys, expr, hint):
    with pytest.raises(matcalc.ParseError, match=r"column") as e:
        matcalc.diff(expr, "x")
    assert hint in str(e.value)
    code, out, err = run(capsys, "diff", expr, "x")
    assert code == 2 and hint in err


def test_star_between_matrices_hints_at_matmul():
    with pytest.raises(matcalc.ShapeError) as e:
        matcalc.diff("sum(A * B)", "A", shapes={"A": ("m", "n"), "B": ("n", "p")})
    assert "did you mean A @ B (the matrix product)?" in str(e.value)
    with pytest.raises(matcalc.ShapeError) as e:  # shapes that fit no product: no such hint
        matcalc.diff("sum(A * B)", "A", shapes={"A": ("m", "n"), "B": ("p", "q")})
    assert "did you mean" not in str(e.value)
    assert matcalc.diff("a^2", "a", syntax="matrixcalculus").text  # ^ is matrixcalculus.org's power


# ---- several variables on the command line
def test_cli_several_variables(capsys):
    expr = "sum((tanh(X@W1+b1)@W2+b2-Y)**2)"
    code, out, err = run(capsys, "diff", expr, "W1,b1,W2,b2", "--format", "text")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("# X: m×n, W1: n×p") and lines[0].endswith("gradients by W1, b1, W2, b2")
    g = matcalc.grad(expr, "W1,b1,W2,b2")
    assert "\n".join(lines[1:]) == g.text
    code, out, err = run(capsys, "diff", expr, "W1,b1,W2,b2", "--format", "json")
    js = json.loads(out)
    assert set(js["gradients"]) == {"W1", "b1", "W2", "b2"}
    assert js["gradients"]["W1"]["text"] == matcalc.diff(expr, "W1").text
    code, out, err = run(capsys, "diff", expr, "W1,b2", "--check", "-q", "--format", "text")
    assert code == 0 and out.count("# check") == 2
    code, out, err = run(capsys, "diff", expr, "W1,b1", "--emit", "numpy")
    ns: dict = {}
    exec(out, ns)
    assert "gradients" in ns
    code, out, err = run(capsys, "vjp", "tanh(X@W1+b1)@W2", "W1,b1", "--steps", "--format", "text")
    assert code == 0 and "# steps for W1:" in out and "# steps for b1:" in out and "dL/dW1 = X.T @ t1" in out
    code, out, err = run(capsys, "hessian", "x.T@A@x", "x,A")
    assert code == 2 and "one variable" in err
    code, out, err = run(capsys, "diff", "X@W", "W,X")
    assert code == 2 and "grad needs a scalar" in err
