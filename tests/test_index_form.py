r"""Index form (`d.index_latex`): one entry of the derivative with indices and sums.

The strings are pinned after checking them by hand, e.g. the notes' (004)
∂L/∂w_{ij} = 2 Σ_k x_{ki} (Σ_l x_{kl} w_{lj} − y_{kj}). Rows where matcalc's string is wrong
or clearly less clean pin the string it should print, `xfail(strict=True)` with the reason.

`test_index_form_is_the_derivative` checks every pinned string numerically with a tiny
evaluator of these index expressions: the left-hand side says which entry it is
(∂f/∂w_{ij}, ∂f_i/∂x_j, ∂²f/∂x_i∂x_j, ∂L/∂x_{ij} for a backprop rule, dF_{ij} for a
differential), the right-hand side is evaluated by brute force (sums as loops), and the
entry is compared with central finite differences of the expression, for every i, j.
"""
from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

import matcalc
from matcalc.verify import sample_values
from public_cases import hessian_fd, jacobian_fd

M2 = ("m", "n")


def I(id, kind, expr, wrt, index, *, shapes=None, layout="mixed", xfail=None, actual_xfail=None):
    return dict(id=id, kind=kind, expr=expr, wrt=wrt, index=index, shapes=shapes, layout=layout,
                xfail=xfail, actual_xfail=actual_xfail)


INDEX = [
    # 004: ‖XW − Y‖² by W, entry by entry
    I("lsq-by-W", "diff", "sum((X@W - Y)**2)", "W",
      r"\frac{\partial f}{\partial w_{ij}} = 2 \sum_{k} x_{ki} \left(\sum_{l} x_{kl} w_{lj} - y_{kj}\right)",
      shapes={"X": M2, "W": ("n", "p"), "Y": ("m", "p")}),
    I("linreg-by-w", "diff", "sum((X @ w - y) ** 2)", "w",
      r"\frac{\partial f}{\partial w_{i}} = 2 \sum_{k} x_{ki} \left(\sum_{l} x_{kl} w_{l} - y_{k}\right)",
      shapes={"X": M2, "w": ("n",), "y": ("m",)}),
    I("ridge-by-x", "diff", "sum((A @ x - b) ** 2) + lambda * x.T @ x", "x",
      r"\frac{\partial f}{\partial x_{i}} = 2 \left({\lambda} x_{i} + \sum_{k} a_{ki} "
      r"\left(\sum_{l} a_{kl} x_{l} - b_{k}\right)\right)",
      shapes={"A": M2, "x": ("n",), "b": ("m",), "lambda": ()}),
    I("Ax-jacobian", "diff", "A @ x", "x", r"\frac{\partial f_{i}}{\partial x_{j}} = a_{ij}",
      shapes={"A": M2, "x": ("n",)}),
    I("exp-jacobian", "diff", "exp(x)", "x",
      r"\frac{\partial f_{i}}{\partial x_{j}} = \delta_{ij} \exp\left(x_{i}\right)", shapes={"x": ("n",)}),
    I("hadamard-jacobian", "diff", "w * x", "w", r"\frac{\partial f_{i}}{\partial w_{j}} = \delta_{ij} x_{i}",
      shapes={"w": ("n",), "x": ("n",)}),
    I("tr-XTAX", "diff", "tr(X.T @ A @ X)", "X",
      r"\frac{\partial f}{\partial x_{ij}} = \sum_{k} \left(a_{ik} + a_{ki}\right) x_{kj}",
      shapes={"A": ("m", "m"), "X": M2}),
    I("tr-AXB", "diff", "tr(A @ X @ B)", "X", r"\frac{\partial f}{\partial x_{ij}} = \sum_{k} a_{ki} b_{jk}",
      shapes={"A": ("p", "m"), "X": M2, "B": ("n", "p")}),
    I("aTXb", "diff", "a.T @ X @ b", "X", r"\frac{\partial f}{\partial x_{ij}} = a_{i} b_{j}",
      shapes={"a": ("m",), "X": M2, "b": ("n",)}),
    I("logistic", "diff", "sum(log(1 + exp(-y * (X @ w))))", "w",
      r"\frac{\partial f}{\partial w_{i}} = -\sum_{k} x_{ki} y_{k} \sigma\left(-y_{k} \sum_{l} x_{kl} w_{l}\right)",
      shapes={"X": M2, "y": ("m",), "w": ("n",)}),
    # 001: backprop through Y = W X
    I("vjp-WX-by-X", "vjp", "W @ X", "X", r"\frac{\partial L}{\partial x_{ij}} = \sum_{k} w_{ki} g_{kj}",
      shapes={"W": M2, "X": ("n", "p")}),
    I("vjp-WX-by-W", "vjp", "W @ X", "W", r"\frac{\partial L}{\partial w_{ij}} = \sum_{k} g_{ik} x_{jk}",
      shapes={"W": M2, "X": ("n", "p")}),
    I("vjp-bias", "vjp", "X @ W + b", "b", r"\frac{\partial L}{\partial b_{i}} = \sum_{k} g_{ki}",
      shapes={"X": M2, "W": ("n", "p"), "b": ("p",)}),
    I("vjp-tanh-layer", "vjp", "tanh(X @ W)", "W",
      r"\frac{\partial L}{\partial w_{ij}} = \sum_{k} x_{ki} g_{kj} "
      r"\left(1 - {\tanh\left(\sum_{l} x_{kl} w_{lj}\right)}^{2}\right)",
      shapes={"X": M2, "W": ("n", "p")}),
    I("hessian-lsq", "hessian", "sum((A @ x - b) ** 2)", "x",
      r"\frac{\partial^2 f}{\partial x_{i} \partial x_{j}} = 2 \sum_{k} a_{ki} a_{kj}",
      shapes={"A": M2, "x": ("n",), "b": ("m",)}),
    # more than two axes: the differential entry by entry
    I("mm-XW-by-W", "diff", "X @ W", "W", r"\mathrm{d}F_{ij} = \sum_{k} x_{ik} \mathrm{d}w_{kj}",
      shapes={"X": M2, "W": ("n", "p")}),
    I("mm-AXB-by-X", "diff", "A @ X @ B", "X",
      r"\mathrm{d}F_{ij} = \sum_{k,l} a_{ik} \mathrm{d}x_{kl} b_{lj}", shapes={"A": ("k", "m"), "X": M2,
                                                                            "B": ("n", "p")}),
    I("mm-transpose", "diff", "X.T", "X", r"\mathrm{d}F_{ij} = \mathrm{d}x_{ji}", shapes={"X": M2}),

    # ------------------------------------------------------------------ layouts, deltas, fractions
    I("layout-denominator-Ax", "diff", "A @ x", "x", r"\frac{\partial f_{j}}{\partial x_{i}} = a_{ji}",
      shapes={"A": M2, "x": ("n",)}, layout="denominator"),
    I("layout-numerator-trAX", "diff", "tr(A @ X)", "X", r"\frac{\partial f}{\partial x_{ji}} = a_{ij}",
      shapes={"A": ("n", "m"), "X": M2}, layout="numerator"),
    I("hessian-xTAx", "hessian", "x.T @ A @ x", "x",
      r"\frac{\partial^2 f}{\partial x_{i} \partial x_{j}} = a_{ij} + a_{ji}",
      shapes={"x": ("n",), "A": ("n", "n")}),
    I("tanh-Ax-jacobian", "diff", "tanh(A @ x)", "x",
      r"\frac{\partial f_{i}}{\partial x_{j}} = \left(1 - {\tanh\left(\sum_{l} a_{il} x_{l}\right)}^{2}\right) a_{ij}",
      shapes={"A": M2, "x": ("n",)}),
    I("sum-XW-b-by-W", "diff", "sum(X @ W + b)", "W", r"\frac{\partial f}{\partial w_{ij}} = \sum_{k} x_{ki}",
      shapes={"X": M2, "W": ("n", "p"), "b": ("p",)}),
    I("norm-x", "diff", "norm(x)", "x", r"\frac{\partial f}{\partial x_{i}} = \frac{x_{i}}{\left\|x\right\|}",
      shapes={"x": ("n",)}),
]


# deeper graphs: the pieces they share are named once (`where`), each defined entry by entry; not
# pinned, but evaluated like the rows above (the definitions first)
NAMED = [
    I("tanh2-hessian", "hessian", "sum(tanh(A @ tanh(B @ x)))", "x", None,
      shapes={"A": ("n", "n"), "B": ("n", "n"), "x": ("n",)}),
    I("tanh3-hessian", "hessian", "sum(tanh(A @ tanh(B @ tanh(C @ x))))", "x", None,
      shapes={"A": ("n", "n"), "B": ("n", "n"), "C": ("n", "n"), "x": ("n",)}),
    I("exp-chain-hessian", "hessian", "sum(exp(A @ exp(A @ exp(A @ x))))", "x", None,
      shapes={"A": ("n", "n"), "x": ("n",)}),
]


def _params(key):
    return [pytest.param(c, id=c["id"], marks=[pytest.mark.xfail(strict=True, reason=c[key])] if c[key] else [])
            for c in INDEX]


def derive(c):
    if c["kind"] == "diff":
        return matcalc.diff(c["expr"], c["wrt"], shapes=c["shapes"], layout=c["layout"])
    if c["kind"] == "hessian":
        return matcalc.hessian(c["expr"], c["wrt"], shapes=c["shapes"])
    return matcalc.vjp(c["expr"], c["wrt"], upstream="G", shapes=c["shapes"])


# ------------------------------------------------------------------------ a tiny index evaluator

_TOKENS = [
    ("SUM", r"\\sum_\{([a-z0-9,]+)\}"),
    ("DELTA", r"\\delta_\{([a-z]\d*)([a-z]\d*)\}"),
    ("DSYM", r"\\mathrm\{d\}([A-Za-z])_\{([a-z0-9]+)\}"),
    ("NAMED", r"\{t_\{(\d+)\}\}_\{([a-z0-9]+)\}|t_\{(\d+)\}"),  # a piece named in the `where`
    ("NORM", r"\\left\\\|([A-Za-z])\\right\\\|"),
    ("LP", r"\\left\("),
    ("RP", r"\\right\)"),
    ("FRAC", r"\\frac\{"),
    ("FN", r"\\(exp|log|tanh|sigma|sin|cos)(?![a-z])"),
    ("GREEK", r"\{\\([a-z]+)\}(?:_\{([a-z]+)\})?"),
    ("POW", r"\^\{(\d+)\}"),
    ("LB", r"\{"),
    ("RB", r"\}"),
    ("SYM", r"([A-Za-z])(?:_\{([a-z0-9]+)\})?"),
    ("NUM", r"\d+(?:\.\d+)?"),
    ("OP", r"[+-]"),
]
_TOKEN_RE = re.compile("|".join(f"(?P<{k}>{p})" for k, p in _TOKENS))
_FACTOR_START = {"SUM", "DELTA", "DSYM", "NORM", "LP", "FRAC", "FN", "GREEK", "LB", "SYM", "NUM", "NAMED"}
_FN = {"exp": np.exp, "log": np.log, "tanh": np.tanh, "sin": np.sin, "cos": np.cos,
       "sigma": lambda z: 1 / (1 + np.exp(-z))}


def indices(s: str) -> tuple:
    """`kl1` -> ('k', 'l1'): an index is a letter and maybe a number."""
    return tuple(re.findall(r"[a-z]\d*", s))


def tokenize(s: str) -> list:
    out, pos = [], 0
    while pos < len(s):
        if s[pos] == " ":
            pos += 1
            continue
        m = _TOKEN_RE.match(s, pos)
        if not m:
            raise ValueError(f"cannot read {s[pos:pos + 20]!r}")
        kind = m.lastgroup
        groups = [g for g in m.groups()[m.re.groupindex[kind]:] if g is not None]
        out.append((kind, m.group(kind), groups))
        pos = m.end()
    return out


class Parser:
    """expr := ['-'] product (('+'|'-') product)*; a sum binds the rest of its product."""

    def __init__(self, s):
        self.toks, self.i = tokenize(s), 0

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else ("END", "", [])

    def take(self, kind=None):
        t = self.peek()
        assert kind is None or t[0] == kind, (kind, t)
        self.i += 1
        return t

    def parse(self):
        e = self.expr()
        assert self.peek()[0] == "END", self.peek()
        return e

    def expr(self):
        terms, sign = [], 1
        if self.peek()[:2] == ("OP", "-"):
            self.take()
            sign = -1
        terms.append((sign, self.product()))
        while self.peek()[0] == "OP":
            sign = 1 if self.take()[1] == "+" else -1
            terms.append((sign, self.product()))
        return ("add", terms)

    def product(self):
        factors = []
        while self.peek()[0] in _FACTOR_START:
            factors.append(self.factor())
        assert factors, self.peek()
        return ("mul", factors)

    def factor(self):
        kind, text, g = self.take()
        if kind == "NUM":
            f = ("num", float(text))
        elif kind == "SUM":
            f = ("sum", g[0].split(","), self.product())
        elif kind == "DELTA":
            f = ("delta", g[0], g[1])
        elif kind == "DSYM":
            f = ("dsym", g[0], indices(g[1]))
        elif kind == "NORM":
            f = ("norm", g[0])
        elif kind == "LP":
            f = self.expr()
            self.take("RP")
        elif kind == "FRAC":
            a = self.expr()
            self.take("RB")
            self.take("LB")
            b = self.expr()
            self.take("RB")
            f = ("frac", a, b)
        elif kind == "FN":
            self.take("LP")
            f = ("fn", g[0], self.expr())
            self.take("RP")
        elif kind == "LB":
            f = self.expr()
            self.take("RB")
        elif kind in ("SYM", "GREEK"):
            f = ("sym", g[0], indices(g[1]) if len(g) > 1 else ())
        elif kind == "NAMED":
            f = ("sym", "t" + g[0], indices(g[1]) if len(g) > 1 else ())
        while self.peek()[0] == "POW":
            f = ("pow", f, int(self.take()[2][0]))
        return f


def _range(node, k, arrays):
    """The size of index k: the axis of the first symbol inside `node` that carries it."""
    op = node[0]
    if op in ("sym", "dsym") and k in node[2]:
        arr = arrays["d" if op == "dsym" else "", node[1]]
        return np.shape(arr)[node[2].index(k)]
    for child in node[1:]:
        if isinstance(child, tuple) and child and isinstance(child[0], str):
            r = _range(child, k, arrays)
            if r is not None:
                return r
        elif isinstance(child, list):
            for c in child:
                c = c[1] if isinstance(c, tuple) and len(c) == 2 and isinstance(c[0], int) else c
                r = _range(c, k, arrays)
                if r is not None:
                    return r
    return None


def ev(node, env, arrays):
    op = node[0]
    if op == "num":
        return node[1]
    if op == "add":
        return sum(s * ev(t, env, arrays) for s, t in node[1])
    if op == "mul":
        out = 1.0
        for f in node[1]:
            out = out * ev(f, env, arrays)
        return out
    if op == "sum":
        idx, body = node[1], node[2]
        sizes = [_range(body, k, arrays) for k in idx]
        return sum(ev(body, dict(env, **dict(zip(idx, vals))), arrays)
                   for vals in itertools.product(*[range(n) for n in sizes]))
    if op == "delta":
        return float(env[node[1]] == env[node[2]])
    if op in ("sym", "dsym"):
        arr = np.asarray(arrays["d" if op == "dsym" else "", node[1]], dtype=float)
        assert arr.ndim == len(node[2]), node
        return float(arr[tuple(env[k] for k in node[2])])
    if op == "norm":
        return float(np.linalg.norm(arrays["", node[1]]))
    if op == "frac":
        return ev(node[1], env, arrays) / ev(node[2], env, arrays)
    if op == "fn":
        return float(_FN[node[1]](ev(node[2], env, arrays)))
    if op == "pow":
        return ev(node[1], env, arrays) ** node[2]
    raise AssertionError(node)


_LHS = [
    ("grad", re.compile(r"\\frac\{\\partial (?:f|L)(?:_\{(?P<out>[a-z]+)\})?\}"
                        r"\{\\partial [A-Za-z]_\{(?P<wrt>[a-z]+)\}\}$")),
    ("hess", re.compile(r"\\frac\{\\partial\^2 f\}\{\\partial [a-z]_\{(?P<out>[a-z])\} "
                        r"\\partial [a-z]_\{(?P<wrt>[a-z])\}\}$")),
    ("dF", re.compile(r"\\mathrm\{d\}F_\{(?P<out>[a-z]+)\}$")),
]


def truth(c, d, values, direction):
    """The derivative by central finite differences, arranged as out + wrt (mixed layout)."""
    shapes = dict(d.parsed.var_shapes)
    if d.upstream:
        shapes[d.upstream] = tuple(d.out_shape)

    def f(v):
        return np.asarray(matcalc.evaluate(c["expr"], v, shapes=shapes), dtype=float)

    if c["kind"] == "hessian":
        return hessian_fd(f, values, c["wrt"])
    if c["kind"] == "vjp":
        g = values[d.upstream]
        return jacobian_fd(lambda v: np.sum(g * f(v)), values, c["wrt"])
    jac = jacobian_fd(f, values, c["wrt"])
    if d.vec_form:
        return np.tensordot(jac, direction, axes=np.ndim(direction))
    return jac


def check_index_form(c, latex, seed=0):
    """Evaluate `latex` entry by entry and compare with finite differences."""
    d = derive(c)
    shapes = dict(d.parsed.var_shapes)
    if d.upstream:
        shapes[d.upstream] = tuple(d.out_shape)
    values, _ = sample_values(shapes, d.parsed.expr, seed)
    rng = np.random.default_rng(seed + 7)
    direction = rng.standard_normal(np.shape(values[c["wrt"]]))
    arrays = {("", k.lower() if len(k) == 1 else k): v for k, v in values.items()}
    assert len(arrays) == len(values), "two variables print as the same letter"
    arrays["d", c["wrt"].lower()] = direction
    latex, _, where = latex.partition(",\\quad \\text{where } ")
    for definition in where.split(",\\; ") if where else []:  # named pieces, children first
        define(definition, arrays)
    lhs, rhs = latex.split(" = ", 1)
    for kind, pat in _LHS:
        m = pat.match(lhs)
        if m:
            break
    else:
        raise AssertionError(f"unknown left-hand side {lhs!r}")
    free = list((m.group("out") or "") + (m.group("wrt") if kind != "dF" else ""))
    T = np.asarray(truth(c, d, values, direction), dtype=float)
    assert T.ndim == len(free), (T.shape, free)
    tree = Parser(rhs).parse()
    tol = dict(rel=1e-4, abs=1e-5) if c["kind"] == "hessian" else dict(rel=1e-6, abs=1e-7)
    for pos in itertools.product(*[range(n) for n in T.shape]):
        env = dict(zip(free, pos))
        assert ev(tree, env, arrays) == pytest.approx(T[pos], **tol), (latex, env)


def define(definition: str, arrays: dict):
    """`{t_{1}}_{ij} = …`: the named piece's entries, every one by brute force."""
    lhs, rhs = definition.split(" = ", 1)
    (_, _, g), = tokenize(lhs)
    name, free = "t" + g[0], indices(g[1]) if len(g) > 1 else ()
    tree = Parser(rhs).parse()
    sizes = [_range(tree, k, arrays) for k in free]
    out = np.zeros(sizes)
    for pos in itertools.product(*[range(n) for n in sizes]):
        out[pos] = ev(tree, dict(zip(free, pos)), arrays)
    arrays["", name] = out


# ------------------------------------------------------------------------ the tests

@pytest.mark.parametrize("c", _params("xfail"))
def test_index_latex(c):
    assert derive(c).index_latex == c["index"]


@pytest.mark.parametrize("c", [pytest.param(c, id=c["id"]) for c in INDEX])
def test_index_form_is_the_derivative(c):
    """The pinned string (for an xfail row: the one matcalc should print) is the derivative."""
    check_index_form(c, c["index"])


@pytest.mark.parametrize("c", _params("actual_xfail"))
def test_matcalc_index_form_is_the_derivative(c):
    """What matcalc prints now is true (even where it is not clean yet)."""
    check_index_form(c, derive(c).index_latex, seed=1)


@pytest.mark.parametrize("c", [pytest.param(c, id=c["id"]) for c in NAMED])
def test_index_form_with_named_pieces_is_the_derivative(c):
    latex = derive(c).index_latex
    assert "\\text{where }" in latex
    check_index_form(c, latex)


def test_enough_index_results():
    assert sum(1 for c in INDEX if not c["xfail"]) >= 6


def test_evaluator_rejects_a_wrong_entry():
    """The evaluator is not vacuous: a transposed index is caught."""
    c = next(c for c in INDEX if c["id"] == "lsq-by-W")
    with pytest.raises(AssertionError):
        check_index_form(c, c["index"].replace("- y_{kj}", "+ y_{kj}"))
    with pytest.raises(AssertionError):
        check_index_form(c, c["index"].replace("2 \\sum", "3 \\sum"))
