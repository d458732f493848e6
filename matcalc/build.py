"""From text to the typed, interned expression graph: parse, infer shapes, build nodes."""
from __future__ import annotations

from dataclasses import dataclass, field

from . import simplify as S
from .errors import MatcalcError
from .expr import Node
from .grammar import Raw, parse_raw
from .ops import registry
from .shapes import Typer


@dataclass
class Parsed:
    """A parsed expression: its graph, the shapes of its variables, and the dimension names."""

    expr: Node
    var_shapes: dict[str, tuple]
    source: str
    typer: Typer = field(repr=False)
    facts: list = field(default_factory=list)
    names: tuple = ()  # the variables the text uses, in order of appearance
    #: the work budget (seconds) of the call that parsed it, for its lazy renderings
    budget: float | None = field(default=None, repr=False)

    @property
    def shape(self) -> tuple:
        return self.expr.shape

    @property
    def text(self) -> str:
        """The (canonicalised) expression in the input language."""
        from .budget import limit
        from .render import dim_aliases, to_text
        declared = {x.name for shp in self.typer.declared.values() for x in shp if hasattr(x, "rigid")}
        with limit(self.budget, "rendering the text"):
            return to_text(self.expr, dim_alias=dim_aliases(self.expr, self.var_shapes, declared))

    @property
    def latex(self) -> str:
        from .budget import limit
        from .render import to_latex
        with limit(self.budget, "rendering the LaTeX"):
            return to_latex(self.expr)

    @property
    def variable_shapes(self) -> dict[str, str]:
        from .expr import fmt_shape
        return {k: fmt_shape(v) for k, v in self.var_shapes.items()}

    def _repr_latex_(self) -> str:
        from .render import shapes_latex
        return f"$${self.latex} \\qquad {shapes_latex(self.var_shapes, self.expr.shape)}$$"

    def __repr__(self) -> str:
        from .expr import fmt_shape
        shapes = ", ".join(f"{k}: {v}" for k, v in self.variable_shapes.items())
        return f"<matcalc expression {self.text} : {fmt_shape(self.expr.shape)} ({shapes})>"


def parse_expr(text: str, shapes: dict | None = None, extra_vars: tuple[str, ...] = (),
               syntax: str = "matcalc", square=()) -> Parsed:
    """Parse `text`, type it (unifying dimensions) and build its canonical graph.

    `extra_vars` are names typed as variables even if the text does not use them
    (the variable a derivative is taken by); `square` names are square matrices unless
    `shapes` says otherwise (declared symmetric)."""
    if shapes is not None and not isinstance(shapes, dict):
        raise MatcalcError(f"shapes must be a dict of name -> dimensions, not {type(shapes).__name__}")
    raw = parse_raw(text, syntax)
    typer = Typer(text, shapes, syntax)
    typer.square = frozenset(square)
    typer.type(raw, {})
    names = tuple(typer.var_shapes)  # the variables the text itself uses
    for name in extra_vars:
        if name not in typer.var_shapes:
            typer.var_shapes[name] = typer.default_shape(name)
            typer.order.append(name)
    for name in typer.declared:
        if name not in typer.var_shapes:
            typer.var_shapes[name] = typer.declared[name]
    typer.finish(raw)
    builder = _Builder(typer)
    expr = builder.build(raw, {})
    var_shapes = {name: typer.final_shape(s) for name, s in typer.var_shapes.items()}
    from .budget import current_seconds
    parsed = Parsed(expr, var_shapes, text, typer, budget=current_seconds())
    parsed.names = names
    return parsed




class _Builder:
    """Turns a typed Raw tree into nodes through the smart constructors of `simplify`."""

    def __init__(self, typer: Typer):
        self.t = typer

    def build(self, r: Raw, env: dict) -> Node:
        return getattr(self, "b_" + r.op)(r, env)

    def b_num(self, r, env):
        return S.const(r.attr)

    def b_var(self, r, env):
        if r.attr in env:
            return env[r.attr]
        return S.var(r.attr, self.t.final_shape(self.t.var_shapes[r.attr]))

    def b_where(self, r, env):
        env = dict(env)
        for name, expr, _ in r.attr:
            env[name] = self.build(expr, env)
        return self.build(r.args[0], env)

    def _two(self, r, env):
        return self.build(r.args[0], env), self.build(r.args[1], env)

    def b_add(self, r, env):
        """A chain `a + b - c + ...` is one sum, built by one call (adding the terms one at a
        time re-collects every earlier term: quadratic in the number of terms)."""
        terms = []
        while r.op in ("add", "sub"):
            right = self.build(r.args[1], env)
            terms.append(right if r.op == "add" else S.neg(right))
            r = r.args[0]
        terms.append(self.build(r, env))
        return S.add(*reversed(terms))

    b_sub = b_add

    def b_mul(self, r, env):
        return S.mul(*self._two(r, env))

    def b_div(self, r, env):
        return S.div(*self._two(r, env))

    def b_pow(self, r, env):
        return S.pow_(*self._two(r, env))

    def b_matmul(self, r, env):
        return S.matmul(*self._two(r, env))

    def b_neg(self, r, env):
        return S.neg(self.build(r.args[0], env))

    def b_T(self, r, env):
        return S.T(self.build(r.args[0], env))

    def b_mcmul(self, r, env):
        a, b = self._two(r, env)
        return S.mul(a, b) if a.shape == () or b.shape == () else S.matmul(a, b)

    def b_mcpow(self, r, env):
        a, e = self._two(r, env)
        if a.shape == ():
            return S.pow_(a, e)
        return S.inv(a) if r.power == -1 else S.matmul(*[a] * r.power)

    def b_call(self, r, env):
        name = r.attr
        if name in ("norm2", "norm1", "vector", "matrix") and self.t.syntax == "matrixcalculus":
            if name in ("vector", "matrix"):
                shape = self.t.final_shape(r.shape)
                return S.mul(S.const(r.args[0].attr), S.ones(shape)) if r.args[0].attr != 0 else S.zeros(shape)
            a = self.build(r.args[0], env)
            return S.norm(a) if name == "norm2" else S.sum_(S.fn("abs", a))
        if name == "unvec":
            return S.unvec(self.build(r.args[0], env), *(self.t.final_dim(d) for d in r.dims))
        if name in ("eye", "zeros", "ones", "commutation"):
            dims = [self.t.final_dim(d) for d in r.dims]
            if name == "eye":
                return S.eye(dims[0])
            if name == "commutation":
                return S.commutation(*dims)
            shape = tuple(dims)
            return S.ones(shape) if name == "ones" else S.zeros(shape)
        # the registry's declaration of the function (an explicit table: no lookup by input text)
        spec = registry.functions()[name]
        args = [self.build(a, env) for a in r.args]
        if spec.op == "fn":
            return S.fn(name, args[0])
        return spec.build(self, r, args)
