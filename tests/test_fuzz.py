"""Hostile and malformed input: fuzzing, limits and no code execution.

The contract (API.md): every bad input raises a `matcalc.MatcalcError`; no other exception type
escapes the API, and the CLI answers bad input with a message on stderr and exit status 2, never a
traceback.  Here every call to `parse`, `diff`, `vjp`, `hessian`, `evaluate` and the CLI must end,
within CALL_SECONDS, in a result or a MatcalcError whose message is non-empty and does not start
with "internal error".  Every successful derivative's `.text` must be read back by `matcalc.parse`.

Example counts: MATCALC_FUZZ_EXAMPLES (default 300) examples for each of the five main fuzz tests
(random text, token soup, well-formed expressions, wrt, shapes), half that for values and a third for
the CLI and the matrixcalculus syntax: 1 850 examples by default.  The default run is derandomized (the same examples every time, so CI is reproducible); setting
MATCALC_FUZZ_EXAMPLES draws fresh random examples, e.g.

    MATCALC_FUZZ_EXAMPLES=2000 python -m pytest tests/test_fuzz.py

Known defects are tests of the behaviour matcalc should have, marked xfail(strict=True).
"""
from __future__ import annotations

import ast
import builtins
import contextlib
import inspect
import keyword
import os
import shutil
import signal
import string
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import matcalc
from matcalc import cli

FUZZ_EXAMPLES = int(os.environ.get("MATCALC_FUZZ_EXAMPLES", "300"))
RANDOM = "MATCALC_FUZZ_EXAMPLES" in os.environ
CALL_SECONDS = 5.0
PACKAGE_DIR = Path(matcalc.__file__).resolve().parent


def fuzz_settings(examples: int = FUZZ_EXAMPLES):
    return settings(max_examples=examples, deadline=None, derandomize=not RANDOM, database=None,
                    print_blob=RANDOM, suppress_health_check=list(HealthCheck))


# ============================================================================= the harness

class Hang(BaseException):
    """Raised by the per-call alarm.  A BaseException, so matcalc's catch-all cannot swallow it."""


class _Alarm:
    armed = False


@contextlib.contextmanager
def time_limit(seconds: float = CALL_SECONDS):
    """Raise Hang in the calling code after `seconds`.  The alarm repeats every 0.2 s: one raised
    where Python ignores exceptions (a weakref callback of the interned node table) comes back;
    and a call that still returns late counts as a hang."""
    def on_alarm(signum, frame):
        if _Alarm.armed:
            raise Hang()
    old = signal.signal(signal.SIGALRM, on_alarm)
    _Alarm.armed = True
    start = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.2)
    try:
        yield
    finally:
        _Alarm.armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    if time.monotonic() - start > seconds:
        raise Hang()


@contextlib.contextmanager
def memory_cap(extra_bytes: int = 3 << 30):
    """Cap the address space during a call (Linux), so a hostile size fails with MemoryError
    instead of swapping the machine: `evaluate` builds dense arrays."""
    try:
        import resource
        with open("/proc/self/statm") as f:
            size = int(f.read().split()[0]) * resource.getpagesize()
    except (ImportError, OSError):
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = size + extra_bytes
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _label(fn, args, kwargs) -> str:
    a = ", ".join([repr(x)[:120] for x in args] + [f"{k}={v!r}"[:120] for k, v in kwargs.items()])
    return f"{getattr(fn, '__qualname__', fn)}({a})"


def check_error(e: BaseException, label: str) -> None:
    """A MatcalcError's message must be meaningful."""
    assert isinstance(e, matcalc.MatcalcError) and isinstance(e, ValueError)
    msg = str(e)
    assert msg.strip(), f"{label} raised {type(e).__name__} with an empty message"
    assert not msg.lower().startswith("internal error"), f"{label}: {msg[:500]}"
    assert "Traceback" not in msg, f"{label}: {msg[:500]}"


def outcome(fn, *args, **kwargs):
    """(result, None) or (None, the MatcalcError); fails the test on a hang or any other exception."""
    label = _label(fn, args, kwargs)
    try:
        with time_limit(), memory_cap():
            return fn(*args, **kwargs), None
    except Hang:
        pytest.fail(f"hang: {label} did not finish within {CALL_SECONDS} s")
    except matcalc.MatcalcError as e:
        check_error(e, label)
        return None, e
    except (Exception, SystemExit) as e:  # noqa: BLE001 - this is what the test looks for
        pytest.fail(f"{label} raised {type(e).__name__}: {e}\n{traceback.format_exc()[-3000:]}")


def materialize(d):
    """The lazily computed parts of a Derivative: these must not fail either."""
    return d.text, d.latex, d.shape


def simple_shape(shape) -> bool:
    return all(isinstance(x, (int, str)) for x in shape)


def check_text_round_trip(d, label: str, strict_vars: bool = False):
    """`d.text` must parse back (with the shapes the derivative's variables have); with
    `strict_vars`, it may not name variables that neither the expression nor `upstream` has."""
    declared = {k: tuple(v) for k, v in d.parsed.var_shapes.items() if simple_shape(v)}
    if getattr(d, "upstream", None) and simple_shape(d.out_shape):
        declared[d.upstream] = tuple(d.out_shape)
    back, err = outcome(matcalc.parse, d.text, shapes=declared)
    assert err is None, f"{label} gave the text {short(d.text)}, which parse does not read back: {short(err)}"
    if strict_vars:
        known = set(d.parsed.var_shapes) | {getattr(d, "upstream", None)}
        new = {v for v in back.expr.vars if not v.startswith("d:")} - known
        assert not new, f"{label} gave the text {short(d.text)}, which names new variables {sorted(new)}"


def short(x, n: int = 300) -> str:
    r = repr(str(x))
    return r if len(r) <= n else r[:n] + f"... ({len(r)} characters)"


DIM_SIZES = {}


def dim_size(d) -> int | None:
    if isinstance(d, bool):
        return None
    if isinstance(d, int):
        return d if d <= 6 else None
    if isinstance(d, str):
        return DIM_SIZES.setdefault(d, 2 + sum(map(ord, d)) % 2)
    return None


def values_for(var_shapes: dict, seed: int = 0) -> dict | None:
    """Small random values of the given shapes, or None when a shape has no small concrete size."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in var_shapes.items():
        sizes = [dim_size(d) for d in shape]
        if any(s is None for s in sizes):
            return None
        out[name] = rng.standard_normal(sizes) if sizes else float(rng.standard_normal())
    return out


def exercise(expr, *, shapes=None, wrts=("x",), strict_vars=False, evaluate=True, **extra):
    """Every entry point on `expr`; returns the number of successful derivatives."""
    ok = 0
    parsed, _ = outcome(matcalc.parse, expr, shapes=shapes, **extra)
    if parsed is not None:
        assert isinstance(parsed.var_shapes, dict)
        repr(parsed)
        if evaluate:
            vals = values_for(parsed.var_shapes)
            if vals is not None:
                outcome(matcalc.evaluate, expr, vals, shapes=shapes, **extra)
    for wrt in wrts:
        for fn, kw in ((matcalc.diff, {}), (matcalc.vjp, {}), (matcalc.hessian, {}),
                       (matcalc.diff, {"layout": "denominator"})):
            d, _ = outcome(fn, expr, wrt, shapes=shapes, **kw, **extra)
            if d is None:
                continue
            ok += 1
            label = _label(fn, (expr, wrt), dict(shapes=shapes, **kw))
            outcome(materialize, d)
            check_text_round_trip(d, label, strict_vars=strict_vars)  # d.text is in matcalc's own syntax
            if evaluate and fn is not matcalc.hessian:
                var_shapes = dict(d.parsed.var_shapes)
                if d.upstream:
                    var_shapes[d.upstream] = d.out_shape
                vals = values_for(var_shapes, seed=1)
                if vals is not None:
                    outcome(d.evaluate, vals)
    return ok


# ============================================================================= alphabets

NAMES = ["x", "y", "w", "b", "z", "t1", "x_hat", "X", "Y", "W", "A", "W1", "G", "alpha", "beta", "lambda",
         "sigma", "T", "import", "class", "def", "None", "print", "eval", "exec", "os", "np", "where"]
NUMBERS = ["0", "1", "2", "3", "0.5", ".5", "2.", "1e-3", "1e308", "1e999", "10**10**10", "1e-400", "0.0"]
FUNCTIONS = sorted(["exp", "log", "sin", "cos", "tan", "tanh", "sigmoid", "relu", "abs", "sqrt", "softplus",
                    "sum", "mean", "tr", "det", "logdet", "inv", "norm", "dot", "diag", "softmax",
                    "logsumexp", "eye", "zeros", "ones", "arcsin", "arccos", "arctan", "sinh", "cosh", "arcsinh",
                    "log1p", "expm1", "sign", "step", "maximum", "minimum", "max", "min", "log_softmax"])


def grammar_literals() -> list[str]:
    """The literal tokens of the grammar itself (+ - @ * / ** .T ( ) , = ;) from the Lark parser."""
    try:
        from matcalc.grammar import _parser
        lits = [t.pattern.value for t in _parser().terminals if t.pattern.type == "str"]
    except Exception:  # noqa: BLE001 - internals may change; fall back to the documented tokens
        lits = []
    return sorted(set(lits) | {"+", "-", "@", "*", "/", "**", ".T", "(", ")", ",", "=", ";"})


TOKENS = (NAMES + NUMBERS + grammar_literals() + FUNCTIONS + [f + "(" for f in FUNCTIONS]
          + ["axis=", "axis=0", "axis=1", "axis=-1", "axis", " where ", "where t1 =", ".", "'", "[", "]",
             "__class__", "__import__", "\0", "é", "\t", "\n", "  "])

token_soup = st.lists(st.sampled_from(TOKENS), min_size=0, max_size=30).flatmap(
    lambda toks: st.lists(st.sampled_from(["", " ", ""]), min_size=len(toks), max_size=len(toks)).map(
        lambda seps: "".join(t + s for t, s in zip(toks, seps))))

random_text = st.one_of(st.text(max_size=60), st.text(alphabet=string.printable, max_size=60),
                        st.text(alphabet="xXyw+-*/@().T,=0123456789 e", max_size=60))

# well-formed expressions (shape errors allowed), moderate numbers only
LEAF_VARS = ["x", "y", "w", "b", "t1", "X", "Y", "W", "A", "alpha", "beta", "lambda", "import"]
LEAF_NUMS = ["0", "1", "2", "3", "0.5", "1e-3", "2.5", "10"]
UNARY = ["exp", "log", "sin", "cos", "tan", "tanh", "sigmoid", "relu", "abs", "sqrt", "softplus", "sum",
         "mean", "tr", "det", "logdet", "inv", "norm", "diag", "softmax", "logsumexp"]


def _binary(t):
    a, op, b, paren = t
    return f"({a} {op} {b})" if paren else f"{a} {op} {b}"


def _extend(children):
    return st.one_of(
        st.tuples(children, st.sampled_from(["+", "-", "*", "/", "@", "@", "**"]), children, st.booleans())
        .map(_binary),
        children.map(lambda c: f"-{c}"),
        children.map(lambda c: f"({c}).T"),
        st.tuples(st.sampled_from(UNARY), children).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(st.sampled_from(["sum", "softmax", "logsumexp"]), children, st.sampled_from(["0", "1"]))
        .map(lambda t: f"{t[0]}({t[1]}, axis={t[2]})"),
        st.tuples(children, children).map(lambda t: f"dot({t[0]}, {t[1]})"),
    )


leaf = st.one_of(st.sampled_from(LEAF_VARS), st.sampled_from(LEAF_NUMS),
                 st.sampled_from(["eye(n)", "ones(n)", "zeros(m, n)", "ones(2, 3)", "x.T", "X.T"]))
well_formed = st.recursive(leaf, _extend, max_leaves=8)
with_where = st.one_of(well_formed, st.tuples(well_formed, well_formed).map(lambda t: f"{t[0]} where u = {t[1]}"))

# wrt="axis" is a known defect (test_keyword_axis_as_wrt), left out here
hostile_wrt_text = st.one_of(
    st.sampled_from(["x", "y", "X", "alpha", "z", "Q", "1x", "", "x y", " x", "x ", "__class__", "_x", "lambda",
                     "import", "where", "T", "G", "len", "exp", "sum", "eye", "x\0", "é", "x-y", "x.T", "X@W"]),
    st.text(max_size=6).filter(lambda w: w != "axis"))
hostile_wrt = st.one_of(hostile_wrt_text, st.none(), st.integers(-3, 3), st.floats(allow_nan=True),
                        st.binary(max_size=3), st.just(["x"]), st.just(("x",)), st.just({"x": 1}))

dim = st.one_of(st.sampled_from(["m", "n", "p", " n ", "", "1x", "-1", "0", "3", "n,m", "m n", "__class__"]),
                st.integers(-2, 4), st.floats(allow_nan=True), st.booleans(), st.none(),
                st.just(()), st.just(("n",)), st.just(np.int64(3)))
shape_value = st.one_of(st.tuples(), st.tuples(dim), st.tuples(dim, dim), st.tuples(dim, dim, dim),
                        st.lists(dim, max_size=3), st.sampled_from(["m,n", "n", "", ",", "m,n,p", "-1"]),
                        st.integers(-1, 4), st.none(), st.just(object()), st.just({"m": 1}))
shape_key = st.one_of(st.sampled_from(["x", "y", "X", "W", "b", "alpha", "G", "exp", "axis", "where", "lambda"]),
                      st.sampled_from(["1x", "", "x y", "__class__", "x\0"]), st.integers(0, 2), st.none())
shapes_strategy = st.one_of(st.dictionaries(shape_key, shape_value, max_size=4),
                            st.sampled_from([[("x", ("n",))], "x=n", 3, ("x",)]))

SHAPE_EXPRS = ["X @ w + b", "x.T @ A @ x", "sum((X @ w - y) ** 2)", "tr(W)", "W @ x", "softmax(x)",
               "sum(X, axis=1) + b", "dot(x, y)", "inv(A) @ x", "alpha * x + y"]

# empty arrays are a known defect (test_empty_values), left out here
junk_value = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-10 ** 30, 10 ** 30), st.booleans(), st.none(),
    st.text(max_size=4), st.lists(st.floats(allow_nan=True), min_size=1, max_size=4),
    st.lists(st.lists(st.floats(-5, 5), min_size=2, max_size=2), min_size=1, max_size=3),
    st.sampled_from([np.ones(3), np.ones((3, 3)), np.ones((2, 3)), np.ones((2, 2, 2)),
                     np.ones(3) * 1j, np.array(["a", "b"]), np.array([1, None], dtype=object), np.eye(3),
                     np.full(3, np.nan), np.full((3, 3), np.inf), [[1, 2], [3]], {"a": 1}, object()]))


# ============================================================================= the fuzz tests

@fuzz_settings()
@given(text=random_text)
def test_fuzz_random_text(text):
    exercise(text, wrts=("x",))


@fuzz_settings()
@given(text=token_soup, wrt=st.sampled_from(["x", "X", "W", "alpha", "z"]))
def test_fuzz_token_soup(text, wrt):
    exercise(text, wrts=(wrt,))


@fuzz_settings()
@given(expr=with_where, wrt=st.sampled_from(LEAF_VARS + ["z", "Q", "gamma"]))
def test_fuzz_well_formed_expressions(expr, wrt):
    """Grammatical expressions (random shapes may not fit): results must read back and name no
    variable the expression does not have."""
    exercise(expr, wrts=(wrt,), strict_vars=True)


@fuzz_settings()
@given(expr=st.sampled_from(["sum((X @ w - y) ** 2)", "X @ W + b", "x", "tanh(X @ W)", "x.T @ A @ x",
                             "alpha * x"]), wrt=hostile_wrt)
def test_fuzz_wrt(expr, wrt):
    for fn in (matcalc.diff, matcalc.vjp, matcalc.hessian):
        d, err = outcome(fn, expr, wrt)
        if d is not None:
            outcome(materialize, d)
            check_text_round_trip(d, _label(fn, (expr, wrt), {}))
    if not (isinstance(wrt, str) and wrt.isidentifier() and wrt[0].isalpha() and wrt.isascii()):
        assert outcome(matcalc.diff, expr, wrt)[1] is not None, f"wrt={wrt!r} was accepted"
    outcome(matcalc.vjp, expr, "x", upstream=wrt)


@fuzz_settings()
@given(expr=st.sampled_from(SHAPE_EXPRS), shapes=shapes_strategy)
def test_fuzz_shapes(expr, shapes):
    exercise(expr, shapes=shapes, wrts=("x", "W"))


@fuzz_settings(max(FUZZ_EXAMPLES // 2, 50))
@given(expr=st.sampled_from(SHAPE_EXPRS + ["x + 1", "sum(x)", "inv(A)", "logdet(A)"]),
       values=st.one_of(st.dictionaries(st.sampled_from(["x", "y", "w", "b", "X", "W", "A", "alpha", 1]),
                                        junk_value, max_size=6), junk_value))
def test_fuzz_values(expr, values):
    outcome(matcalc.evaluate, expr, values)
    d, _ = outcome(matcalc.diff, expr, "x")
    if d is not None:
        outcome(d.evaluate, values)


def _cli_check(code, out, err, argv):
    assert code in (0, 2), (argv, code, err)
    assert "Traceback" not in err and "Traceback" not in out, (argv, err)
    assert "internal error" not in err, (argv, err)
    if code == 0:
        assert out.strip(), argv
    else:
        assert err.startswith("error: ") or err.startswith("usage: "), (argv, err)
        if err.startswith("error: "):
            lines = err.rstrip("\n").split("\n")
            assert lines[0][len("error: "):].strip(), (argv, err)
            assert len(lines) <= 3, (argv, err)  # the message, then the source line and the caret
            assert all(line.startswith("       ") for line in lines[1:]), (argv, err)


@fuzz_settings(max(FUZZ_EXAMPLES // 3, 50))
@given(expr=st.one_of(token_soup, random_text, with_where), wrt=hostile_wrt_text,
       command=st.sampled_from(["diff", "vjp", "hessian"]),
       options=st.lists(st.sampled_from([["--format", "text"], ["--format", "latex"], ["--shape", "X=m,n"],
                                         ["--shape", "w=n"], ["--shape", "x=-1"], ["--shape", "x"],
                                         ["--shape", "c="], ["--shape", "1x=n"], ["--shape", "x=m,n,p"],
                                         ["--layout", "denominator"], ["--layout", "bogus"]]), max_size=3),
       separator=st.booleans())
def test_fuzz_cli_in_process(capsys, expr, wrt, command, options, separator):
    assume(expr != "-")  # "-" reads stdin, which pytest closes
    argv = [command] + [o for opt in options for o in opt
                        if command == "diff" or opt[0] != "--layout"] + (["--"] if separator else []) + [expr, wrt]
    try:
        with time_limit(), memory_cap():
            code = cli.main(argv)
    except Hang:
        pytest.fail(f"hang: matcalc {argv!r}")
    out, err = capsys.readouterr()
    _cli_check(code, out, err, argv)


def _has_syntax_option() -> bool:
    return "syntax" in inspect.signature(matcalc.parse).parameters


MC_TOKENS = NAMES[:12] + NUMBERS + ["+", "-", "*", ".*", "./", "/", "^", ".^", "'", "(", ")", ",", "="] + FUNCTIONS


@pytest.mark.skipif(not _has_syntax_option(), reason="no syntax= option")
@fuzz_settings(max(FUZZ_EXAMPLES // 3, 50))
@given(text=st.lists(st.sampled_from(MC_TOKENS), max_size=25).map(" ".join))
def test_fuzz_matrixcalculus_syntax(text):
    exercise(text, wrts=("x",), syntax="matrixcalculus")


# ============================================================================= limits

LONG_AND_DEEP = {
    "x+ * 50000 (100 000 chars)": "x+" * 50000,
    "x+ * 49999 + x": "x+" * 49999 + "x",
    "100 001 chars": "x" * 100001,
    "10 000 parentheses": "(" * 10000 + "x" + ")" * 10000,
    "10 000 open parentheses": "(" * 10000 + "x",
    "10 000 close parentheses": "x" + ")" * 10000,
    "10 000 .T": "x" + ".T" * 10000,
    "10 000 unary minus": "-" * 10000 + "x",
    "10 000 unary plus": "+" * 10000 + "x",
    "10 000 nested exp": "exp(" * 10000 + "x" + ")" * 10000,
    "10 000 nested sum": "sum(" * 10000 + "x" + ")" * 10000,
    "10 000 ** chain": "**".join(["x"] * 10000),
    "10 000 @ chain": "@".join(["X"] * 10000),
    "400 .T": "x" + ".T" * 399,
    "300 nested tanh": "sum(" + "tanh(" * 300 + "x" + ")" * 300 + ")",
    "balanced sum of 8192 x": None,  # built below
    "300 x in one product": "sum(" + "*".join(["x"] * 300) + ")",
    "5000-digit number": "1" * 5000 + " * x",
    "99 990-digit number": "1" * 99990 + "*x",
    "long name": "x" * 99999,  # refused: over LIMITS['max_name_length'] (below)
    "many where bindings": "t0 " + "where " + "; ".join(f"t{i} = t{i + 1} + x" for i in range(2000)) + "; t2000 = x",
}


def _balanced(leaves, op="+"):
    while len(leaves) > 1:
        leaves = [f"({leaves[i]}{op}{leaves[i + 1]})" if i + 1 < len(leaves) else leaves[i]
                  for i in range(0, len(leaves), 2)]
    return leaves[0]


LONG_AND_DEEP["balanced sum of 8192 x"] = _balanced(["x"] * 8192)


@pytest.mark.parametrize("expr", list(LONG_AND_DEEP.values()), ids=list(LONG_AND_DEEP))
def test_long_and_deep_input(expr):
    exercise(expr, wrts=("x",), evaluate=False)


def test_over_the_length_limit_is_refused_before_parsing():
    t0 = time.perf_counter()
    _, err = outcome(matcalc.parse, "(" * 60000 + "x" + ")" * 60000)
    assert isinstance(err, matcalc.ParseError) and "limit" in str(err)
    assert time.perf_counter() - t0 < 1.0


def test_a_name_over_the_limit_is_refused():
    """A name longer than LIMITS['max_name_length'] (256) is refused wherever it comes in: a text
    naming it (`zeros(len(xxx…), len(x))`) could not fit in max_length and parse back."""
    limit = matcalc.grammar.LIMITS["max_name_length"]
    long = "x" * (limit + 1)
    for fn, args, kw in ((matcalc.parse, ("x" * 99999,), {}), (matcalc.parse, (f"sum({long}) * y",), {}),
                         (matcalc.diff, ("sum(x)", long), {}),
                         (matcalc.parse, ("x",), {"shapes": {long: ("n",)}}),
                         (matcalc.parse, ("x",), {"shapes": {"x": (long,)}})):
        _, err = outcome(fn, *args, **kw)
        assert isinstance(err, matcalc.ParseError) and "max_name_length" in str(err), (fn, kw, err)
    name = "x" * limit
    d = matcalc.diff(f"sum({name} * y)", "y")
    check_text_round_trip(d, "a name at the limit")
    _, err = outcome(matcalc.parse, "1e" + "9" * 400 + " * x")  # an exponent is no name
    assert "max_name_length" not in str(err)


HUGE_NUMBERS = ["1e308", "1e308 * x", "1e999", "1e999 * x", "10**10**10", "x ** 10**10**10", "10**10**10**10 * x",
                "9**9**9**9", "1e308 * 1e308 * x", "x ** 1e308", "exp(1e308) * x", "2 ** -1e999 * x",
                "sum(x ** 1e999)", "1e-400 * x", "x / 0", "0 / 0 * x", "x ** -1e308", "0 ** -1 * x",
                "eye(1e308)", "eye(1000000000) @ x",
                "ones(999999999, 999999999)", "zeros(10*10*10*10*10*10*10*10*10*10)",
                "sum(ones(1000000000))", "tr(eye(1000000000))", "sum(commutation(200, 200))"]


@pytest.mark.parametrize("expr", HUGE_NUMBERS)
def test_huge_numbers(expr):
    exercise(expr, wrts=("x",))
    outcome(matcalc.evaluate, expr, {"x": np.ones(3)})


UNICODE = ["x\0", "\0", "\0" * 1000, "x\0+y", "é", "x + é", "ｘ", "x\u202e+y", "x\u200b", "α * x", "∑(x)",
           "x\ud800", "x\udcff", "\ufeffx", "x\u00a0+ y", "x\u2028+y", "💥", "x" + "\u0301" * 100, "x\x1b[2J",
           "x\x7f", "x\r\n+ y", "x\x0b+y", "x\x0c+y", "\t\n x \t\n"]


@pytest.mark.parametrize("expr", UNICODE, ids=[repr(u)[:30] for u in UNICODE])
def test_unicode_and_control_characters(expr):
    exercise(expr, wrts=("x",))


KEYWORD_NAMES = sorted(set(keyword.kwlist) | {"print", "eval", "exec", "open", "os", "sys", "np", "self", "type",
                                              "object", "globals", "locals", "compile", "getattr", "where",
                                              "axis", "T"})


@pytest.mark.parametrize("name", KEYWORD_NAMES)
def test_python_keywords_and_builtins_as_names(name):
    exercise(f"sum({name} * x) + {name}", wrts=("x", name), evaluate=True)
    exercise(f"x where {name} = x", wrts=("x",))
    outcome(matcalc.diff, "sum(x)", "x", shapes={name: ("n",)})


@pytest.mark.parametrize("expr", ["__class__", "__import__", "x.__class__", "__class__(x)", "x.__dict__",
                                  "_x", "x._T", "x.__T__", "x.T.__class__", "X.T.T.__len__", "__builtins__",
                                  "x where __x = 1"])
def test_dunder_names(expr):
    for fn in (matcalc.parse, ):
        _, err = outcome(fn, expr)
        assert isinstance(err, matcalc.ParseError), expr
    exercise(expr, wrts=("x", "__class__"))


def test_the_same_variable_many_times():
    assert exercise("+".join(["x"] * 300), wrts=("x",)) > 0
    d, _ = outcome(matcalc.diff, "+".join(["x"] * 300), "x")
    assert d.evaluate({"x": np.ones(3)}).tolist() == (300 * np.eye(3)).tolist()
    d, _ = outcome(matcalc.diff, _balanced(["x"] * 8192), "x")
    assert np.array_equal(d.evaluate({"x": np.ones(2)}), 8192 * np.eye(2))
    d, _ = outcome(matcalc.diff, "sum(" + "*".join(["x"] * 300) + ")", "x")
    assert d is not None
    outcome(materialize, d)


# ----------------------------------------------------------------------------- wrt absent
ABSENT = [  # expression, wrt, shapes, values, expected array shape of d.evaluate (mixed layout)
    ("sum((X @ w - y) ** 2)", "v", {"v": (4,)}, {"X": np.ones((3, 2)), "w": np.ones(2), "y": np.ones(3),
                                                   "v": np.ones(4)}, (4,)),
    ("X @ w", "v", {"v": (4,)}, {"X": np.ones((3, 2)), "w": np.ones(2), "v": np.ones(4)}, (3, 4)),
    ("X @ W", "B", {"B": (2, 5)}, {"X": np.ones((3, 2)), "W": np.ones((2, 4)), "B": np.ones((2, 5))},
     (3, 4, 2, 5)),
    ("sum(x)", "alpha", None, {"x": np.ones(3), "alpha": 2.0}, ()),
    ("x", "alpha", None, {"x": np.ones(3), "alpha": 2.0}, (3,)),
    ("tr(A)", "Z", {"Z": (2, 3)}, {"A": np.eye(3), "Z": np.ones((2, 3))}, (2, 3)),
]


@pytest.mark.parametrize("expr, wrt, shapes, values, want", ABSENT, ids=[f"d({a[0]})/d{a[1]}" for a in ABSENT])
def test_wrt_absent_is_zero_of_the_right_shape(expr, wrt, shapes, values, want):
    d, err = outcome(matcalc.diff, expr, wrt, shapes=shapes)
    assert err is None, f"d({expr})/d{wrt} should be zero, not an error: {err}"
    outcome(materialize, d)
    assert "zeros" in d.text or d.text.strip() == "0", d.text
    check_text_round_trip(d, expr, strict_vars=True)
    v = d.evaluate(values)
    assert v.shape == want and not v.any()
    g, err = outcome(matcalc.vjp, expr, wrt, shapes=shapes)
    assert err is None
    gv = g.evaluate({**values, "G": np.ones(np.shape(matcalc.evaluate(expr, values)))})
    assert gv.shape == np.shape(values[wrt]) and not gv.any()


def test_hessian_by_an_absent_variable_is_zero():
    d, err = outcome(matcalc.hessian, "sum(x ** 3)", "v", shapes={"v": (4,)})
    assert err is None
    v = d.evaluate({"x": np.ones(3), "v": np.ones(4)})
    assert v.shape == (4, 4) and not v.any()


@pytest.mark.parametrize("wrt", ["1x", "", None, "x y", " x", "x\0", "é", "__class__", "x.T", 1, b"x", ["x"]])
def test_invalid_wrt_is_an_error(wrt):
    for fn in (matcalc.diff, matcalc.vjp, matcalc.hessian):
        _, err = outcome(fn, "sum(x)", wrt)
        assert err is not None, f"{fn.__name__}(..., wrt={wrt!r}) was accepted"


MALFORMED_SHAPES = [
    [("x", ("n",))], "x=n", 3, {"x": ("m", "n", "p")}, {"x": (-1,)}, {"x": (0,)}, {"x": ("-1",)},
    {"x": (1.5,)}, {"x": (True,)}, {"x": (None,)}, {"x": ("",)}, {"x": ("1x",)}, {"x": object()},
    {1: ("n",)}, {None: ("n",)}, {"x y": ("n",)}, {"__class__": ("n",)}, {"x": ("n", ("m",))},
    {"x": ("n",), "X": ("n",)},  # X declared a vector, used as a matrix
    {"X": ("m", "n"), "w": ("p",)},  # conflicting: X @ w
    {"x": (3,), "X": (4, 4)},  # conflicting concrete sizes
    {"x": ("m", "n")},  # a vector name declared a matrix
    {"X": ()},  # a matrix name declared a scalar
]


@pytest.mark.parametrize("shapes", MALFORMED_SHAPES, ids=[repr(s)[:40] for s in MALFORMED_SHAPES])
def test_malformed_and_conflicting_shapes(shapes):
    exercise("sum(X @ x)", shapes=shapes, wrts=("x", "X"))
    if shapes in ({"x": ("m", "n", "p")}, {"x": (-1,)}, {"x": (0,)}, [("x", ("n",))], {"x y": ("n",)},
                  {"X": ("m", "n"), "w": ("p",)}, {"x": (3,), "X": (4, 4)}):
        expr = "X @ w" if "w" in shapes else "sum(X @ x)"
        assert outcome(matcalc.diff, expr, "x", shapes=shapes)[1] is not None, shapes


# ============================================================================= the real command

def matcalc_command() -> list[str]:
    exe = shutil.which("matcalc")
    return [exe] if exe else [sys.executable, "-m", "matcalc.cli"]


SUBPROCESS_CASES = [  # argv after `matcalc`, stdin, expected status
    (["diff", "X @@ w", "w"], None, 2),
    (["diff", "x @ y", "y"], None, 2),
    (["diff", "tarce(X)", "X"], None, 2),
    (["diff", "x", "1x"], None, 2),
    (["diff", "(" * 10000 + "x" + ")" * 10000, "x", "--format", "text"], None, 0),
    (["diff", "x" + ".T" * 10000, "x"], None, 2),
    (["diff", "-", "x"], "x+" * 50000, 2),
    (["diff", "-", "x"], "x\0 + y", 2),
    (["hessian", "__import__('os').system('touch /tmp/matcalc_pwned')", "x"], None, 2),
    (["diff", "X@W+b", "W"], None, 0),
]


@pytest.mark.parametrize("argv, stdin, status", SUBPROCESS_CASES, ids=[repr(c[0])[:50] for c in SUBPROCESS_CASES])
def test_real_command(argv, stdin, status):
    p = subprocess.run(matcalc_command() + argv, input=stdin, capture_output=True, text=True, timeout=60,
                       errors="backslashreplace")
    assert "Traceback" not in p.stderr and "internal error" not in p.stderr, p.stderr
    assert p.returncode == status, p.stderr
    if status == 2:
        assert p.stderr.startswith("error: ") and p.stdout == ""
        assert len(p.stderr.rstrip("\n").split("\n")) <= 3
    else:
        assert p.stdout.strip()


def test_real_command_closed_stdout():
    r, w = os.pipe()
    os.close(r)
    expr = "sum(" + "+".join(f"tanh(x*{i})" for i in range(300)) + ")"
    try:
        p = subprocess.run(matcalc_command() + ["diff", expr, "x"], stdout=w, stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(w)
    assert b"internal error" not in p.stderr and b"Traceback" not in p.stderr, p.stderr


# ============================================================================= no code execution

SENTINEL = Path("/tmp/matcalc_pwned")
PAYLOADS = [
    "__import__('os').system('touch {p}')",
    "getattr(__import__('os'), 'system')('touch {p}')",
    "eval(\"__import__('os').system('touch {p}')\")",
    "exec('import os; os.system(\"touch {p}\")')",
    "(lambda: __import__('os').system('touch {p}'))()",
    "lambda: open('{p}', 'w')",
    "open('{p}', 'w')",
    "x.__class__.__mro__[1].__subclasses__()",
    "().__class__.__bases__[0].__subclasses__()",
    "x.__init__.__globals__['os'].system('touch {p}')",
    "import os; os.system('touch {p}')",
    "sum(x, axis=__import__('os').system('touch {p}'))",
    "x where x = __import__('os')",
    "system(touch)",
    "eval(x)", "exec(x)", "compile(x)", "getattr(x, T)", "globals()", "open(x)", "breakpoint()",
    "{{'a': 1}}", "[x for x in ()]", "f'{{x}}'",
]


@pytest.fixture
def sentinels(tmp_path):
    paths = [SENTINEL, tmp_path / "pwned"]
    with contextlib.suppress(FileNotFoundError):
        SENTINEL.unlink()
    yield paths
    for p in paths:
        assert not p.exists(), f"{p} was created: matcalc executed input"


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payload_is_not_executed(payload, sentinels, capsys):
    for path in sentinels:
        expr = payload.format(p=path)
        for fn, args in ((matcalc.parse, ()), (matcalc.diff, ("x",)), (matcalc.vjp, ("x",)),
                         (matcalc.hessian, ("x",)), (matcalc.evaluate, ({"x": np.ones(2)},))):
            _, err = outcome(fn, expr, *args)
            if payload.startswith(("eval(x)", "exec(x)", "compile(x)", "getattr(x, T)", "open(x)")):
                assert isinstance(err, matcalc.ParseError) and "unknown function" in str(err), (expr, err)
            else:
                assert err is not None, f"{fn.__name__} accepted {expr!r}"
        # as every other argument, too
        outcome(matcalc.diff, "sum(x)", expr)
        outcome(matcalc.vjp, "x", "x", upstream=expr)
        outcome(matcalc.diff, "sum(x)", "x", shapes={"x": (expr,)})
        outcome(matcalc.diff, "sum(x)", "x", shapes={expr: ("n",)})
        outcome(matcalc.evaluate, "x", {expr: 1.0, "x": 1.0})
        for argv in (["diff", expr, "x"], ["diff", "x", expr], ["vjp", "x", "x", "--upstream", expr],
                     ["diff", "x", "x", "--shape", f"x={expr}"]):
            with time_limit():
                code = cli.main(argv)
            out, err = capsys.readouterr()
            assert code == 2 and "Traceback" not in err, (argv, err)


def _internal_names() -> set[str]:
    from matcalc import build, shapes, simplify
    names = set(dir(builtins)) | set(dir(np)) | set(dir(simplify)) | set(dir(shapes.Typer)) | \
        set(dir(build)) | set(dir(os)) | set(dir(matcalc))
    for cls_name in ("_Builder",):
        names |= set(dir(getattr(build, cls_name, object)))
    return {n for n in names if n[:1].isalpha() and n.isascii() and n.replace("_", "a").isalnum()}


def test_only_whitelisted_names_are_callable():
    """Calling anything but a matcalc function (a Python builtin, a numpy function, a method of
    matcalc's own classes) is an unknown function: names from the input never reach getattr."""
    from matcalc.shapes import FUNCTIONS as KNOWN
    for name in sorted(_internal_names() - set(KNOWN)):
        _, err = outcome(matcalc.parse, f"{name}(x)")
        assert isinstance(err, matcalc.ParseError) and "unknown function" in str(err), (name, err)


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            yield name, node


#: calls that run code or commands; (file, call) pairs allowed after review
DANGEROUS = {"eval", "exec", "compile", "__import__", "import_module", "system", "popen", "Popen", "spawn",
             "check_output", "check_call", "getoutput", "sympify", "lambdify", "parse_expr_sympy", "execfile",
             "load", "loads"}
REVIEWED = {
    ("codegen.py", "exec"), ("codegen.py", "compile"),  # Derivative.compile(): runs matcalc's own generated source
    ("exact.py", "sympify"),  # applied to sympy objects built by interpret(), not to text
    # the generated parser: `loads` unpickles the tables embedded in the file itself; lark's
    # runtime has `pickle.load` on a file or its cache=, paths matcalc never takes (it loads from
    # those tables with `load(syntax)`)
    ("standalone_parser.py", "loads"), ("standalone_parser.py", "load"),
}


def test_source_never_evaluates_text():
    found = []
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for name, node in _calls(tree):
            if name in DANGEROUS and (path.name, name) not in REVIEWED:
                if name in ("load", "loads") and not (isinstance(node.func, ast.Attribute) and
                                                      getattr(node.func.value, "id", "") in ("pickle", "marshal")):
                    continue
                if name == "compile" and isinstance(node.func, ast.Attribute):
                    continue  # re.compile and the like
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)[:100]}")
            elif name in ("run", "call", "getstatusoutput") and isinstance(node.func, ast.Attribute) and \
                    getattr(node.func.value, "id", "") in ("subprocess", "os"):
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)[:100]}")
    assert not found, "the package calls code-executing functions:\n" + "\n".join(found)


def test_getattr_is_never_given_input_text():
    found = []
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        if path.name == "standalone_parser.py":  # lark's runtime, generated: it looks up the grammar's
            continue                             # rule and terminal names (tree.data, token.type), never text
        tree = ast.parse(path.read_text(), filename=str(path))
        for name, node in _calls(tree):
            if name in ("getattr", "setattr", "delattr", "hasattr") and isinstance(node.func, ast.Name):
                attr = node.args[1] if len(node.args) > 1 else None
                literal = isinstance(attr, ast.Constant) or (
                    isinstance(attr, ast.BinOp) and isinstance(attr.left, ast.Constant)
                    and isinstance(attr.left.value, str) and attr.left.value)
                if not literal:
                    found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    assert not found, "getattr with a computed attribute name:\n" + "\n".join(found)


def _has_compile() -> bool:
    return hasattr(matcalc.Derivative, "compile")


@pytest.mark.skipif(not _has_compile(), reason="no Derivative.compile")
def test_generated_code_with_hostile_names(sentinels):
    names = [n for n in KEYWORD_NAMES if n not in ("where", "axis", "T", "np")]
    expr = "sum(" + " + ".join(f"{n} * x" for n in names) + ")"
    shapes = {n: () for n in names}
    d, err = outcome(matcalc.diff, expr, "x", shapes=shapes)
    assert err is None, err
    f, err = outcome(d.compile)
    assert err is None, err
    vals = {n: 1.0 for n in names}
    vals["x"] = np.ones(3)
    with time_limit():
        got = f(vals)
    assert np.allclose(got, d.evaluate(vals))
    # dimension names that are Python names
    d, _ = outcome(matcalc.diff, "sum(X @ x)", "X", shapes={"X": ("os", "np"), "x": ("np",)})
    f, err = outcome(d.compile)
    assert err is None, err
    with time_limit():
        assert np.allclose(f({"X": np.ones((2, 3)), "x": np.ones(3)}), np.outer(np.ones(2), np.ones(3)))


@pytest.mark.skipif(not _has_compile(), reason="no Derivative.compile")
def test_generated_code_renaming_does_not_collide():
    d = matcalc.diff("sum(np * x + np_ * x)", "x", shapes={"np": (), "np_": ()})
    f, err = outcome(d.compile)
    assert err is None, err
    vals = {"np": 1.0, "np_": 2.0, "x": np.ones(3)}
    assert np.allclose(f(vals), d.evaluate(vals))


# Constants the language can make infinite or undefined (1/0, 0/0, log(0), ...): the generated
# source must be valid Python (repr gives 'inf', no Python name: found by this fuzzer, fixed) and
# compute what d.evaluate does.  A finite number that overflows (1e308 * 1e308) is refused instead.
NON_FINITE = ["(1/0) * x", "x / 0", "-(1/0) * x + x", "(0/0) * x", "x * (x + 0/0)", "0 * (1/0) * x", "log(0) * x",
              "sqrt(-1) * x * x", "x ** (1/0)", "x ** (-1/0)", "exp(x) / (1/0 - 1/0)", "sum(x * (1/0)) * x"]


@pytest.mark.skipif(not _has_compile(), reason="no Derivative.compile")
@pytest.mark.parametrize("expr", NON_FINITE)
def test_generated_code_with_infinite_constant(expr):
    d = matcalc.diff(expr, "x")
    f, err = outcome(d.compile)
    assert err is None, err
    vals = {"x": np.array([0.5, 2.0])}
    with np.errstate(all="ignore"):
        got = f(vals)
    assert np.array_equal(got, d.evaluate(vals), equal_nan=True), f"{expr}: {got} != {d.evaluate(vals)}"
    assert not np.isfinite(d.evaluate(vals)).all(), f"{expr}: the derivative should keep its inf or nan"


def test_overflowing_product_of_constants_is_refused():
    with pytest.raises(matcalc.MatcalcError, match="overflows"):
        matcalc.diff("1e308 * 1e308 * x", "x")


@pytest.mark.skipif(not _has_compile(), reason="no Derivative.compile")
def test_generated_code_missing_value():
    f = matcalc.diff("X @ x", "x").compile()
    with pytest.raises(matcalc.MatcalcError, match="no value given for X"):
        f({"x": np.ones(2)})


# ============================================================================= known defects

@pytest.mark.parametrize("wrt", ["exp", "sum", "eye", "tr"])
def test_function_name_as_wrt(wrt):
    """Function names may be variables: by one the expression does not have, the derivative is zero."""
    d, err = outcome(matcalc.diff, "sum((X @ w - y) ** 2)", wrt)
    assert err is None, err
    check_text_round_trip(d, f"diff(..., {wrt!r})", strict_vars=True)
    d, err = outcome(matcalc.diff, f"sum({wrt} * {wrt})", wrt)
    assert err is None, err
    check_text_round_trip(d, f"diff('sum({wrt} * {wrt})', {wrt!r})", strict_vars=True)


def test_keyword_axis_as_wrt():
    d, err = outcome(matcalc.diff, "sum((X @ w - y) ** 2)", "axis")
    if err is None:
        check_text_round_trip(d, "diff(..., 'axis')")


def test_declared_big_dimension_reads_back():
    d, err = outcome(matcalc.diff, "X @ w + b", "x", shapes={"x": (10 ** 30,)})
    if err is None:
        check_text_round_trip(d, "diff('X @ w + b', 'x', shapes={'x': (10**30,)})")


@pytest.mark.parametrize("expr", ["softmax(x)", "logsumexp(x)", "softmax(X, axis=1)"])
def test_empty_values(expr):
    values = {"x": np.array([]), "X": np.zeros((0, 0))}
    outcome(matcalc.evaluate, expr, values)
    d, _ = outcome(matcalc.diff, expr, "x" if "x" in expr else "X")
    outcome(d.evaluate, values)


@pytest.mark.parametrize("fn, expr", [(matcalc.diff, "sum(softmax(x.T, axis=1))"),
                                      (matcalc.diff, "softmax(x.T, axis=1).T"),
                                      (matcalc.vjp, "softmax(x.T, axis=1)"),
                                      (matcalc.vjp, "logsumexp(x.T, axis=1)"),
                                      (matcalc.vjp, "softmax(x.T, axis=0)")],
                         ids=["diff sum(softmax(x.T, axis=1))", "diff softmax(x.T, axis=1).T",
                              "vjp softmax(x.T, axis=1)", "vjp logsumexp(x.T, axis=1)", "vjp softmax(x.T, axis=0)"])
def test_row_vector_softmax(fn, expr):
    d, err = outcome(fn, expr, "x")
    if d is not None:
        check_text_round_trip(d, f"{fn.__name__}({expr!r}, 'x')", strict_vars=True)


# found by this fuzzer (fixed): a unit factor in a product dimension, 1·n, did not unify with n
# (softmax(x.T, axis=0) also found it; softmax of a row vector with axis= is now a ShapeError by design)
@pytest.mark.parametrize("expr, shapes", [("(-X + x * x).T", {"X": ("m", "n"), "x": ("n",)})],
                         ids=["(-X + x * x).T"])
def test_kron_with_a_unit_factor_reads_back(expr, shapes):
    d, err = outcome(matcalc.diff, expr, "x", shapes=shapes)
    assert err is None
    check_text_round_trip(d, f"diff({expr!r}, 'x')", strict_vars=True)


def test_unit_factor_in_product_dimension():
    _, err = outcome(matcalc.parse, "kron(ones(m), eye(n)) @ diag(x)", shapes={"x": ("n",)})
    assert err is None, err


def test_vjp_of_a_broadcast_one_entry_vector():
    d, err = outcome(matcalc.vjp, "(X + x).T", "x", shapes={"x": (1,)})
    check_text_round_trip(d, "vjp('(X + x).T', 'x')", strict_vars=True)


# found by this fuzzer (fixed): the transpose was pushed through the shared graph as a tree
# (exponential: 10 levels ~4-11 s, 12 levels > 20 s); now memoised per node
def test_hessian_of_nested_softmax_finishes():
    expr = "sum(" + "softmax(" * 12 + "x" + ")" * 12 + ")"
    try:
        with time_limit(CALL_SECONDS):
            matcalc.hessian(expr, "x").text
    except Hang:
        pytest.fail(f"hessian({expr!r}, 'x') did not finish within {CALL_SECONDS} s")


def test_flat_sum_of_1000_terms():
    expr = "+".join(["x"] * 1000)
    d, err = outcome(matcalc.diff, expr, "x")
    assert err is None, err
    assert np.array_equal(d.evaluate({"x": np.ones(2)}), 1000 * np.eye(2))


OVERFLOWING = ["1e999 * x", "1e308 * 1e308 * x", "(1e999 - 1e999) * x", "sum(x ** 1e999)"]


@pytest.mark.parametrize("expr", OVERFLOWING)
def test_overflowing_constants_keep_their_meaning(expr):
    d, err = outcome(matcalc.diff, expr, "x")
    if err is not None:
        return  # refusing the number is a fine answer
    check_text_round_trip(d, expr, strict_vars=True)


# found by this fuzzer (fixed): 0/0 was folded away (evaluate('0/0 * x') was 0, evaluate('0/0 + x')
# was x); constants now fold in IEEE arithmetic and a nan or inf constant is never dropped
@pytest.mark.parametrize("expr", ["0/0 * x", "0/0 + x", "0 * (1/0) * x", "(1/0 - 1/0) * x"])
def test_undefined_constants_are_not_folded_to_numbers(expr):
    v, err = outcome(matcalc.evaluate, expr, {"x": np.ones(2)})
    assert err is not None or np.isnan(v).all(), f"evaluate({expr!r}) = {v}"


# ============================================================================= hostile families (issue 12)
# Each ends, within CALL_SECONDS per call, in a result or a clear MatcalcError; no RecursionError,
# no internal error; on the command line one line of error and exit status 2.

def _where_chain(k: int, op: str = "@") -> str:
    return f"sum(t{k}) where t1 = X{op}X; " + "; ".join(f"t{i} = t{i - 1}{op}t{i - 1}" for i in range(2, k + 1))


def _mlp(layers: int) -> str:
    e = "X @ W1"
    for i in range(2, layers + 1):
        e = f"tanh({e}) @ W{i}"
    return f"sum(({e} - Y) ** 2)"


HOSTILE = {
    "where chain doubling a product, 24 bindings (391 chars)": _where_chain(24),
    "where chain doubling a sum, 24 bindings": _where_chain(24, "+"),
    "where chain doubling an element-wise product": _where_chain(24, "*"),
    "flat sum of 5 000 distinct terms": "+".join(f"x{i}" for i in range(5000)),
    "flat difference chain": "-".join(["x"] * 3000),
    "product chain of 400 factors": "sum(" + "@".join(["A"] * 400) + " @ x)",
    "element-wise chain of 2 000 factors": "sum(" + "*".join(["x"] * 2000) + ")",
    "1 000-layer MLP written out": _mlp(1000),
    "nesting at the limit": "x" + ".T" * 1999,
    "nesting past the limit": "sum(" + "exp(" * 2500 + "x" + ")" * 2501,
    "matrix power A^100000": ("A^100000", "matrixcalculus"),
    "matrix power chain": ("(A^1000)^1000", "matrixcalculus"),
    "product dimension": "sum(eye(100000*100000) @ ones(100000*100000)) * x",
    "product dimension past 10**18": "sum(ones(1000000000*1000000000*10)) * x",
}


@pytest.mark.parametrize("expr", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_family(expr):
    if expr in (_where_chain(24), ("(A^1000)^1000", "matrixcalculus")):  # stopped by the size budget
        pytest.importorskip("matcalc.budget", reason="the work budget is not in this build")
    expr, syntax = expr if isinstance(expr, tuple) else (expr, "matcalc")
    extra = {"syntax": syntax} if syntax != "matcalc" else {}
    if "budget" in inspect.signature(matcalc.diff).parameters:
        extra["budget"] = CALL_SECONDS / 3  # past it: a BudgetError, well within the harness's limit
    parsed, err = outcome(matcalc.parse, expr, **extra)
    if parsed is not None:
        for attr in ("text", "latex"):
            outcome(getattr, parsed, attr)
        repr(parsed)
    wrt = "x" if "x" in expr else "A" if "A" in expr else "X"
    for fn in (matcalc.diff, matcalc.vjp):
        d, _ = outcome(fn, expr, wrt, **extra)
        if d is not None:
            outcome(materialize, d)


def test_flat_sum_of_5000_terms_is_fast_and_right():
    expr = "+".join(f"x{i}" for i in range(5000))
    t0 = time.perf_counter()
    d, err = outcome(matcalc.diff, expr, "x7")
    assert err is None, err
    assert time.perf_counter() - t0 < CALL_SECONDS
    assert d.text == "eye(len(x7))"


def test_where_bindings_are_built_once():
    """A chain whose written-out tree doubles per binding parses in time (the names are shared)."""
    expr = "sum(t40) where t1 = sin(x); " + "; ".join(f"t{i} = sin(t{i - 1}) + t{i - 1}" for i in range(2, 41))
    with time_limit():
        p = matcalc.parse(expr)
    assert len(p.text) < 20 * len(expr)


def test_left_chains_are_not_nesting():
    for expr in ("+".join(["x"] * 1000), "@".join(["A"] * 450) + " @ x", _mlp(600)):
        assert outcome(matcalc.parse, expr)[1] is None, expr[:60]
    _, err = outcome(matcalc.parse, "x" + ".T" * 3000)
    assert isinstance(err, matcalc.ParseError) and "nests deeper" in str(err)


def _deep_where(k: int) -> str:
    return f"sum(t{k}) where t1 = A @ x; " + "; ".join(f"t{i} = A @ t{i - 1} + x" for i in range(2, k + 1))


def test_many_where_bindings_print_without_recursion():
    """A valid input with 4 000 bindings: every printer of the parsed graph walks it with an
    explicit stack (no RecursionError), and its text reads back."""
    expr = _deep_where(4000)
    assert 50_000 < len(expr) < matcalc.grammar.LIMITS["max_length"]
    p = matcalc.parse(expr)
    text = p.text
    assert "where" in text
    for attr in ("latex",):
        getattr(p, attr)
    repr(p)
    back = matcalc.parse(text)
    assert back.expr is p.expr


def test_derivative_of_a_deep_where_chain_prints():
    d = matcalc.diff(_deep_where(120), "x")
    for get in (lambda: d.text, lambda: d.latex, lambda: d.unicode, d.to_json, lambda: repr(d)):
        get()
    rng = np.random.default_rng(0)
    vals = {"A": rng.standard_normal((3, 3)) / 3, "x": rng.standard_normal(3)}
    assert np.allclose(matcalc.evaluate(d.text, vals), d.evaluate(vals))


BAD_VALUES = [({"x": [[1.0, 2.0], [3.0]]}, "rectangular"), ({"x": [1.0, [2.0]]}, "rectangular"),
              ({"x": 10**400}, "too large"), ({"x": [10**400, 1]}, "too large"), ({"x": [1j, 2]}, "complex")]


@pytest.mark.parametrize("values, says", BAD_VALUES, ids=[s for _, s in BAD_VALUES])
def test_bad_values_are_clear_errors(values, says):
    _, err = outcome(matcalc.evaluate, "x", values)
    assert err is not None and says in str(err)


def test_evaluating_huge_dimensions_says_so():
    _, err = outcome(matcalc.evaluate, "sum(eye(100000*100000))", {})
    assert err is not None and "too large" in str(err)
    d = matcalc.diff("eye(100000*100000) @ x", "x")
    assert "eye(" in d.text


@pytest.mark.parametrize("argv, stdin", [
    (["diff", "x", "x", "--shape", "x=²"], None),
    (["diff", "-", "x"], b"x\xff + y"),
    (["hessian", "sum(t30) where t1 = X@X; " + "; ".join(f"t{i} = t{i - 1}@t{i - 1}" for i in range(2, 31)), "X",
      "--budget", "0.3"], None),
    (["diff", "sum(" + "exp(" * 2500 + "x" + ")" * 2501, "x"], None),
])
def test_hostile_cli_one_line_exit_2(argv, stdin):
    env = dict(os.environ, LC_ALL="C", PYTHONIOENCODING="")
    r = subprocess.run([sys.executable, "-m", "matcalc.cli", *argv], input=stdin, capture_output=True,
                       env=env, timeout=60)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 2 and err.startswith("error: "), err
    assert "internal error" not in err and "Traceback" not in err
    assert len(err.rstrip("\n").split("\n")) <= 3


def test_a_huge_matrix_power_derives_quickly_and_right():
    """A^100000 (matrixcalculus syntax) is built by repeated squaring; its derivative is as deep as
    that (17 squarings), so it derives in well under a second (it used to exhaust the budget)."""
    r = subprocess.run([sys.executable, "-m", "matcalc.cli", "diff", "A^100000", "A", "--syntax", "matrixcalculus",
                        "--format", "text"], capture_output=True, timeout=60)
    assert r.returncode == 0 and b"kron(" in r.stdout, r.stderr
    t0 = time.perf_counter()
    matcalc.diff("A^100000", "A", syntax="matrixcalculus")
    assert time.perf_counter() - t0 < CALL_SECONDS
    d = matcalc.diff("A^37", "A", syntax="matrixcalculus")  # the same squarings, small enough to check
    assert d.check(exact=False)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_cli_full_disk_is_a_clear_error():
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "matcalc.cli", "diff", "X@W+b", "W"], stdout=full,
                           stderr=subprocess.PIPE, timeout=60)
    err = r.stderr.decode()
    assert r.returncode == 2 and err.startswith("error: cannot write the output"), err
    assert len(err.rstrip("\n").split("\n")) == 1
