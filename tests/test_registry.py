"""Every operator of the registry (matcalc/ops/), checked from its own declaration.

Each declared operator and each function of the language carries a small instance (`sample=`:
an expression, its variables' shapes, the variables to differentiate by); values are drawn in the
declared domain (`domain=`: positive, unit, invertible) by `check()`'s sampler. For every
instance and variable the tests check

* reverse mode: the VJP against central differences of sum(G ⊙ f) (`vjp(...).check()`);
* forward mode: the JVP (the engine's forward sweep, seeded with a random direction) against
  the central difference of f along that direction;
* the text round trip (`parse(p.text)` is the same interned node), and the derivative's text
  evaluating to the derivative;
* LaTeX and unicode rendering (no generic fallback leaks a Python repr);
* generated numpy code equal to `evaluate`;
* the exact sympy check;
* the domain: the sampled values make the expression finite.

A new operator gets all of that by being registered with a `sample=`.
"""
from __future__ import annotations

import ast

import numpy as np
import pytest

import matcalc
from matcalc.engine import forward
from matcalc.errors import InternalError
from matcalc.evaluate import bind_values, evaluate_node
from matcalc.ops import registry as R
from matcalc.simplify import var
from matcalc.verify import sample_values

R.load()


def _instances():
    out = []
    for name, spec in sorted(R.OPS.items()):
        if spec.sample:
            out.append(pytest.param(spec.sample, id=f"op-{name}"))
    for name, spec in sorted(R.FUNCS.items()):
        if spec.sample:
            out.append(pytest.param(spec.sample, id=f"fn-{name}"))
    return out


INSTANCES = _instances()


def _pairs(only_vjp: bool = False):
    out = []
    for p in INSTANCES:
        expr, shapes, wrts = p.values[0]
        names = wrts if only_vjp else sorted(shapes)
        out += [pytest.param(expr, shapes, w, id=f"{p.id}-{w}") for w in names]
    return out


def _values(parsed, seed=0):
    return sample_values(dict(parsed.var_shapes), parsed.expr, seed)[0]


def test_every_operator_is_complete():
    """Each operator with arguments has both rules or says why not, numpy and sympy forms, code,
    a sample for this module; every function of the language has a sample or builds a sampled op."""
    R.load()
    for name, spec in R.OPS.items():
        if spec.arity == 0 or (spec.core and not spec.sample):  # leaves, containers, opaque differentials
            continue
        assert spec.vjp is not None or spec.no_vjp, name
        assert spec.jvp is not None or spec.linear or spec.no_jvp, name
        assert spec.np is not None and spec.sp is not None and spec.code is not None, name
        assert spec.sample, f"{name} has no sample= for the registry test"
    for name, f in R.FUNCS.items():
        assert f.sample or (f.op in R.OPS and R.OPS[f.op].sample), name


@pytest.mark.parametrize("expr, shapes, wrt", _pairs(only_vjp=True))
def test_vjp_against_finite_differences(expr, shapes, wrt):
    d = matcalc.vjp(expr, wrt, shapes=shapes)
    res = d.check()
    assert res.ok, f"{expr} by {wrt}: {res}"


@pytest.mark.parametrize("expr, shapes, wrt", _pairs())
def test_jvp_against_finite_differences(expr, shapes, wrt):
    p = matcalc.parse(expr, shapes=shapes)
    values = _values(p, seed=1)
    rng = np.random.default_rng(7)
    x0 = np.asarray(values[wrt], dtype=float)
    direction = rng.standard_normal(x0.shape) * (0.1 if np.max(np.abs(x0)) < 0.5 else 1.0)
    seed_name = "dir_" + wrt
    df = forward(p.expr, {wrt: var(seed_name, p.var_shapes[wrt])})
    shapes_all = dict(p.var_shapes, **{seed_name: p.var_shapes[wrt]})

    def f(vals):
        env, dims = bind_values(dict(p.var_shapes), vals)
        return np.asarray(evaluate_node(p.expr, env, dims), dtype=float)

    h = 1e-6
    hi, lo = dict(values), dict(values)
    hi[wrt], lo[wrt] = x0 + h * direction, x0 - h * direction
    ref = (f(hi) - f(lo)) / (2 * h)
    if df is None:
        got = np.zeros_like(ref)
    else:
        env, dims = bind_values(shapes_all, dict(values, **{seed_name: direction}))
        got = np.asarray(evaluate_node(df, env, dims), dtype=float)
    np.testing.assert_allclose(got, np.broadcast_to(ref, got.shape) if got.shape != ref.shape else ref,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("expr, shapes, wrt", _pairs(only_vjp=True))
def test_derivative_steps_and_index_form(expr, shapes, wrt):
    """diff: the reverse sweep for a scalar, else the forward differential and the vec-Jacobian
    read off it; the steps (which observe the sweep) and the index form render."""
    d = matcalc.diff(expr, wrt, shapes=shapes)
    res = d.check()
    assert res.ok, f"{expr} by {wrt}: {res}"
    assert d.steps and all(s.rule for s in d.steps)
    assert d.index_latex


@pytest.mark.parametrize("sample", [p.values[0] for p in INSTANCES], ids=[p.id for p in INSTANCES])
def test_text_round_trip(sample):
    expr, shapes, _ = sample
    p = matcalc.parse(expr, shapes=shapes)
    again = matcalc.parse(p.text, shapes=shapes)
    assert again.expr is p.expr, (p.text, again.text)
    values = _values(p)
    np.testing.assert_allclose(matcalc.evaluate(p.text, values, shapes=shapes),
                               matcalc.evaluate(expr, values, shapes=shapes), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("sample", [p.values[0] for p in INSTANCES], ids=[p.id for p in INSTANCES])
def test_latex_and_unicode_render(sample):
    expr, shapes, wrts = sample
    p = matcalc.parse(expr, shapes=shapes)
    from matcalc.render import to_unicode
    for out in (p.latex, to_unicode(p.expr)):
        assert out and "None" not in out and "<" not in out and "lambda" not in out, out
    for w in wrts:
        d = matcalc.vjp(expr, w, shapes=shapes)
        assert d.latex and d.unicode and "None" not in d.latex


@pytest.mark.parametrize("expr, shapes, wrt", _pairs(only_vjp=True))
def test_codegen_equals_evaluate_and_text(expr, shapes, wrt):
    out = matcalc.parse(expr, shapes=shapes).shape
    product_dim = any(isinstance(x, tuple) for x in out)  # vec(X): m·n entries, no name to declare:
    up = "g" if product_dim and len(out) == 1 else "G"     # a lower-case name is a vector by default
    d = matcalc.vjp(expr, wrt, shapes=shapes, upstream=up)
    values = sample_values(dict(d.parsed.var_shapes, **{up: d.out_shape}), d.parsed.expr, 3)[0]
    want = d.evaluate(values)
    np.testing.assert_allclose(d.compile("numpy")(values), want, rtol=1e-10, atol=1e-12)
    for backend in ("torch", "jax"):  # optional backends: at least valid Python here
        ast.parse(d.to_python(backend))
    text_shapes = dict(shapes) if product_dim else {**shapes, up: d.out_shape}
    np.testing.assert_allclose(matcalc.evaluate(d.text, values, shapes=text_shapes), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("expr, shapes, wrt", _pairs(only_vjp=True))
def test_exact_sympy_check(expr, shapes, wrt):
    d = matcalc.vjp(expr, wrt, shapes=shapes)
    assert d.check(exact=True).exact is True, f"{expr} by {wrt}: {d.text}"


@pytest.mark.parametrize("sample", [p.values[0] for p in INSTANCES], ids=[p.id for p in INSTANCES])
def test_domain_makes_the_instance_defined(sample):
    expr, shapes, _ = sample
    p = matcalc.parse(expr, shapes=shapes)
    for seed in range(3):
        assert np.all(np.isfinite(matcalc.evaluate(expr, _values(p, seed), shapes=shapes)))


# ----------------------------------------------------------------------------- the registry itself

def test_missing_rule_is_an_internal_error_and_printers_fall_back():
    from matcalc.expr import make
    from matcalc.render import to_latex, to_text
    with pytest.raises(InternalError, match="no VJP"):
        R.defop("no_rules_op", build=lambda n, a: n, np=lambda n, a, d: a[0])
    R.defop("half_op", build=lambda n, a: make("half_op", tuple(a), None, n.shape), no_vjp="a test operator",
            jvp=lambda n, ds: ds[0], np=lambda n, a, d: a[0], sp=lambda c, n, a: a[0], code="{0}")
    try:
        x = var("x", ("n",))
        node = make("half_op", (x,), None, ("n",))
        assert to_text(node) == "half_op(x)"
        assert to_latex(node) == r"\operatorname{half\_op}\left(x\right)"
        from matcalc.engine import reverse
        from matcalc.simplify import const, sum_
        with pytest.raises(InternalError, match="a test operator"):
            reverse(sum_(node), x, const(1))
        with pytest.raises(InternalError):
            R.op("no_such_op")
    finally:
        R.OPS.pop("half_op", None)


def test_one_line_per_elementwise_function():
    import inspect

    from matcalc.ops import elementwise
    src = inspect.getsource(elementwise)
    for name in R.FNS:
        lines = [ln for ln in src.splitlines() if ln.startswith(f'elementwise("{name}"')]
        assert len(lines) == 1, name


# ----------------------------------------------------------------------------- losses of the new language

LOSSES = [
    ("sum(maximum(0, 1 - y * (X @ w)))", "w", {"X": ("m", "n"), "w": ("n",), "y": ("m",)},
     "-(X.T @ (y * step(1 - y * (X @ w))))"),
    ("-sum(y * log_softmax(X @ w))", "w", {"X": ("m", "n"), "w": ("n",), "y": ("m",)}, None),
    ("-sum(Y * log_softmax(X @ W, axis=1))", "W", {"X": ("m", "n"), "W": ("n", "p"), "Y": ("m", "p")}, None),
    ("max(X @ w) - min(w)", "w", {"X": ("m", "n"), "w": ("n",)}, None),
    ("sum(log1p(exp(-y * (X @ w))))", "w", {"X": ("m", "n"), "w": ("n",), "y": ("m",)}, None),
    ("norm(x - y, 1)", "x", {"x": ("n",), "y": ("n",)}, "sign(x - y)"),
]


@pytest.mark.parametrize("expr, wrt, shapes, text", LOSSES, ids=[e for e, *_ in LOSSES])
def test_losses_derive_check_and_compile(expr, wrt, shapes, text):
    d = matcalc.diff(expr, wrt, shapes=shapes)
    if text is not None:
        assert d.text == text
    res = d.check(exact=True)
    assert res.ok and res.exact is not False, res
    values = sample_values(dict(d.parsed.var_shapes), d.parsed.expr, 5)[0]
    np.testing.assert_allclose(d.compile("numpy")(values), d.evaluate(values), rtol=1e-10, atol=1e-12)


def test_log_softmax_is_the_canonical_z_minus_logsumexp():
    a = matcalc.parse("log_softmax(z)")
    assert a.expr is matcalc.parse("log(softmax(z))").expr is matcalc.parse("z - logsumexp(z)").expr
    b = matcalc.parse("log_softmax(S, axis=1)")
    assert b.expr is matcalc.parse("log(softmax(S, axis=1))").expr
    assert matcalc.parse(b.text).expr is b.expr


def test_ties():
    """maximum/minimum: a tie sends the derivative to the first argument; max/min of all entries:
    the gradient is shared equally by the tied entries."""
    x = np.array([1.0, 2.0, 3.0])
    g = matcalc.diff("sum(maximum(x, y))", "x").evaluate({"x": x, "y": np.array([1.0, 5.0, 0.0])})
    np.testing.assert_array_equal(g, [1.0, 0.0, 1.0])
    g = matcalc.diff("sum(maximum(y, x))", "x").evaluate({"x": x, "y": np.array([1.0, 5.0, 0.0])})
    np.testing.assert_array_equal(g, [0.0, 0.0, 1.0])
    g = matcalc.diff("max(x)", "x").evaluate({"x": np.array([3.0, 1.0, 3.0])})
    np.testing.assert_array_equal(g, [0.5, 0.0, 0.5])
    g = matcalc.diff("min(x)", "x").evaluate({"x": np.array([3.0, 1.0, 3.0])})
    np.testing.assert_array_equal(g, [0.0, 1.0, 0.0])


def test_matrixcalculus_names_map_onto_the_registry():
    mc = matcalc.parse("arcsin(x) + arccos(x) + arctan(x) + sign(x) + norm1(x)", syntax="matrixcalculus")
    ours = matcalc.parse("arcsin(x) + arccos(x) + arctan(x) + sign(x) + norm(x, 1)")
    assert mc.expr is ours.expr


@pytest.mark.parametrize("expr, message", [
    ("norm(X, 1)", "norm(x, 1) takes a vector"),
    ("norm(x, 3)", "the order of a norm is 1 or 2"),
    ("maximum(X, y)", "they do not fit for maximum"),
    ("max(x, y)", "max() takes 1 argument"),
])
def test_errors_of_the_new_functions(expr, message):
    with pytest.raises(matcalc.MatcalcError, match=message.replace("(", r"\(").replace(")", r"\)")):
        matcalc.parse(expr, shapes={"X": ("m", "n"), "y": ("m",)})


@pytest.mark.parametrize("expr, shapes, wrt", _pairs(only_vjp=True))
def test_jax_codegen_equals_evaluate(expr, shapes, wrt):
    """The jax backend (optional: skipped without jax), single precision unless x64 is on."""
    pytest.importorskip("jax")
    out = matcalc.parse(expr, shapes=shapes).shape
    up = "g" if any(isinstance(x, tuple) for x in out) and len(out) == 1 else "G"
    d = matcalc.vjp(expr, wrt, shapes=shapes, upstream=up)
    values = sample_values(dict(d.parsed.var_shapes, **{up: d.out_shape}), d.parsed.expr, 3)[0]
    np.testing.assert_allclose(np.asarray(d.compile("jax")(values)), d.evaluate(values), rtol=1e-4, atol=1e-5)

