"""Error quality: the exact messages matcalc gives for bad input (issue: "Hostile and malformed
input: fuzzing, limits and error quality").

API.md: every bad input raises a `matcalc.MatcalcError`; a `ParseError` shows the column and a
caret under the offending text, a `ShapeError` names the operator and both operands' shapes; the
CLI prints the message on one line of stderr (plus the caret line) and exits with status 2.

The tables pin the messages matcalc gives now where they are good.  Where a message is poor or
wrong, the test states the message it should give and is marked `xfail(strict=True)`: it starts
to pass (and then fails as XPASS, so the marker gets removed) once matcalc is fixed.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import matcalc
from matcalc import cli

#: the shapes of the shape-error table: X m×n, Y p×q, A n×n, w p, x m, y n, c scalar
S = {"X": ("m", "n"), "Y": ("p", "q"), "A": ("n", "n"), "w": ("p",), "x": ("m",), "y": ("n",), "c": ()}


def error_of(fn, *args, **kwargs) -> matcalc.MatcalcError:
    """The MatcalcError `fn` raises (fails the test if it returns or raises anything else)."""
    try:
        result = fn(*args, **kwargs)
    except matcalc.MatcalcError as e:
        return e
    pytest.fail(f"{fn.__name__}{args!r} returned {result!r} instead of raising a MatcalcError")


def caret_under(message: str) -> tuple[str, int, int]:
    """(echoed source line, caret start column (0-based), caret width) of a message's last two lines."""
    lines = message.split("\n")
    assert len(lines) >= 3, f"no caret line in {message!r}"
    src, car = lines[-2], lines[-1]
    assert car.strip() and set(car.strip()) == {"^"}, f"last line is not a caret line: {car!r}"
    start = len(car) - len(car.lstrip(" "))
    return src, start, len(car.strip())


def reported_column(message: str) -> int | None:
    m = re.search(r"at column (\d+)", message.split("\n")[0])
    return int(m.group(1)) if m else None


# ----------------------------------------------------------------------------- parse errors
# (expression, exact message, the text the caret must be under (None: no caret expected))
PARSE_ERRORS = [
    ("X @@ w",
     "unexpected '@' at column 4, expected '(' or '-' or a name or a number\nX @@ w\n   ^", "@"),
    ("x +",
     "unexpected end of input at column 4, expected '(' or '-' or a name or a number\nx +\n   ^", ""),
    ("x where", "unexpected end of input at column 8, expected a name\nx where\n       ^", ""),
    ("x where 1 = x", "unexpected '1' at column 9, expected a name\nx where 1 = x\n        ^", "1"),
    ("x where x", "unexpected end of input at column 10, expected '='\nx where x\n         ^", ""),
    ("__class__", "unexpected character '_' at column 1\n__class__\n^", "_"),
    ("x ^ y", "unexpected character '^' at column 3; did you mean x**y?\nx ^ y\n  ^", "^"),
    ("x\0", "unexpected character '\\x00' at column 2\nx?\n ^", "\0"),
    ("x²", "unexpected character '²' at column 2\nx²\n ^", "²"),
    ("X[0]", "unexpected character '[' at column 2\nX[0]\n ^", "["),
    ("", "the expression is empty", None),
    ("   ", "the expression is empty", None),
    # unknown functions: "did you mean"
    ("tarce(X)", "unknown function 'tarce'; did you mean tr?\ntarce(X)\n^^^^^", "tarce"),
    ("expp(x)", "unknown function 'expp'; did you mean exp?\nexpp(x)\n^^^^", "expp"),
    ("softmx(x)", "unknown function 'softmx'; did you mean softmax?\nsoftmx(x)\n^^^^^^", "softmx"),
    ("sigmod(x)", "unknown function 'sigmod'; did you mean sigmoid?\nsigmod(x)\n^^^^^^", "sigmod"),
    ("logdeterminant(X)",
     "unknown function 'logdeterminant'; did you mean logdet?\nlogdeterminant(X)\n^^^^^^^^^^^^^^", "logdeterminant"),
    ("Relu(x)", "unknown function 'Relu'; did you mean relu?\nRelu(x)\n^^^^", "Relu"),
    # a keyword used as a variable (function names may be variables: see test_function_names_as_variables)
    ("axis + 1", "axis= is a keyword of sum, softmax and logsumexp\naxis + 1\n^^^^", "axis"),
    ("x * axis", "axis= is a keyword of sum, softmax and logsumexp\nx * axis\n    ^^^^", "axis"),
    # wrong number of arguments, bad axis
    ("tr(X, Y)", "tr() takes 1 argument, 2 given\ntr(X, Y)\n^^^^^^^^", "tr(X, Y)"),
    ("dot(x)", "dot() takes 2 arguments, 1 given\ndot(x)\n^^^^^^", "dot(x)"),
    ("norm()", "norm() takes 1 or 2 arguments, 0 given\nnorm()\n^^^^^^", "norm()"),
    ("zeros(n, m, p)", "zeros() takes 1 or 2 arguments, 3 given\nzeros(n, m, p)\n^^^^^^^^^^^^^^", "zeros(n, m, p)"),
    ("sum(X, axis=2)", "sum(): axis must be 0 or 1\nsum(X, axis=2)\n            ^", "2"),
    ("softmax(X, axis=-2)", "softmax(): axis must be 0 or 1\nsoftmax(X, axis=-2)\n                ^^", "-2"),
    ("y where y = x; y = x", "where: y is bound twice\ny where y = x; y = x\n               ^", "y"),
]


@pytest.mark.parametrize("expr, message, under", PARSE_ERRORS, ids=[repr(c[0])[:40] for c in PARSE_ERRORS])
def test_parse_error_message(expr, message, under):
    e = error_of(matcalc.parse, expr)
    assert isinstance(e, matcalc.ParseError)
    assert str(e) == message
    if under is None:
        return
    src, start, width = caret_under(str(e))
    shown = "".join(ch if ch.isprintable() else "?" for ch in expr.split("\n")[0])  # no control chars echoed
    assert src == shown
    if under == "":  # end of input: the caret sits just past the last character
        assert start == len(expr.rstrip())
    else:
        assert src[start:start + width] == "".join(ch if ch.isprintable() else "?" for ch in under)
    col = reported_column(str(e))
    if col is not None:
        assert col == start + 1, "the column in the message and the caret disagree"


@pytest.mark.parametrize("fn", [matcalc.diff, matcalc.vjp, matcalc.hessian])
def test_every_entry_point_gives_the_same_parse_error(fn):
    e = error_of(fn, "X @@ w", "w")
    assert isinstance(e, matcalc.ParseError)
    assert str(e) == PARSE_ERRORS[0][1]


def test_evaluate_gives_the_same_parse_error():
    e = error_of(matcalc.evaluate, "X @@ w", {"X": np.eye(2), "w": np.ones(2)})
    assert str(e) == PARSE_ERRORS[0][1]


def test_length_limit_message():
    e = error_of(matcalc.parse, "x+" * 50000 + "x")
    assert isinstance(e, matcalc.ParseError)
    assert str(e) == ("the expression has 100001 characters; the limit is 100000 "
                      "(matcalc.grammar.LIMITS['max_length'])")


def test_depth_limit_message():
    e = error_of(matcalc.parse, "x" + ".T" * 10000)
    assert isinstance(e, matcalc.ParseError)
    assert str(e) == "the expression nests deeper than 2000 levels (matcalc.grammar.LIMITS['max_depth'])"


# ----------------------------------------------------------------------------- shape errors
SHAPE_ERRORS = [
    ("X @ w", "X @ w: X is m×n but w has p entries"),  # the example of API.md
    ("x @ y", "x @ y: x has m entries and y has n entries: both are column vectors; "
              "did you mean x.T @ y (inner product) or x @ y.T (outer product)?"),
    ("x @ X", "x @ X: x has m entries but X is m×n: a column vector times a matrix is undefined; "
              "did you mean x.T @ X?"),
    ("X.T @ w", "X.T @ w: X.T is n×m but w has p entries"),
    ("x.T @ Y", "x.T @ Y: x.T is a 1×m row vector but Y is p×q"),
    ("X @ Y", "X @ Y: X is m×n but Y is p×q"),
    ("c @ X", "c @ X: c is a scalar; use * to multiply by a scalar"),
    ("X @ c", "X @ c: c is a scalar; use * to multiply by a scalar"),
    ("tr(X)", "tr(X): tr needs a square matrix, but X is m×n"),
    ("det(X)", "det(X): det needs a square matrix, but X is m×n"),
    ("logdet(X)", "logdet(X): logdet needs a square matrix, but X is m×n"),
    ("inv(X)", "inv(X): inv needs a square matrix, but X is m×n"),
    ("tr(x)", "tr(x): tr needs a square matrix, but x has m entries"),
    ("det(c)", "det(c): det needs a square matrix, but c is a scalar"),
    ("diag(X)", "diag(X): diag needs a square matrix, but X is m×n"),
    ("diag(c)", "diag(c): diag takes a vector or a square matrix, but c is a scalar"),
    ("X + Y", "X + Y: X is m×n but Y is p×q; they do not fit for '+'"),
    ("X - Y", "X - Y: X is m×n but Y is p×q; they do not fit for '-'"),
    ("X / Y", "X / Y: X is m×n but Y is p×q; they do not fit for '/'"),
    ("X ** Y", "X ** Y: X is m×n but Y is p×q; they do not fit for '**'"),
    ("x + y", "x + y: x has m entries but y has n entries; they do not fit for '+'"),
    ("X * w", "X * w: X is m×n but w has p entries; they do not fit for '*' (a vector broadcasts over "
              "the rows of a matrix: its length must match the number of columns)"),
    ("X + x.T", "X + x.T: X is m×n but x.T is a 1×m row vector; they do not fit for '+'"),
    ("sum(x, axis=1)", "sum(x, axis=1): x has m entries; a vector has no axis 1"),
    ("softmax(X)", "softmax(X): softmax takes a vector, or a matrix with axis=0 or axis=1, but X is m×n"),
    ("logsumexp(X)", "logsumexp(X): logsumexp takes a vector, or a matrix with axis=0 or axis=1, but X is m×n"),
    ("softmax(x, axis=1)", "softmax(x, axis=1): softmax takes a vector, or a matrix with axis=0 or axis=1, "
                           "but x has m entries"),
    ("dot(x, y)", "dot(x, y): x has m entries but y has n entries"),
    ("dot(X, y)", "dot(X, y): dot takes two vectors, but X is m×n"),
    ("eye(n) + eye(m)", "eye(n) + eye(m): eye(n) is n×n but eye(m) is m×m; they do not fit for '+'"),
]


@pytest.mark.parametrize("expr, message", SHAPE_ERRORS, ids=[c[0] for c in SHAPE_ERRORS])
def test_shape_error_message(expr, message):
    e = error_of(matcalc.parse, expr, shapes=S)
    assert isinstance(e, matcalc.ShapeError)
    assert str(e) == message


def test_shape_error_from_diff_names_the_operator_and_both_shapes():
    e = error_of(matcalc.diff, "sum(X @ w)", "w", shapes={"X": ("m", "n"), "w": ("p",)})
    assert isinstance(e, matcalc.ShapeError)
    assert str(e) == "X @ w: X is m×n but w has p entries"


def test_a_name_declared_a_vector_used_as_a_matrix():
    e = error_of(matcalc.diff, "tr(W)", "W", shapes={"W": ("n",)})
    assert str(e) == "tr(W): tr needs a square matrix, but W has n entries"


# with default shapes (no shapes=): the dimensions are named as in results, m, n, p, ...
DEFAULT_SHAPE_ERRORS = [
    ("x @ y", "x @ y: x has m entries and y has n entries: both are column vectors; "
              "did you mean x.T @ y (inner product) or x @ y.T (outer product)?"),
    ("x @ X", "x @ X: x has m entries but X is n×p: a column vector times a matrix is undefined; "
              "did you mean x.T @ X?"),
    ("dot(X, y)", "dot(X, y): dot takes two vectors, but X is m×n"),
    ("tr(x)", "tr(x): tr needs a square matrix, but x has m entries"),
    ("softmax(X)", "softmax(X): softmax takes a vector, or a matrix with axis=0 or axis=1, but X is m×n"),
    ("sum(x, axis=1)", "sum(x, axis=1): x has m entries; a vector has no axis 1"),
]


@pytest.mark.parametrize("expr, message", DEFAULT_SHAPE_ERRORS, ids=[c[0] for c in DEFAULT_SHAPE_ERRORS])
def test_shape_error_message_with_default_shapes(expr, message):
    e = error_of(matcalc.parse, expr)
    assert isinstance(e, matcalc.ShapeError)
    assert str(e) == message


@pytest.mark.parametrize("expr", ["X @ x + y.T", "dot(x, X @ y.T)", "tr(x.T @ X)", "x.T + X @ y.T @ z"])
def test_no_internal_dimension_names_in_messages(expr):
    msg = str(error_of(matcalc.parse, expr))
    assert not re.search(r"\?\d", msg), msg


def test_function_names_as_variables():
    """A function name not followed by '(' is a variable (e.g. a vector named exp)."""
    d = matcalc.diff("exp(exp)", "exp")
    assert d.text == "diag(exp(exp))"
    assert matcalc.parse(d.text).var_shapes == {"exp": ("m",)}


def test_conflicting_declared_dimensions():
    e = error_of(matcalc.diff, "x + y", "x", shapes={"x": (3,), "y": (4,)})
    assert str(e) == "x + y: x has 3 entries but y has 4 entries; they do not fit for '+'"


# ----------------------------------------------------------------------------- arguments
ARGUMENT_ERRORS = [
    (matcalc.diff, ("x", "1x"), {}, "wrt must be a variable name like X or w, not '1x'"),
    (matcalc.diff, ("x", ""), {}, "wrt must be a variable name like X or w, not ''"),
    (matcalc.diff, ("x", None), {}, "wrt must be a variable name like X or w, not None"),
    (matcalc.diff, ("x", "x y"), {}, "wrt must be a variable name like X or w, not 'x y'"),
    (matcalc.diff, ("x", "__class__"), {}, "wrt must be a variable name like X or w, not '__class__'"),
    (matcalc.hessian, ("sum(x)", "1x"), {}, "wrt must be a variable name like X or w, not '1x'"),
    (matcalc.vjp, ("x", "x"), {"upstream": "1G"}, "upstream must be a variable name like X or w, not '1G'"),
    (matcalc.vjp, ("x", "x"), {"upstream": "x"}, "the upstream gradient's name x is the variable itself"),
    (matcalc.vjp, ("x * G", "x"), {},
     "the upstream gradient's name G is a variable of the expression; choose another with upstream="),
    (matcalc.diff, ("x", "x"), {"layout": "rows"},
     "layout must be one of mixed, numerator, denominator, not 'rows'"),
    (matcalc.diff, ("x", "x"), {"shapes": [("x", ("n",))]},
     "shapes must be a dict of name -> dimensions, not list"),
    (matcalc.diff, ("x", "x"), {"shapes": {"x": ("m", "n", "p")}},
     "shapes: x has 3 axes; matcalc handles scalars, vectors and matrices"),
    (matcalc.diff, ("x", "x"), {"shapes": {"x": (-1,)}}, "shapes: x has a dimension -1; dimensions are positive"),
    (matcalc.diff, ("x", "x"), {"shapes": {"x": (0,)}}, "shapes: x has a dimension 0; dimensions are positive"),
    (matcalc.diff, ("x", "x"), {"shapes": {"x": (1.5,)}},
     "shapes: x has a dimension 1.5; use a name or a positive integer"),
    (matcalc.diff, ("x", "x"), {"shapes": {"x": (True,)}},
     "shapes: x has a dimension True; use a name or a positive integer"),
    (matcalc.diff, ("x", "x"), {"shapes": {"x": ("1x",)}},
     "shapes: x has a dimension '1x' that is not a name or an integer"),
    (matcalc.diff, ("x", "x"), {"shapes": {"x y": ("n",)}}, "shapes: 'x y' is not a variable name"),
    (matcalc.evaluate, ("x + 1", None), {}, "values must be a dict of name -> number or array, not NoneType"),
    (matcalc.evaluate, ("x + 1", {"x": "abc"}), {}, "the value of x is not numeric: str"),
    (matcalc.evaluate, ("x + 1", {}), {}, "no value given for x"),
    (matcalc.evaluate, ("inv(X)", {"X": np.zeros((2, 2))}), {}, "inv: Singular matrix"),
]


@pytest.mark.parametrize("fn, args, kwargs, message", ARGUMENT_ERRORS,
                         ids=[f"{c[0].__name__}{c[1]!r}{c[2]!r}"[:60] for c in ARGUMENT_ERRORS])
def test_argument_error_message(fn, args, kwargs, message):
    assert str(error_of(fn, *args, **kwargs)) == message


# ----------------------------------------------------------------------------- the CLI
def run_cli(capsys, argv):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_parse_error_one_line_plus_the_caret(capsys):
    code, out, err = run_cli(capsys, ["diff", "X @@ w", "w"])
    assert code == 2 and out == ""
    assert err == ("error: unexpected '@' at column 4, expected '(' or '-' or a name or a number\n"
                   "       X @@ w\n"
                   "          ^\n")


def test_cli_unknown_function_suggests(capsys):
    code, out, err = run_cli(capsys, ["diff", "tarce(X)", "X"])
    assert code == 2 and out == ""
    assert err == "error: unknown function 'tarce'; did you mean tr?\n       tarce(X)\n       ^^^^^\n"


def test_cli_shape_error_is_one_line(capsys):
    code, out, err = run_cli(capsys, ["diff", "X @ w", "w", "--shape", "X=m,n", "--shape", "w=p"])
    assert code == 2 and out == ""
    assert err == "error: X @ w: X is m×n but w has p entries\n"


def test_cli_bad_wrt(capsys):
    code, out, err = run_cli(capsys, ["diff", "x", "1x"])
    assert code == 2 and out == ""
    assert err == "error: wrt must be a variable name like X or w, not '1x'\n"


def test_cli_bad_shape_option(capsys):
    code, out, err = run_cli(capsys, ["diff", "x", "x", "--shape", "x"])
    assert code == 2 and out == ""
    assert err == "error: --shape x: write NAME=DIMS, e.g. X=m,n or w=n or c= for a scalar\n"


def test_cli_three_axes(capsys):
    code, out, err = run_cli(capsys, ["diff", "x", "x", "--shape", "x=m,n,p"])
    assert code == 2 and out == ""
    assert err == "error: shapes: x has 3 axes; matcalc handles scalars, vectors and matrices\n"


def test_cli_message_has_no_traceback(capsys):
    code, out, err = run_cli(capsys, ["hessian", "x @ y", "x"])
    assert code == 2
    assert "Traceback" not in err and err.startswith("error: ") and err.count("\n") == 1


# ============================================================================= poor messages
# What matcalc should say; each is xfail(strict=True) until matcalc is fixed.

def xfail(reason):
    return pytest.mark.xfail(strict=True, reason=reason)


def test_multiline_error_gives_line_and_column():
    e = error_of(matcalc.parse, "x +\n  @ y")
    first = str(e).split("\n")[0]
    assert "line 2, column 3" in first
    src, start, _ = caret_under(str(e))
    assert src == "  @ y" and start == 2


def test_repeated_keyword_has_caret():
    expr = "sum(x, axis=0, axis=1)"
    e = error_of(matcalc.parse, expr)
    src, start, width = caret_under(str(e))
    assert src == expr and src[start:start + width] == "axis" and start == 15
    assert reported_column(str(e)) == 16


def test_positional_after_keyword_has_caret():
    expr = "sum(axis=0, x)"
    e = error_of(matcalc.parse, expr)
    src, start, width = caret_under(str(e))
    assert src == expr and src[start:start + width] == "x"


def test_unknown_keyword_caret_under_the_keyword():
    expr = "sum(x, bogus=1)"
    e = error_of(matcalc.parse, expr)
    src, start, width = caret_under(str(e))
    assert src[start:start + width] in ("bogus", "bogus=1")


def test_expected_tokens_are_possible():
    first = str(error_of(matcalc.parse, "a b")).split("\n")[0]
    assert "')'" not in first and "','" not in first


def test_transpose_suggests_dot_T():
    first = str(error_of(matcalc.parse, "transpose(X)")).split("\n")[0]
    assert ".T" in first and "tan?" not in first


SUGGESTIONS = [
    ("ReLU(x)", "relu"),          # no suggestion now: difflib is case-sensitive
    ("EXP(x)", "exp"),            # no suggestion now
    ("TR(X)", "tr"),              # no suggestion now
    ("tahn(x)", "tanh"),          # suggests tan now
    ("identity(n)", "eye"),       # suggests det now
    ("avg(x)", "mean"),           # suggests diag now
    ("inner(x, y)", "dot"),       # suggests sin now
]


@pytest.mark.parametrize("expr, want", SUGGESTIONS, ids=[s[0] for s in SUGGESTIONS])
def test_did_you_mean(expr, want):
    name = expr.split("(")[0]
    assert str(error_of(matcalc.parse, expr)).split("\n")[0] == f"unknown function '{name}'; did you mean {want}?"


@pytest.mark.parametrize("expr, bad", [("median(x)", "softmax"), ("x(1)", "exp"), ("outer(x, y)", "tr"),
                                       ("lse(x)", "step")])
def test_no_misleading_suggestion(expr, bad):
    assert f"did you mean {bad}?" not in str(error_of(matcalc.parse, expr))


def test_axis_without_value():
    assert "axis=0 or axis=1" in str(error_of(matcalc.parse, "sum(X, axis)"))


def test_overflowing_literal_is_a_parse_error():
    e = error_of(matcalc.parse, "1e999 * x")
    assert isinstance(e, matcalc.ParseError)
    src, start, width = caret_under(str(e))
    assert src[start:start + width] == "1e999"


def test_caret_under_tab():
    expr = "x\t@@y"
    src, start, width = caret_under(str(error_of(matcalc.parse, expr)))
    car = str(error_of(matcalc.parse, expr)).split("\n")[-1]
    # the caret, displayed with the same tab stops, must sit under the second '@'
    assert len(car.expandtabs()) - 1 == len(expr[:3].expandtabs())


@pytest.mark.parametrize("expr", ["x\x1b[2J + @", "x\x1b]0;pwned\x07 + @", "x\r@@ y"])
def test_message_has_no_control_characters(expr):
    msg = str(error_of(matcalc.parse, expr))
    assert all(ch == "\n" or ch.isprintable() for ch in msg), repr(msg)


def test_negative_dimension_as_text():
    assert str(error_of(matcalc.diff, "x", "x", shapes={"x": ("-1",)})) == \
        "shapes: x has a dimension -1; dimensions are positive"


def test_cli_negative_dimension(capsys):
    code, out, err = run_cli(capsys, ["diff", "x", "x", "--shape", "x=-1"])
    assert code == 2 and err == "error: shapes: x has a dimension -1; dimensions are positive\n"


def test_cli_conflicting_shapes(capsys):
    code, out, err = run_cli(capsys, ["diff", "x", "x", "--shape", "x=m", "--shape", "x=n"])
    assert code == 2 and "x=m" in err and "x=n" in err


def test_cli_bad_backprop_name(capsys):
    code, out, err = run_cli(capsys, ["diff", "X @ W", "W", "--backprop", "1G"])
    assert code == 2 and "'1G'" in err


def test_cli_negated_expression(capsys):
    code, out, err = run_cli(capsys, ["diff", "-x", "x"])
    assert code == 0, err


def test_hessian_of_a_vector_message():
    assert str(error_of(matcalc.hessian, "x", "x")) == \
        "hessian needs a scalar expression, but x has m entries; use diff for a Jacobian"


def test_hessian_message_is_short():
    expr = "(" * 5000 + "X" + ")" * 5000
    assert len(str(error_of(matcalc.hessian, expr, "X"))) < 300


@pytest.mark.parametrize("shapes, value, want", [
    (None, np.ones((3, 3)), "x has m entries but its value has shape (3, 3)"),
    ({"x": (4,)}, np.ones(3), "x has 4 entries but its value has shape (3,)"),
])
def test_value_shape_message(shapes, value, want):
    assert str(error_of(matcalc.evaluate, "x", {"x": value}, shapes=shapes)) == want


def test_none_value_message():
    assert str(error_of(matcalc.evaluate, "x + 1", {"x": None})) == "the value of x is not numeric: NoneType"


def test_complex_value_is_an_error():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        e = error_of(matcalc.evaluate, "x + 1", {"x": np.ones(3) * 1j})
    assert "complex" in str(e) and not str(e).startswith("internal error")


def test_wrt_axis():
    assert "axis" in str(error_of(matcalc.diff, "sum(x)", "axis"))
