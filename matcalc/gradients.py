"""Several gradients of one scalar from one reverse sweep: `matcalc.grad` and its `Gradients`.

`grad("sum((tanh(X @ W1 + b1) @ W2 + b2 - Y)**2)", "W1,b1,W2,b2")` is a whole network's backprop:
the four adjoints come from one sweep (`engine.reverse_many`), so the pieces they share (the
adjoint of the hidden layer, δ) are one node each.  The gradients sit under one tuple-like root
node, so the printers' `where` sharing spans all of them: one block, as a textbook writes
backprop (δ₂ = …; ∂L/∂W₂ = …; δ₁ = …; ∂L/∂W₁ = …), and one generated function returning a
tuple, computing each shared piece once.
"""
from __future__ import annotations


from . import budget as B
from .api import _check_name, _check_upstream, _guard, _rendering, _setup, _shape_words
from .errors import MatcalcError
from .expr import Node, make

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported when a number is computed
    import numpy as np

#: a shared piece this big (in nodes) is named in a block of several gradients (smaller than a
#: single result's threshold: the adjoints δ that backprop names are short expressions)
BLOCK_SHARE_MIN_SIZE = 6


def split_names(wrts) -> list[str]:
    """`"W1,b1"`, `"W1, b1"` or `["W1", "b1"]` as a list of names (order kept, repeats dropped)."""
    if isinstance(wrts, str):
        names = [w.strip() for w in wrts.split(",")]
    else:
        try:
            names = list(wrts)
        except TypeError:
            raise MatcalcError(f"wrts must be a list of variable names, not {wrts!r}") from None
    if not names or any(isinstance(n, str) and not n for n in names):
        raise MatcalcError(f"wrts: give variable names separated by commas, not {wrts!r}")
    return list(dict.fromkeys(names))


def tuple_node(results: list[Node]) -> Node:
    """One root above several results, so `where` sharing and code generation span all of them."""
    return make("tuple", tuple(results), None, ())


class GradCheck(dict):
    """`Gradients.check()`: the CheckResult of each variable; `.ok` when every one is."""

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.values())

    def __str__(self) -> str:
        return "\n".join(f"{k}: {v}" for k, v in self.items())


class Gradients:
    """The gradients of a scalar (or the backprop rules of any expression, with `upstream`) by
    several variables: `g["W1"]` is each one's `Derivative`; `.text` / `.latex` one block with
    common `where` names; `.evaluate(values)` a dict keyed by name; `.to_python()` one function
    returning a tuple."""

    def __init__(self, parsed, derivatives: dict, upstream: str | None = None, warnings=()):
        self.parsed, self.derivatives, self.upstream = parsed, derivatives, upstream
        self.wrts = list(derivatives)
        self.kind = "vjp" if upstream else "grad"
        self.warnings: list[str] = list(warnings)
        self.root = tuple_node([d.result for d in derivatives.values()])
        self._text = self._latex = None
        self._budget = B.current_seconds()  # the budget of the call that made it, for rendering

    # ---- access
    def __getitem__(self, name: str):
        return self.derivatives[name]

    def __iter__(self):
        return iter(self.wrts)

    def __len__(self) -> int:
        return len(self.wrts)

    def keys(self):
        return self.derivatives.keys()

    def items(self):
        return self.derivatives.items()

    def values(self):
        return self.derivatives.values()

    # ---- rendering
    def _lhs_text(self, name: str) -> str:
        return f"d{'L' if self.upstream else 'f'}/d{name}"

    def _lhs_latex(self, name: str) -> str:
        from .render import _latex_symbol
        return f"\\frac{{\\partial {'L' if self.upstream else 'f'}}}{{\\partial {_latex_symbol(name)}}}"

    def _lines(self):
        """(shared nodes with their names, lines in order): each gradient right after the last
        binding it uses, so the block reads as backprop does."""
        from .render import _binding_names, shared_nodes
        shared = shared_nodes(self.root, BLOCK_SHARE_MIN_SIZE)
        names = dict(zip((id(s) for s in shared), _binding_names(self.root, len(shared))))
        rank = {id(s): i for i, s in enumerate(shared)}
        lines = []
        for name, d in self.derivatives.items():
            lines.append((_last_binding(d.result, rank), 1, len(lines), ("grad", name, d.result)))
        for s in shared:
            lines.append((rank[id(s)], 0, 0, ("bind", names[id(s)], s)))
        return names, [x[3] for x in sorted(lines, key=lambda t: t[:3])]

    @property
    @_rendering("rendering the text")
    def text(self) -> str:
        """The block in the input language: `t1 = …` bindings and `df/dW = …` lines."""
        if self._text is None:
            from .render import TextPrinter, dim_aliases
            names, lines = self._lines()
            shapes = {**self.parsed.var_shapes}
            declared = {x.name for shp in self.parsed.typer.declared.values() for x in shp if hasattr(x, "rigid")}
            alias = dim_aliases(self.root, shapes, declared)
            out = []
            for kind, name, node in lines:
                p = TextPrinter({k: v for k, v in names.items() if kind == "grad" or k != id(node)})
                p.dim_alias = alias
                out.append(f"{self._lhs_text(name) if kind == 'grad' else name} = {p.render(node)[0]}")
            self._text = "\n".join(out)
        return self._text

    @property
    @_rendering("rendering the LaTeX")
    def latex(self) -> str:
        """The block as one LaTeX `aligned` environment."""
        if self._latex is None:
            from .render import _latex_symbol, latex_printer
            names, lines = self._lines()
            out = []
            for kind, name, node in lines:
                p = latex_printer({k: v for k, v in names.items() if kind == "grad" or k != id(node)})
                lhs = self._lhs_latex(name) if kind == "grad" else _latex_symbol(name)
                out.append(f"{lhs} &= {p.render(node)[0]}")
            self._latex = "\\begin{aligned}\n" + " \\\\\n".join(out) + "\n\\end{aligned}"
        return self._latex

    @property
    def unicode(self) -> str:
        return "\n".join(f"∂{'L' if self.upstream else 'f'}/∂{k} = {d.unicode}" for k, d in self.items())

    @property
    def variable_shapes(self) -> dict[str, str]:
        out = {}
        for d in self.values():
            out.update(d.variable_shapes)
        return out

    def _repr_latex_(self) -> str:
        from .render import shapes_latex
        shapes = {}
        for d in self.values():
            shapes.update(d._shapes_used())
        return f"$${self.latex} \\qquad {shapes_latex(shapes)}$$"

    def __repr__(self) -> str:
        return f"Gradients({self.kind} of {self.parsed.source!r} by {', '.join(self.wrts)})"

    def to_json(self) -> dict:
        return {"kind": self.kind, "expr": self.parsed.source, "wrt": self.wrts, "text": self.text,
                "latex": self.latex, "variables": self.variable_shapes, "upstream": self.upstream,
                "gradients": {k: d.to_json() for k, d in self.items()}, "warnings": self.warnings}

    # ---- numbers
    def evaluate(self, values: dict) -> dict[str, np.ndarray]:
        """Each gradient's value at `values`, keyed by variable name."""
        return {k: d.evaluate(values) for k, d in self.items()}

    def check(self, seed: int = 0, exact: bool | None = None) -> GradCheck:
        """Each gradient against central finite differences (see `Derivative.check`)."""
        return GradCheck((k, d.check(seed=seed, exact=exact)) for k, d in self.items())

    @property
    def steps(self) -> dict[str, list]:
        """Each variable's derivation step by step."""
        return {k: d.steps for k, d in self.items()}

    @property
    def steps_latex(self) -> str:
        return "\n".join(d.steps_latex for d in self.values())

    # ---- code
    def to_python(self, backend: str = "numpy", name: str = "gradients") -> str:
        """Source of ONE function of the variables returning the tuple of gradients (in the order
        of `wrts`); a piece the gradients share is computed once."""
        from .codegen import generate
        return _guard(generate)(_CodeView(self), backend, name)

    def compile(self, backend: str = "numpy"):
        """A callable (keyword arguments or a dict of values) returning the tuple of gradients."""
        from .codegen import compile_function
        return _guard(compile_function)(_CodeView(self), backend)


class _CodeView:
    """What `codegen.generate` reads of a derivative, for the tuple of gradients."""

    vec_form = False
    dims = ()  # a tuple of results: no one array layout
    layout = "mixed"
    out_shape = ()

    def __init__(self, g: Gradients):
        first = next(iter(g.values()))
        self.parsed, self.upstream, self.result = g.parsed, g.upstream, g.root
        self.kind, self.wrt, self.wrts = "gradients", ", ".join(g.wrts), tuple(g.wrts)
        self.out_shape = first.out_shape


def _last_binding(root: Node, rank: dict) -> int:
    """The highest rank among the named nodes `root` uses directly (-1 if none)."""
    best, seen, stack = -1, set(), [root]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if id(n) in rank and n is not root:
            best = max(best, rank[id(n)])
            continue
        stack.extend(n.args)
    return best


@B.budgeted()
@_guard
def grad(expr: str, wrts, *, shapes: dict | None = None, assume=None, symmetric=None,
         syntax: str = "matcalc", upstream: str | None = None):
    """The gradients of a scalar `expr` by several variables (`["W1", "b1"]` or `"W1,b1"`) from
    one reverse sweep, as `matcalc.Gradients`: `g["W1"]` is each one's Derivative,
    `g.evaluate(values)` a dict, `g.text` / `g.latex` one block with common `where` names.
    With `upstream="G"` the expression may have any shape: the backprop rules (as `vjp`)."""
    names = split_names(wrts)
    if upstream is not None:
        _check_name(upstream, "upstream")
    parsed, xs, facts = _setup(expr, names, shapes, assume, symmetric, syntax, many=True)
    if upstream is not None:
        _check_upstream(parsed, upstream, names)
    elif parsed.expr.shape != ():
        src = parsed.source.strip()
        src = src if len(src) <= 40 else src[:37] + "..."
        raise MatcalcError(f"grad needs a scalar expression, but {src} is {_shape_words(parsed.expr.shape)}; "
                           f"give upstream= for the backprop rules, or use diff for a Jacobian")
    return gradients(parsed, names, facts, upstream, parsed.warnings)


def gradients(parsed, wrts: list[str], facts, upstream: str | None = None, warnings=()) -> Gradients:
    """The Gradients of `parsed.expr` by `wrts` (adjoint 1, or the variable `upstream`)."""
    from . import simplify as S
    from .api import Derivative
    from .engine import reverse_many
    f = parsed.expr
    xs = [S.var(w, parsed.var_shapes[w]) for w in wrts]
    seed = S.var(upstream, f.shape) if upstream else S.const(1)
    adj = reverse_many(f, xs, seed)
    ders = {}
    for x in xs:
        d = Derivative(kind="vjp" if upstream else "diff", parsed=parsed, wrt=x.attr, result=facts(adj[x.attr]),
                       layout="mixed", out_shape=f.shape, wrt_shape=x.shape, vec_form=False, upstream=upstream)
        d.warnings = [w for w in warnings if w.startswith(x.attr + " ")]
        ders[x.attr] = d
    return Gradients(parsed, ders, upstream, warnings)


__all__ = ["Gradients", "GradCheck", "grad", "gradients", "split_names"]
