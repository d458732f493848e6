"""A seeded random generator of well-shaped matcalc expressions (for the channel oracle).

`generate(seed)` returns a `Problem`: the text of an expression of the input language, the shapes
to pass (`shapes=` dict, or None for the naming defaults), and values for every variable.
Nothing here computes a derivative: the oracle compares matcalc's channels with each other.

Every subexpression has a *kind*, an abstract shape (KINDS): scalar `s`, vectors `n`, `m`, a row
vector `r` (1×n, written `x.T`), matrices `mn`, `nm`, `nn`, and `N`, a vector of m·n entries
(`vec`, `kron`).  An operator is one row of the table OPS:

    Op(name, kinds, build, weight=1.0, probe=None, products=False)

`build(g, kind, depth)` returns an `E` of that kind, drawing its operands with `g.expr(kind,
depth)` (or `g.positive`, `g.bounded`, `g.wellcond` where the operator needs a domain);
`probe` is a tiny input that must parse for the operator to be used (for language forms that
are merged in parallel: the row is simply skipped until they exist); `products` marks an
operator that creates product dimensions (m·n), which the naming defaults cannot infer, so it
is left out under default shapes.  Adding an operator is adding one row, e.g.

    Op("arctan", ALL, fn1("arctan")),
    Op("maximum", ALL, lambda g, k, d: call("maximum", g.expr(k, d), g.expr(k, d), kind=k),
       probe="maximum(u, v)"),

Values stay in each operator's domain by construction: logs and square roots of
`1 + E ** 2` or `2 + sin(E)`, divisions by those, inverses and determinants of `E @ E.T + 3 *
eye(n)` or `4 * eye(n) + tanh(E)`, arcsin of `0.9 * tanh(E)`; variables are drawn from a
standard normal distribution scaled by 0.7 (tests/public_cases.py `sample`, matcalc.verify
`sample_values` do the same with hints).
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np

SIZES = {"m": 2, "n": 3}
KINDS = {"s": (), "n": ("n",), "m": ("m",), "r": (1, "n"), "mn": ("m", "n"), "nm": ("n", "m"),
         "nn": ("n", "n"), "N": (("m", "n"),)}
VARS = {"s": ["alpha", "beta"], "n": ["u", "v"], "m": ["a", "b"], "mn": ["X", "Y"], "nm": ["Z"],
        "nn": ["P", "Q"]}
VAR_KIND = {name: k for k, names in VARS.items() for name in names}
TRANSPOSE = {"mn": "nm", "nm": "mn", "nn": "nn", "n": "r", "r": "n"}
COLS = {"mn": "n", "nm": "m", "nn": "n"}      # the vector that broadcasts over a matrix's rows
ROWS = {"mn": "m", "nm": "n", "nn": "n"}
MODES = ("symbolic", "concrete", "default")
ALL = tuple(KINDS)
VECTORS = ("n", "m", "N")
MATRICES = ("mn", "nm", "nn")

# precedence of the input language (Python's): operands are parenthesised only where needed
ADD, MUL, NEG, POW, ATOM = 1, 2, 3, 4, 6


@dataclass(frozen=True)
class E:
    """A generated subexpression: its text, kind and precedence."""
    text: str
    kind: str
    prec: int = ATOM

    def at(self, prec: int) -> str:
        """The text as an operand of an operator of precedence `prec`."""
        return self.text if self.prec >= prec else f"({self.text})"


@dataclass
class Op:
    """One operator of the language: which kinds it can produce and how to build it."""
    name: str
    kinds: tuple
    build: Callable
    weight: float = 1.0
    probe: str | None = None
    products: bool = False


@dataclass
class Problem:
    """A random expression with its shapes and values."""
    seed: int
    text: str
    kind: str
    mode: str
    shapes: dict | None
    values: dict
    variables: list = field(default_factory=list)

    def __str__(self) -> str:
        return f"seed {self.seed} [{self.mode}] {self.text}"


def call(fn: str, *args: E, kind: str, **kw) -> E:
    inner = ", ".join([a.text for a in args] + [f"{k}={v}" for k, v in kw.items()])
    return E(f"{fn}({inner})", kind)


def binop(x: E, op: str, y: E, kind: str) -> E:
    prec = {"+": ADD, "-": ADD, "*": MUL, "/": MUL, "@": MUL, "**": POW}[op]
    if op == "**":  # right-associative: the base binds tighter
        return E(f"{x.at(POW + 1)} ** {y.at(NEG)}", kind, POW)
    return E(f"{x.at(prec)} {op} {y.at(prec + 1)}", kind, prec)


class Gen:
    """Draws expressions with a `random.Random`; `dim(name)` writes a dimension for the mode."""

    def __init__(self, rng: random.Random, mode: str, ops: list[Op]):
        self.rng, self.mode = rng, mode
        self.by_kind: dict[str, list[Op]] = {k: [o for o in ops if k in o.kinds] for k in KINDS}
        self.bindings: list[tuple[str, E]] = []
        self.const_dims: set[str] = set()   # dimension names written in constants (eye(n), ...)

    def pick(self, seq):
        return seq[self.rng.randrange(len(seq))]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def dim(self, d: str) -> str:
        self.const_dims.add(d)
        if self.mode == "concrete":
            return str(SIZES[d])
        if self.mode == "default":
            return {"n": "len(u)", "m": "len(a)"}[d]
        return d

    def expr(self, kind: str, depth: int) -> E:
        if depth <= 0 or self.chance(0.06) or not self.by_kind[kind]:
            return self.leaf(kind)
        ops = self.by_kind[kind]
        op = self.rng.choices(ops, weights=[o.weight for o in ops])[0]
        return op.build(self, kind, depth - 1)

    def leaf(self, kind: str) -> E:
        if kind == "r":
            return E(f"{self.pick(VARS['n'])}.T", "r")
        if kind == "N":
            return call("vec", self.leaf("mn"), kind="N")
        if self.chance(0.08):
            return self.const(kind)
        return E(self.pick(VARS[kind]), kind)

    def const(self, kind: str) -> E:
        if kind == "s":
            return E(self.pick(["2", "0.5", "3"]), "s")
        if kind == "N":
            return call("vec", self.const("mn"), kind="N")
        if kind == "r":
            return E(f"{self.const('n').at(ATOM)}.T", "r")
        dims = [self.dim(d) for d in KINDS[kind]]
        self.const_dims.update(KINDS[kind])
        if kind == "nn" and self.chance(0.5):
            return E(f"eye({dims[0]})", kind)
        return E(f"{self.pick(['ones', 'zeros', 'ones'])}({', '.join(dims)})", kind)

    # ---- expressions with a domain
    def positive(self, kind: str, depth: int) -> E:
        """An expression of `kind` bounded away from zero: 1 + E ** 2 or 2 + sin(E)."""
        e = self.expr(kind, depth)
        if self.chance(0.5):
            return E(f"1 + {e.at(POW + 1)} ** 2", kind, ADD)
        return E(f"2 + sin({e.text})", kind, ADD)

    def bounded(self, kind: str, depth: int, c: str = "0.9") -> E:
        """An expression of `kind` with entries in (-c, c)."""
        return E(f"{c} * tanh({self.expr(kind, depth).text})", kind, MUL)

    def spd(self, depth: int) -> E:
        src = self.pick(["nn", "nm", "mn"])
        e = self.expr(src, depth)
        eye = f"3 * eye({self.dim('n')})"
        if src == "mn":
            return E(f"{e.at(ATOM)}.T @ {e.at(MUL + 1)} + {eye}", "nn", ADD)
        return E(f"{e.at(MUL)} @ {e.at(ATOM)}.T + {eye}", "nn", ADD)

    def wellcond(self, depth: int) -> E:
        """A well-conditioned n×n matrix with a positive determinant (spd, or 4 I + tanh(E))."""
        if self.chance(0.5):
            return self.spd(depth)
        f = self.pick(["tanh", "sin"])
        return E(f"4 * eye({self.dim('n')}) + {f}({self.expr('nn', depth).text})", "nn", ADD)


# ----------------------------------------------------------------------------- builders
def _operands(g: Gen, kind: str) -> tuple[str, str]:
    """Operand kinds of an element-wise binary operator: equal, a scalar, or a vector (or row)
    broadcast over a matrix's rows."""
    opts = [(kind, kind), (kind, kind), (kind, "s"), ("s", kind)]
    if kind in COLS:
        opts += [(kind, COLS[kind]), (COLS[kind], kind)]
        if COLS[kind] == "n":
            opts += [(kind, "r"), ("r", kind)]
    return g.pick(opts)


def arith(op: str) -> Callable:
    def build(g: Gen, kind: str, d: int) -> E:
        a, b = _operands(g, kind)
        return binop(g.expr(a, d), op, g.expr(b, d), kind)
    return build


def b_div(g: Gen, kind: str, d: int) -> E:
    a, b = _operands(g, kind)
    return binop(g.expr(a, d), "/", g.positive(b, d), kind)


def b_pow(g: Gen, kind: str, d: int) -> E:
    form = g.pick(["2", "3", "0.5", "-1", "var", "base"])
    if form in ("2", "3"):
        return binop(g.expr(kind, d), "**", E(form, "s"), kind)
    if form in ("0.5", "-1"):
        return binop(g.positive(kind, d), "**", E(form, "s"), kind)
    if form == "var":
        a, b = _operands(g, kind)
        return binop(g.positive(a, d), "**", g.bounded(b, d, "1.5"), kind)
    return binop(E(g.pick(["2", "0.5"]), "s"), "**", g.expr(kind, d), kind)


def b_neg(g: Gen, kind: str, d: int) -> E:
    e = g.expr(kind, d)
    return E(f"-{e.at(NEG)}", kind, NEG)


def fn1(name: str, domain: str = "any") -> Callable:
    """An element-wise function; `domain`: any, positive, bounded (|x| < 0.9), nonneg (x > -1)."""
    def build(g: Gen, kind: str, d: int) -> E:
        if domain == "positive":
            x = g.positive(kind, d)
        elif domain == "bounded":
            x = g.bounded(kind, d)
        elif domain == "tan":
            x = E(f"tanh({g.expr(kind, d).text})", kind)
        elif domain == "square":
            x = E(f"{g.expr(kind, d).at(POW + 1)} ** 2", kind, POW)
        else:
            x = g.expr(kind, d)
        return call(name, x, kind=kind)
    return build


def b_transpose(g: Gen, kind: str, d: int) -> E:
    e = g.expr(TRANSPOSE[kind], d)
    return E(f"{e.at(ATOM)}.T", kind)


# operand kinds of a matrix product giving each kind (vectors are columns, `r` a row)
MATMUL = {
    "s": [("r", "n"), ("r", "nn", "n"), ("r", "nm", "m")],
    "n": [("nm", "m"), ("nn", "n"), ("nn", "nn", "n")],
    "m": [("mn", "n"), ("mn", "nn", "n")],
    "r": [("r", "nn"), ("r", "nm", "mn")],
    "mn": [("mn", "nn"), ("m", "r"), ("mn", "nm", "mn"), ("mn", "n", "r")],
    "nm": [("nn", "nm"), ("n", "m_r"), ("nm", "mn", "nm")],
    "nn": [("nm", "mn"), ("nn", "nn"), ("n", "r"), ("nn", "nn", "nn"), ("nm", "mn", "nn")],
}


def b_matmul(g: Gen, kind: str, d: int) -> E:
    kinds = g.pick(MATMUL[kind])
    parts = []
    for k in kinds:
        if k == "m_r":
            e = g.expr("m", d)
            parts.append(E(f"{e.at(ATOM)}.T", "r_m"))
        else:
            parts.append(g.expr(k, d))
    text = parts[0].at(MUL) + "".join(f" @ {p.at(MUL + 1)}" for p in parts[1:])
    return E(text, kind, MUL)


def b_row_back(g: Gen, kind: str, d: int) -> E:
    """(w.T @ M).T: a row vector transposed back into a column."""
    w, m = {"n": ("m", "mn"), "m": ("n", "nm")}[kind]
    return E(f"({g.expr(w, d).at(ATOM)}.T @ {g.expr(m, d).at(MUL + 1)}).T", kind)


def b_reduce_all(name: str) -> Callable:
    def build(g: Gen, kind: str, d: int) -> E:
        return call(name, g.expr(g.pick(["n", "m", "r", "mn", "nm", "nn"]), d), kind="s")
    return build


def b_reduce_axis(name: str) -> Callable:
    """sum / logsumexp / mean of a matrix along an axis: axis=0 gives the column vector of the
    columns, axis=1 of the rows."""
    def build(g: Gen, kind: str, d: int) -> E:
        src, axis = g.pick([(m, 0) for m in MATRICES if COLS[m] == kind] +
                           [(m, 1) for m in MATRICES if ROWS[m] == kind])
        return call(name, g.expr(src, d), kind=kind, axis=axis)
    return build


def b_tr(g: Gen, kind: str, d: int) -> E:
    if g.chance(0.5):
        return call("tr", g.expr("nn", d), kind="s")
    return E(f"tr({g.expr('mn', d).at(MUL)} @ {g.expr('nm', d).at(MUL + 1)})", "s")


def b_det(g: Gen, kind: str, d: int) -> E:
    return call("det", g.expr("nn", d) if g.chance(0.3) else g.wellcond(d), kind="s")


def b_logdet(g: Gen, kind: str, d: int) -> E:
    return call("logdet", g.wellcond(d), kind="s")


def b_inv(g: Gen, kind: str, d: int) -> E:
    return call("inv", g.wellcond(d), kind="nn")


def b_norm(g: Gen, kind: str, d: int) -> E:
    return call("norm", g.positive(g.pick(["n", "m", "mn", "nn"]), d), kind="s")


def b_dot(g: Gen, kind: str, d: int) -> E:
    k = g.pick(["n", "m"])
    return call("dot", g.expr(k, d), g.expr(k, d), kind="s")


def b_form(g: Gen, kind: str, d: int) -> E:
    """x.T @ M @ y and x.T @ inv(S) @ x."""
    if g.chance(0.5):
        x, m, y = g.expr("m", d), g.expr("mn", d), g.expr("n", d)
        return E(f"{x.at(ATOM)}.T @ {m.at(MUL + 1)} @ {y.at(MUL + 1)}", "s", MUL)
    x, s = g.expr("n", d), g.wellcond(d)
    return E(f"{x.at(ATOM)}.T @ inv({s.text}) @ {x.at(MUL + 1)}", "s", MUL)


def b_diag(g: Gen, kind: str, d: int) -> E:
    return call("diag", g.expr("nn" if kind == "n" else "n", d), kind=kind)


def b_softmax(name: str) -> Callable:
    def build(g: Gen, kind: str, d: int) -> E:
        if kind in ("n", "m"):
            return call(name, g.expr(kind, d), kind=kind)
        return call(name, g.expr(kind, d), kind=kind, axis=g.pick([0, 1]))
    return build


def b_lse(g: Gen, kind: str, d: int) -> E:
    return call("logsumexp", g.expr(g.pick(["n", "m"]), d), kind="s")


def b_const(g: Gen, kind: str, d: int) -> E:
    """A constant times an expression: eye / ones / zeros with dimensions of the mode."""
    c = g.const(kind)
    return binop(c, g.pick(["*", "+"]), g.expr(kind, d), kind)


def b_vec(g: Gen, kind: str, d: int) -> E:
    return call("vec", g.expr("mn", d), kind="N")


def b_kron_vec(g: Gen, kind: str, d: int) -> E:
    """Vectors of m·n entries from Kronecker products: kron(u, a) is n·m, kron(P, M) @ vec(X)."""
    form = g.pick(["uv", "apply", "apply_outer"])
    if form == "uv":
        return call("kron", g.expr("n", d), g.expr("m", d), kind="N")
    if form == "apply":
        return E(f"kron({g.expr('nn', d).text}, eye({g.dim('m')})) @ vec({g.expr('mn', d).text})", "N", MUL)
    a, b = g.expr("m", d), g.expr("m", d)
    return E(f"kron({g.expr('nn', d).text}, {a.at(MUL)} @ {b.at(ATOM)}.T) @ vec({g.expr('mn', d).text})",
             "N", MUL)


def b_commutation(g: Gen, kind: str, d: int) -> E:
    return E(f"commutation({g.dim('m')}, {g.dim('n')}) @ vec({g.expr('mn', d).text})", "N", MUL)


def b_vec_scalar(g: Gen, kind: str, d: int) -> E:
    form = g.pick(["dot", "tr"])
    if form == "dot":
        return call("dot", g.expr("N", d), g.expr("N", d), kind="s")
    return E(f"tr(kron({g.expr('nn', d).text}, {g.expr('nn', d).text}))", "s")


def b_where(g: Gen, kind: str, d: int) -> E:
    """A named shared piece: `... h1 ... h1 ... where h1 = E` (the binding is a top-level clause)."""
    e = g.expr(kind, d)
    name = f"h{len(g.bindings) + 1}"
    g.bindings.append((name, e))
    return E(name, kind)


OPS: list[Op] = [
    Op("add", ALL, arith("+")), Op("sub", ALL, arith("-")), Op("mul", ALL, arith("*")),
    Op("div", ALL, b_div), Op("pow", ALL, b_pow, 0.7), Op("neg", ALL, b_neg, 0.4),
    Op("exp", ALL, fn1("exp"), 0.4), Op("log", ALL, fn1("log", "positive"), 0.4),
    Op("sin", ALL, fn1("sin"), 0.4), Op("cos", ALL, fn1("cos"), 0.4),
    Op("tan", ALL, fn1("tan", "tan"), 0.3), Op("tanh", ALL, fn1("tanh"), 0.4),
    Op("sigmoid", ALL, fn1("sigmoid"), 0.4), Op("relu", ALL, fn1("relu"), 0.3),
    Op("abs", ALL, fn1("abs"), 0.3), Op("sqrt", ALL, fn1("sqrt", "positive"), 0.3),
    Op("softplus", ALL, fn1("softplus"), 0.3),
    Op("sign", ALL, fn1("sign"), 0.1), Op("step", ALL, fn1("step"), 0.1),
    # functions of the second round: used as soon as the language has them
    Op("arcsin", ALL, fn1("arcsin", "bounded"), 0.2, probe="arcsin(u)"),
    Op("arccos", ALL, fn1("arccos", "bounded"), 0.2, probe="arccos(u)"),
    Op("arctan", ALL, fn1("arctan"), 0.2, probe="arctan(u)"),
    Op("sinh", ALL, fn1("sinh"), 0.2, probe="sinh(u)"),
    Op("cosh", ALL, fn1("cosh"), 0.2, probe="cosh(u)"),
    Op("arcsinh", ALL, fn1("arcsinh"), 0.2, probe="arcsinh(u)"),
    Op("log1p", ALL, fn1("log1p", "square"), 0.2, probe="log1p(u)"),
    Op("expm1", ALL, fn1("expm1"), 0.2, probe="expm1(u)"),
    Op("maximum", ALL, lambda g, k, d: call("maximum", *(g.expr(x, d) for x in _operands(g, k)), kind=k),
       0.3, probe="maximum(u, v)"),
    Op("minimum", ALL, lambda g, k, d: call("minimum", *(g.expr(x, d) for x in _operands(g, k)), kind=k),
       0.3, probe="minimum(u, v)"),
    Op("max", ("s",), b_reduce_all("max"), 0.3, probe="max(X)"),
    Op("min", ("s",), b_reduce_all("min"), 0.3, probe="min(X)"),
    Op("log_softmax", ("n", "m", "mn", "nm", "nn"), b_softmax("log_softmax"), 0.3, probe="log_softmax(u)"),
    Op("mean_axis", ("n", "m"), b_reduce_axis("mean"), 0.3, probe="mean(X, axis=0)"),
    Op("norm1", ("s",), lambda g, k, d: E(f"norm({g.expr(g.pick(['n', 'm']), d).text}, 1)", "s"), 0.2,
       probe="norm(u, 1)"),
    # structure
    Op("transpose", ("n", "r", "mn", "nm", "nn"), b_transpose, 0.7),
    Op("matmul", ("s", "n", "m", "r", "mn", "nm", "nn"), b_matmul, 1.5),
    Op("row_back", ("n", "m"), b_row_back, 0.3),
    Op("const", ALL, b_const, 0.2),
    Op("where", ALL, b_where, 0.15),
    # reductions and matrix functions
    Op("sum", ("s",), b_reduce_all("sum")), Op("mean", ("s",), b_reduce_all("mean"), 0.5),
    Op("sum_axis", ("n", "m"), b_reduce_axis("sum"), 0.6),
    Op("logsumexp_axis", ("n", "m"), b_reduce_axis("logsumexp"), 0.3),
    Op("tr", ("s",), b_tr), Op("det", ("s",), b_det, 0.5), Op("logdet", ("s",), b_logdet, 0.5),
    Op("inv", ("nn",), b_inv, 0.5), Op("norm", ("s",), b_norm, 0.5), Op("dot", ("s",), b_dot),
    Op("form", ("s",), b_form), Op("diag", ("n", "nn"), b_diag, 0.4),
    Op("softmax", ("n", "m", "mn", "nm", "nn"), b_softmax("softmax"), 0.5),
    Op("logsumexp", ("s",), b_lse, 0.5),
    # vec / kron / commutation: product dimensions
    Op("vec", ("N",), b_vec, products=True),
    Op("kron", ("N",), b_kron_vec, products=True),
    Op("commutation", ("N",), b_commutation, 0.5, products=True),
    Op("vec_scalar", ("s",), b_vec_scalar, 0.4, products=True),
]


@lru_cache(maxsize=None)
def _parses(probe: str) -> bool:
    import matcalc
    try:
        matcalc.parse(probe)
        return True
    except matcalc.MatcalcError:
        return False


def available_ops(mode: str) -> list[Op]:
    """The operators of OPS the installed matcalc has (and, under default shapes, that it can infer)."""
    return [o for o in OPS if (o.probe is None or _parses(o.probe)) and not (mode == "default" and o.products)]


def shapes_for(names, mode: str) -> dict | None:
    if mode == "default":
        return None
    out = {}
    for name in names:
        dims = KINDS[VAR_KIND[name]]
        out[name] = tuple(SIZES[x] for x in dims) if mode == "concrete" else dims
    return out


def values_for(rng: np.random.Generator) -> dict:
    """Values of every variable of VARS (scaled standard normal)."""
    out = {}
    for name, kind in VAR_KIND.items():
        shp = tuple(SIZES[x] for x in KINDS[kind])
        v = 0.7 * rng.standard_normal(shp)
        out[name] = float(v) if shp == () else v
    return out


def generate(seed: int, kind: str | None = None, depth: int | None = None) -> Problem:
    """A random well-shaped expression of `kind` (random if None), its shapes and its values."""
    rng = random.Random(seed)
    mode = MODES[seed % len(MODES)]
    ops = available_ops(mode)
    kinds = ["s", "s", "s", "n", "m", "r", "mn", "nm", "nn"] + (["N"] if mode != "default" else [])
    want_kind = kind
    while True:  # until every dimension a constant names is the size of some variable
        g = Gen(rng, mode, ops)
        kind = want_kind or rng.choice(kinds)
        e = g.expr(kind, depth if depth is not None else rng.randint(2, 5))
        text = e.text
        if g.bindings:
            text += " where " + "; ".join(f"{n} = {b.text}" for n, b in g.bindings)
        names = sorted({t for t in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text) if t in VAR_KIND})
        covered = {x for v in names for d in KINDS[VAR_KIND[v]] for x in (d if isinstance(d, tuple) else (d,))}
        if mode != "symbolic" or g.const_dims <= covered:
            break
    return Problem(seed, text, kind, mode, shapes_for(names, mode), values_for(np.random.default_rng(seed)), names)
