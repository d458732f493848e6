"""Step-by-step derivations (`d.steps`, `d.steps_latex`).

For each derivation:

* the rule names read like a textbook derivation: `differential` first, the rules of the
  reverse sweep (product rule, chain rule element-wise, trace rule, …) in order, and
  `identification` (or the layout conversion) last;
* every shape check a step states is marked ✓ (and none ✗), and the claims are true;
* `d.steps_latex` is one aligned block with one line per step;
* most important: every line is an equality, so every `df = …` line has the same value
  when the variable moves along a random direction (`matcalc.steps.step_value`), equal to
  ⟨∂f/∂X, direction⟩ and to the directional finite difference of f. The `dF = …` lines of
  forward derivations (Jacobians, the second half of a Hessian) are vectors or matrices:
  their text is evaluated with `dX` bound to the direction and compared with J·direction.

Rows whose rule names or step values are not right yet are `xfail(strict=True)` with the
reason.
"""
from __future__ import annotations

import numpy as np
import pytest

import matcalc
from matcalc.steps import Step, step_value
from matcalc.verify import sample_values

M2 = ("m", "n")
RS = "rows_sum_to_one=Y"
CHAIN = "chain rule, element-wise (a diagonal Jacobian)"
PW = "product rule (element-wise)"

LSQ_SHAPES = {"X": M2, "W": ("n", "p"), "Y": ("m", "p")}
CE_SHAPES = {"X": M2, "W": ("n", "p"), "b": ("p",), "Y": ("m", "p")}


def S(id, kind, expr, wrt, rules, *, shapes=None, layout="mixed", assume=None, symmetric=None,
      rules_xfail=None, values_xfail=None):
    return dict(id=id, kind=kind, expr=expr, wrt=wrt, rules=rules, shapes=shapes, layout=layout,
                assume=assume, symmetric=symmetric, rules_xfail=rules_xfail, values_xfail=values_xfail)


STEPS = [
    S("lsq-by-W", "diff", "sum((X@W - Y)**2)", "W",
      ["differential", "linearity of the sum", "power rule (element-wise)", "linearity", "product rule",
       "identification"], shapes=LSQ_SHAPES),
    S("linreg-by-w", "diff", "(X @ w - y).T @ (X @ w - y)", "w",
      ["differential", "product rule", "linearity", "product rule", "linearity", "product rule", "transpose",
       "identification"], shapes={"X": M2, "w": ("n",), "y": ("m",)}),
    S("logistic-by-w", "diff", "sum(log(1 + exp(-y * (X @ w))))", "w",
      ["differential", "linearity of the sum", CHAIN, PW, "product rule", "identification"],
      shapes={"X": M2, "y": ("m",), "w": ("n",)}),
    S("tr-XTAX-by-X", "diff", "tr(X.T @ A @ X)", "X",
      ["differential", "trace rule", "product rule", "transpose", "identification"],
      shapes={"A": ("m", "m"), "X": M2}),
    S("logdet-tr-inv-by-X", "diff", "logdet(X) + tr(A @ inv(X))", "X",
      ["differential", "linearity", "log-determinant rule", "trace rule", "product rule", "inverse rule",
       "identification"], shapes={"X": ("n", "n"), "A": ("n", "n")}),
    S("det-by-X", "diff", "det(X)", "X", ["differential", "determinant rule", "identification"],
      shapes={"X": ("n", "n")}),
    S("xTAx-sym-by-x", "diff", "x.T @ A @ x", "x",
      ["differential", "product rule", "transpose", "identification", "assumption"],
      shapes={"x": ("n",), "A": ("n", "n")}, symmetric=["A"]),
    S("softmax-ce-by-W", "diff", "-sum(Y*log(softmax(X@W+b, axis=1)))", "W",
      ["differential", "linearity (a constant factor)", "linearity of the sum", PW, "linearity",
       "linearity (a constant factor)", "product rule", "log-sum-exp rule", "linearity", "product rule",
       "identification", "assumption"],
      shapes=CE_SHAPES, assume=RS),
    S("scaled-dot-by-x", "diff", "2 * dot(c, x)", "x",
      ["differential", "linearity (a constant factor)", "product rule", "identification"],
      shapes={"c": ("n",), "x": ("n",)}),
    S("numerator-trAXB-by-X", "diff", "tr(A @ X @ B)", "X",
      ["differential", "trace rule", "product rule", "identification", "layout conversion"],
      shapes={"A": ("p", "m"), "X": M2, "B": ("n", "p")}, layout="numerator"),
    S("vjp-tanh-XW-by-W", "vjp", "tanh(X @ W)", "W",
      ["differential", CHAIN, "product rule", "identification"], shapes={"X": M2, "W": ("n", "p")}),
    S("jacobian-tanh-Ax-by-x", "diff", "tanh(A @ x)", "x",
      ["differential", f"forward rules: {CHAIN}, product rule", "identification"],
      shapes={"A": M2, "x": ("n",)}),
    S("mm-XW-by-W", "diff", "X @ W", "W", ["differential", "forward rules: product rule", "vectorisation"],
      shapes={"X": M2, "W": ("n", "p")}),
    S("hessian-lsq-by-x", "hessian", "sum((A @ x - b) ** 2)", "x",
      ["differential", "linearity of the sum", "power rule (element-wise)", "linearity", "product rule",
       "identification", "differential",
       "forward rules: linearity, product rule, product rule (element-wise)", "vectorisation"],
      shapes={"A": M2, "x": ("n",), "b": ("m",)}),
]

GRADIENT_IDS = {c["id"] for c in STEPS if c["kind"] == "vjp" or (c["kind"] == "diff" and not any(
    r.startswith("forward rules") for r in c["rules"]))}


def _ids(cases, key=None):
    out = []
    for c in cases:
        marks = [pytest.mark.xfail(strict=True, reason=c[key])] if key and c[key] else []
        out.append(pytest.param(c, id=c["id"], marks=marks))
    return out


def derive(c) -> matcalc.Derivative:
    kw = dict(shapes=c["shapes"], assume=c["assume"], symmetric=c["symmetric"])
    if c["kind"] == "diff":
        return matcalc.diff(c["expr"], c["wrt"], layout=c["layout"], **kw)
    if c["kind"] == "hessian":
        return matcalc.hessian(c["expr"], c["wrt"], **kw)
    return matcalc.vjp(c["expr"], c["wrt"], upstream="G", **kw)


def all_shapes(d) -> dict:
    shapes = dict(d.parsed.var_shapes)
    if d.upstream is not None:
        shapes[d.upstream] = tuple(d.out_shape)
    return shapes


def sample(c, d, seed=0):
    """Values honouring the declared facts, and a random direction for the variable."""
    values, _ = sample_values(all_shapes(d), d.parsed.expr, seed)
    rng = np.random.default_rng(seed + 1000)
    for name in c["symmetric"] or []:
        values[name] = (values[name] + values[name].T) / 2
    if c["assume"]:
        name = c["assume"].split("=")[1]
        v = np.exp(rng.standard_normal(values[name].shape))
        values[name] = v / v.sum(axis=1, keepdims=True)
    direction = rng.standard_normal(np.shape(values[c["wrt"]]))
    return values, direction


def f_directional(c, d, values, direction, h=1e-6):
    """(f(x + h v) − f(x − h v)) / 2h for a scalar f (for a vjp: f = sum(G * F))."""
    shapes = all_shapes(d)

    def f(x):
        v = dict(values)
        v[c["wrt"]] = x
        out = np.asarray(matcalc.evaluate(c["expr"], v, shapes=shapes), dtype=float)
        return float(np.sum(values[d.upstream] * out)) if d.upstream else float(out)

    x0 = np.asarray(values[c["wrt"]], dtype=float)
    return (f(x0 + h * direction) - f(x0 - h * direction)) / (2 * h)


def mixed_gradient(c, d, values):
    """The gradient as an array of the variable's shape (undoing a numerator layout)."""
    g = np.asarray(d.evaluate(values), dtype=float)
    if c["layout"] == "numerator" and g.ndim == 2:
        g = g.T
    return g


def normalise(rule: str) -> str:
    """`identification: dF = J dx (…)` -> `identification`; forward rules keep their list."""
    return rule if rule.startswith("forward rules") else rule.split(":")[0]


# ------------------------------------------------------------------------------ rule names

@pytest.mark.parametrize("c", _ids(STEPS, "rules_xfail"))
def test_rule_sequence(c):
    d = derive(c)
    assert [normalise(s.rule) for s in d.steps] == c["rules"]


@pytest.mark.parametrize("c", _ids(STEPS))
def test_derivation_starts_and_ends_like_a_textbook(c):
    d = derive(c)
    steps = d.steps
    assert len(steps) >= 3
    assert all(isinstance(s, Step) for s in steps)
    assert steps[0].rule == "differential"
    last = steps[-1].rule
    if c["id"] in GRADIENT_IDS and (c["assume"] or c["symmetric"]):
        # the declared fact is a step of its own, after the general identification
        assert last.startswith("assumption") and steps[-2].rule == "identification"
        assert steps[-1].latex.endswith(d.latex)
        assert steps[-1].text.endswith(f"df/d{c['wrt']} = {d.text}")
    elif c["id"] in GRADIENT_IDS:
        assert last == ("layout conversion" if c["layout"] == "numerator" else "identification")
        if c["layout"] == "numerator":
            assert steps[-2].rule == "identification"
        # the last line states the derivative matcalc returns
        assert steps[-1].latex.endswith(d.latex)
        if c["layout"] != "numerator":
            assert steps[-1].text.endswith(f"=>  df/d{c['wrt']} = {d.text}")
    else:
        assert last.startswith(("identification", "vectorisation"))
    # every rule is a known rule (nothing falls back to a bare operator name)
    known = ("differential", "identification", "layout conversion", "forward rules", "vectorisation",
             "linearity", "product rule", "power rule", "transpose", "chain rule", "trace rule",
             "determinant rule", "log-determinant rule", "inverse rule", "norm rule", "softmax rule",
             "log-sum-exp rule", "diag is linear", "assumption")
    for s in steps:
        assert s.rule.startswith(known), s.rule
        assert s.text and s.latex


def test_numerator_layout_ends_with_layout_conversion():
    d = matcalc.diff("tr(A @ X @ B)", "X", shapes={"A": ("p", "m"), "X": M2, "B": ("n", "p")},
                     layout="numerator")
    assert d.steps[-1].rule == "layout conversion"
    assert d.steps[-1].latex.endswith(d.latex)  # the transpose, B A
    assert d.steps[-2].rule == "identification"
    assert d.steps[-2].text.endswith("df/dX = (B @ A).T")  # the mixed-layout gradient first
    # the scalar-by-matrix gradient of a scalar in the other layouts needs no conversion
    for layout in ("mixed", "denominator"):
        e = matcalc.diff("tr(A @ X @ B)", "X", shapes={"A": ("p", "m"), "X": M2, "B": ("n", "p")},
                         layout=layout)
        assert e.steps[-1].rule == "identification"


def test_denominator_layout_jacobian_ends_with_layout_conversion():
    d = matcalc.diff("A @ x", "x", shapes={"A": M2, "x": ("n",)}, layout="denominator")
    assert d.text == "A.T"
    assert d.steps[-1].rule == "layout conversion"
    assert d.steps[-1].latex.endswith(d.latex)


def test_softmax_ce_names_the_assumption_it_uses():
    d = derive(next(c for c in STEPS if c["id"] == "softmax-ce-by-W"))
    assert any("sum to one" in s.rule + " " + s.note or "rows_sum_to_one" in s.rule + " " + s.note
               for s in d.steps)


# ------------------------------------------------------------------------------ shapes

@pytest.mark.parametrize("c", _ids(STEPS))
def test_shape_checks_are_marked_and_true(c):
    d = derive(c)
    shapes_txt = d.variable_shapes
    checks = 0
    for s in d.steps:
        for key, val in s.shapes.items():
            assert "✗" not in val, (s.rule, key, val)
            if "✓" in val:
                checks += 1
                assert val.endswith(" ✓")
                claim = val[:-2]
                if " like " in claim:  # "n×p like n×p ✓": the adjoint has its node's shape
                    a, b = claim.split(" like ")
                    assert a == b
        if s.rule in ("differential", "layout conversion") or s.rule.startswith(
                ("forward rules", "identification:", "vectorisation")):
            continue
        if s.rule.startswith("assumption"):
            assert s.shapes["gradient"] == shapes_txt[c["wrt"]] + " ✓"
            continue
        if s.rule == "identification":
            assert s.shapes[c["wrt"]] == shapes_txt[c["wrt"]]
            assert s.shapes["gradient"] == shapes_txt[c["wrt"]] + " ✓"
            continue
        # a step of the reverse sweep checks the adjoint of the node it expands, and the
        # adjoint passed to each argument that depends on the variable
        assert s.shapes["adjoint"].endswith("✓")
        assert any(k.startswith("∂f/∂(") for k in s.shapes), s.shapes
        node_shape = s.shapes["node"].rsplit(": ", 1)[1]
        assert s.shapes["adjoint"] in (node_shape + " ✓", "scalar ✓")
    if c["id"] in GRADIENT_IDS or c["kind"] == "hessian":
        assert checks >= len(d.steps) - 1


# ------------------------------------------------------------------------------ LaTeX block

def _latex_lines(d):
    block = d.steps_latex
    assert block.startswith("\\begin{aligned}\n") and block.endswith("\n\\end{aligned}")
    body = block[len("\\begin{aligned}\n"):-len("\n\\end{aligned}")]
    return body.split(" \\\\\n")


@pytest.mark.parametrize("c", _ids(STEPS))
def test_steps_latex_is_one_aligned_line_per_step(c):
    d = derive(c)
    lines = _latex_lines(d)
    assert len(lines) == len(d.steps)
    for line, s in zip(lines, d.steps):
        assert "\n" not in line
        assert line.count(" &= ") == 1, line
        assert line.endswith(f" && \\text{{{s.rule}}}"), line
        lhs = line.split(" &= ")[0]
        assert lhs in (r"\mathrm{d}f", r"\mathrm{d}F", r"\operatorname{vec}(\mathrm{d}F)") or lhs.startswith(
            r"\frac{\partial") or s.rule == "layout conversion", line
        assert line.count(r"\left") == line.count(r"\right")


@pytest.mark.parametrize("c", [pytest.param(c, id=c["id"]) for c in STEPS])
def test_steps_latex_every_line_has_a_right_hand_side(c):
    d = derive(c)
    for line in _latex_lines(d):
        rhs = line.split(" &= ", 1)[1].split(" && ")[0]
        assert rhs.strip(), line


# ------------------------------------------------------------------------------ the numbers

def _scalar_lines(d):
    return [s for s in d.steps if s.expr is not None and tuple(s.expr.shape) == ()]


@pytest.mark.parametrize("c", _ids([c for c in STEPS if c["id"] in GRADIENT_IDS or c["kind"] == "hessian"],
                                   "values_xfail"))
def test_every_df_line_has_the_same_value(c):
    d = derive(c)
    shapes = all_shapes(d)
    for seed in (0, 1):
        values, direction = sample(c, d, seed)
        if c["kind"] == "hessian":
            grad = matcalc.diff(c["expr"], c["wrt"], shapes=c["shapes"]).evaluate(values)
            steps = d.steps[:[s.rule for s in d.steps].index("identification") + 1]
        else:
            grad = mixed_gradient(c, d, values)
            steps = d.steps
        target = float(np.sum(grad * direction))
        lines = [s for s in steps if s.expr is not None]
        assert len(lines) >= len(steps) - 1
        got = [step_value(s.expr, c["wrt"], values, direction, shapes) for s in lines]
        for s, v in zip(lines, got):
            assert v == pytest.approx(target, rel=1e-9, abs=1e-12), (s.rule, s.text)
        assert target == pytest.approx(f_directional(c, d, values, direction), rel=1e-6, abs=1e-8)


def test_vjp_lines_after_the_first_have_the_same_value():
    c = next(c for c in STEPS if c["id"] == "vjp-tanh-XW-by-W")
    d = derive(c)
    values, direction = sample(c, d, 0)
    target = float(np.sum(d.evaluate(values) * direction))
    lines = [s for s in d.steps[1:] if s.expr is not None]
    assert len(lines) == len(d.steps) - 1
    for s in lines:
        v = step_value(s.expr, c["wrt"], values, direction, all_shapes(d))
        assert v == pytest.approx(target, rel=1e-9), (s.rule, s.text)
    assert target == pytest.approx(f_directional(c, d, values, direction), rel=1e-6)


def _forward_part(d):
    """The steps of the forward derivation (for a Hessian: after the gradient's identification)."""
    rules = [s.rule for s in d.steps]
    start = rules.index("identification") + 1 if "identification" in rules else 0
    return d.steps[start:]


def _jvp(c, d, values, direction):
    """J · direction, with J = d.evaluate (out_shape + wrt_shape; for a Hessian wrt + wrt)."""
    J = np.asarray(d.evaluate(values), dtype=float)
    return np.tensordot(J, direction, axes=np.ndim(direction))


FORWARD = [c for c in STEPS if c["id"] not in GRADIENT_IDS]


@pytest.mark.parametrize("c", _ids(FORWARD))
def test_forward_lines_have_the_same_value(c):
    """Each `dF = …` line, with dX bound to the direction, is J · direction."""
    d = derive(c)
    wrt = c["wrt"]
    dname = "d" + wrt
    shapes = dict(all_shapes(d), **{dname: tuple(d.wrt_shape)})
    values, direction = sample(c, d, 0)
    want = _jvp(c, d, values, direction)
    env = dict(values, **{dname: direction})
    checked = 0
    for s in _forward_part(d):
        lhs, _, rhs = s.text.partition(" = ")
        if "d(" in rhs or lhs not in ("dF", "vec(dF)"):
            continue  # the opening line d(F), and the read-off line dF/dα
        got = np.asarray(matcalc.evaluate(rhs, env, shapes=shapes), dtype=float)
        ref = want.reshape(-1, order="F") if lhs == "vec(dF)" else want
        np.testing.assert_allclose(got.reshape(ref.shape), ref, rtol=1e-9, atol=1e-12, err_msg=s.text)
        checked += 1
    assert checked >= 2


@pytest.mark.parametrize("cid", ["jacobian-tanh-Ax-by-x", "mm-XW-by-W"])
def test_step_value_of_a_vector_line(cid):
    c = next(c for c in STEPS if c["id"] == cid)
    d = derive(c)
    values, direction = sample(c, d, 0)
    s = next(s for s in _forward_part(d) if s.expr is not None)
    got = step_value(s.expr, c["wrt"], values, direction, all_shapes(d))
    np.testing.assert_allclose(np.asarray(got), _jvp(c, d, values, direction), rtol=1e-9)


# ------------------------------------------------------------------------------ deep and wide

def _same_value_everywhere(c):
    d = derive(c)
    values, direction = sample(c, d, 0)
    target = float(np.sum(mixed_gradient(c, d, values) * direction))
    lines = [s for s in d.steps if s.expr is not None]
    assert len(lines) == len(d.steps)
    for s in lines:
        v = step_value(s.expr, c["wrt"], values, direction, all_shapes(d))
        assert v == pytest.approx(target, rel=1e-9, abs=1e-12), (s.rule, s.text)
    assert target == pytest.approx(f_directional(c, d, values, direction), rel=1e-6, abs=1e-8)
    return d


def test_a_wide_frontier_elides_the_terms_a_step_leaves_alone():
    """Twelve terms: a line shows the terms its step changed and `+ … (k more terms, as in the line
    before)`; its `expr` (built when asked for) is still the whole df, equal to every other line."""
    expr = "sum(" + " + ".join(f"a{i} * tanh(b{i} * x)" for i in range(12)) + ")"
    shapes = {f"{v}{i}": ("n",) for i in range(12) for v in "ab"} | {"x": ("n",)}
    d = _same_value_everywhere(S("wide", "diff", expr, "x", None, shapes=shapes))
    elided = [s for s in d.steps if "… (" in s.text]
    assert len(elided) >= 10 and all("more term" in s.text and r"\dots" in s.latex for s in elided)
    # the twelve contributions to dx are kept as terms of their own past a short sum: no line
    # rewrites a long adjoint
    assert max(len(s.text) for s in elided) < 400


def test_a_deep_network_names_its_pieces_once():
    """Six layers: the lines use names (a textbook's forward values and backprop deltas), each
    defined once in the `where` of the line that first writes it; every line is still df."""
    L = 6
    e = "X @ W1"
    for i in range(2, L + 1):
        e = f"tanh({e}) @ W{i}"
    shapes = {"X": M2, "Y": M2} | {f"W{i}": ("n", "n") for i in range(1, L + 1)}
    d = _same_value_everywhere(S("deep", "diff", f"sum(({e} - Y) ** 2)", "W1", None, shapes=shapes))
    defined = [w.split(" = ")[0] for s in d.steps[:-1] for w in s.text.split(" where ", 1)[1:]
               for w in w.split("; ")]
    assert defined and len(defined) == len(set(defined))
    for name in defined:  # used only after the line that defines it
        first = next(i for i, s in enumerate(d.steps) if f" where {name} = " in s.text or f"; {name} = " in s.text)
        assert not any(name in s.text.split(" where ")[0] for s in d.steps[:first])
