"""The public API of API.md: diff, hessian, vjp, evaluate, parse and the Derivative they return."""
from __future__ import annotations

import functools
import inspect
import sys
from typing import TYPE_CHECKING

from . import budget as B
from . import simplify as S
from .build import Parsed, parse_expr
from .engine import forward, reverse, vec_jacobian
from .errors import InternalError, MatcalcError, ShapeError
from .expr import Node, fmt_shape, numel
from .render import to_latex, to_text
from .shapes import NAME_RE

if TYPE_CHECKING:  # numpy is imported when a number is computed, not for a derivative's text
    import numpy as np

LAYOUTS = ("mixed", "numerator", "denominator")

if sys.getrecursionlimit() < 20000:
    sys.setrecursionlimit(20000)


def _shape_words(shape: tuple) -> str:
    return f"a vector of {shape[0]} entries" if len(shape) == 1 else fmt_shape(shape)


def _guard(fn):
    """Every failure leaves the API as a MatcalcError (bad input) — never another exception."""
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:  # a wrong keyword is the caller's mistake, not an internal error
            sig.bind(*args, **kwargs)
        except TypeError as e:
            raise MatcalcError(f"{fn.__name__}: {e}") from None
        try:
            return fn(*args, **kwargs)
        except MatcalcError:
            raise
        except RecursionError:
            raise MatcalcError("the expression nests too deeply to process") from None
        except MemoryError:
            raise MatcalcError("the expression is too large to process") from None
        except Exception as e:  # noqa: BLE001 - the contract: nothing else escapes
            raise InternalError(f"internal error ({type(e).__name__}: {e}); please report it") from e
    return wrapper


def _rendering(what: str):
    """A lazy property of a Derivative runs under a budget of its own, as long as the call that
    made the Derivative had (the rendering happens after that call returned)."""
    def deco(fn):
        @functools.wraps(fn)
        def wrapper(self, *args, **kwargs):
            with B.limit(self._budget, what):
                return fn(self, *args, **kwargs)
        return wrapper
    return deco


def array_shape(shape: tuple) -> tuple:
    """A value's shape as API.md's arrays see it: a row vector (1×n) is its 1-D vector (jax's
    `jacobian` of the same function written with 1-D vectors, where `x.T` is `x`)."""
    return (shape[1],) if len(shape) == 2 and shape[0] == 1 else tuple(shape)


def _sympy_dim(d):
    import sympy
    if isinstance(d, tuple):
        return sympy.Mul(*[_sympy_dim(f) for f in d])
    if isinstance(d, int):
        return sympy.Integer(d)
    return sympy.Symbol(d, positive=True, integer=True)


class Derivative:
    """A derivative: `.latex`, `.text`, `.shape`, `.evaluate(values)` (see API.md).

    `result` is the derivative as an expression node: the gradient (shape of the variable)
    for a scalar, the derivative itself for a scalar variable, and otherwise the
    vec-Jacobian ∂vec(F)/∂vec(X)ᵀ (column-major vec), which `evaluate` reshapes to
    `out_shape + wrt_shape`."""

    def __init__(self, *, kind: str, parsed: Parsed, wrt: str, result: Node, layout: str,
                 out_shape: tuple, wrt_shape: tuple, vec_form: bool, differential: Node | None = None,
                 upstream: str | None = None):
        self.kind, self.parsed, self.wrt, self.result = kind, parsed, wrt, result
        self.layout, self.out_shape, self.wrt_shape = layout, out_shape, wrt_shape
        self.vec_form, self.differential, self.upstream = vec_form, differential, upstream
        self._text = self._latex = None
        self._budget = B.current_seconds()  # the budget of the call that made it, for rendering
        self.facts: list = list(getattr(parsed, "facts", []))       # declared (fact, name) pairs
        #: what a user may not expect (a variable the expression does not use, an unused layout)
        self.warnings: list[str] = [w for w in getattr(parsed, "warnings", []) if w.startswith(wrt + " ")]
        self.fact_names: list = [f"{k}={v}" for k, v in self.facts]

    # ---- the contract
    @property
    @_rendering("rendering the text")
    def text(self) -> str:
        """The derivative in the input language (parseable; `where` names repeated pieces)."""
        if self._text is None:
            from .render import dim_aliases
            # the variable's dims first, then those of the variables the result uses, then the rest
            # (a dimension of `A` in `A - A` folded to zeros is still read off `A`)
            shapes = {self.wrt: self.wrt_shape, **self._shapes_used(), **self.parsed.var_shapes}
            declared = {x.name for shp in self.parsed.typer.declared.values() for x in shp if hasattr(x, "rigid")}
            self._text = to_text(self.result, dim_alias=dim_aliases(self.result, shapes, declared))
        return self._text

    def _shapes_used(self) -> dict:
        """The shapes of the variables this derivative is about (not every name in `shapes=`)."""
        used = self.parsed.expr.vars | {self.wrt} | ({self.upstream} if self.upstream else set())
        out = {k: v for k, v in self.parsed.var_shapes.items() if k in used}  # in order of appearance
        if self.upstream:
            out[self.upstream] = self.out_shape
        return out

    @property
    @_rendering("rendering the LaTeX")
    def latex(self) -> str:
        """LaTeX of the derivative."""
        if self._latex is None:
            self._latex = to_latex(self.result)
        return self._latex

    @property
    def dims(self) -> tuple:
        """The derivative's shape as matcalc dimensions (ints and names)."""
        if self.kind == "vjp":
            return tuple(self.wrt_shape)
        out = array_shape(self.out_shape) if self.kind == "diff" else tuple(self.out_shape)
        if self.layout != "mixed" and len(out) + len(self.wrt_shape) <= 2:
            return array_shape(self.result.shape)
        return out + tuple(self.wrt_shape)

    @property
    def shape(self) -> tuple:
        """The derivative's shape in the chosen layout, as sympy dimensions."""
        return tuple(_sympy_dim(d) for d in self.dims)

    @_guard
    def evaluate(self, values: dict) -> np.ndarray:
        """The derivative's value at `values` (name -> number / 1-D / 2-D array)."""
        var_shapes = dict(self.parsed.var_shapes)
        if self.upstream is not None:
            var_shapes[self.upstream] = self.out_shape
        import numpy as np

        from .evaluate import bind_values, evaluate_node
        env, dims = bind_values(var_shapes, values)
        val = evaluate_node(self.result, env, dims)
        if self.vec_form:
            shape = tuple(dims(d) for d in self.dims)
            val = np.asarray(val).reshape(shape, order="F")
        elif self.kind == "diff" and np.ndim(val) > len(self.dims):
            val = np.asarray(val).reshape(tuple(dims(d) for d in self.dims))  # a row output: 1-D
        return np.asarray(val, dtype=float)

    # ---- beyond the contract
    @property
    def variable_shapes(self) -> dict[str, str]:
        """The inferred shape of each variable, as text (e.g. {'X': 'm×n'})."""
        return {k: fmt_shape(v) for k, v in self._shapes_used().items()}

    @property
    @_rendering("rendering the differential")
    def differential_latex(self) -> str | None:
        """The differential form dF = ... (forward mode), when it was computed."""
        if self.differential is None:
            return None
        return f"\\mathrm{{d}}F = {to_latex(self.differential)}"

    @property
    @_rendering("rendering the differential")
    def differential_text(self) -> str | None:
        return None if self.differential is None else "dF = " + to_text(self.differential, share=False)

    @property
    @_rendering("rendering the differential")
    def differential_unicode(self) -> str | None:
        from .render import to_unicode
        return None if self.differential is None else "dF = " + to_unicode(self.differential)

    @property
    @_rendering("the steps")
    def steps(self) -> list:
        """The derivation step by step: a list of `matcalc.steps.Step` (rule, latex, text, shapes)."""
        if getattr(self, "_steps", None) is None:
            self._steps = _guard(self._make_steps)()
        return self._steps

    @property
    def steps_latex(self) -> str:
        """The derivation as one aligned LaTeX block."""
        from .steps import steps_latex
        return steps_latex(self.steps)

    def _make_steps(self) -> list:
        from .steps import derivation_steps
        return derivation_steps(self)

    @property
    @_rendering("the index form")
    def index_latex(self) -> str:
        """One entry of the derivative in index notation (sums over indices)."""
        from .index import index_latex
        return _guard(index_latex)(self)

    @property
    @_rendering("rendering the unicode text")
    def unicode(self) -> str:
        """The derivative in terminal-friendly notation: `2 Xᵀ (X w − y)`."""
        from .render import to_unicode
        return to_unicode(self.result)

    @_rendering("rendering the JSON")
    def to_json(self) -> dict:
        """The derivative, its shape, the inferred shapes and the LaTeX together (for tools)."""
        from .expr import fmt_dim
        return {"kind": self.kind, "expr": self.parsed.source, "wrt": self.wrt, "layout": self.layout,
                "text": self.text, "latex": self.latex, "unicode": self.unicode,
                "shape": [fmt_dim(d) for d in self.dims], "variables": self.variable_shapes,
                "vec_jacobian": self.vec_form, "differential": self.differential_text,
                "warnings": list(self.warnings)}

    @_guard
    def check(self, seed: int = 0, exact: bool | None = None, backend: str | None = None):
        """Compare with finite differences (Richardson-extrapolated central differences) at random
        values of the inferred shapes; with `backend` ("numpy", "torch", "jax") also the generated
        code; and exactly with sympy: `exact=None` (default) within a 0.5 s budget (skipped, with a
        note, when larger), True always, False never. Returns a CheckResult (`.ok`, `str()`)."""
        from .verify import check
        return check(self, seed=seed, exact=exact, backend=backend)

    def to_python(self, backend: str = "numpy", name: str = "derivative") -> str:
        """Source of a standalone function of the variables computing this derivative."""
        from .codegen import generate
        return _guard(generate)(self, backend, name)

    def compile(self, backend: str = "numpy"):
        """A callable computing this derivative: values by position in the order of the printed
        source's parameters (alphabetical), by keyword, or as one dict."""
        from .codegen import compile_function
        return _guard(compile_function)(self, backend)

    def _lhs(self) -> str:
        from .render import _latex_symbol
        x = _latex_symbol(self.wrt)
        f = "f"
        if self.kind == "vjp":
            return f"\\frac{{\\partial L}}{{\\partial {x}}}"
        if self.kind == "hessian":
            if self.vec_form:
                return f"\\frac{{\\partial^2 f}}{{\\partial \\operatorname{{vec}}({x})\\, \\partial \\operatorname{{vec}}({x})^{{T}}}}"
            return f"\\frac{{\\partial^2 f}}{{\\partial {x}\\, \\partial {x}^{{T}}}}" if self.wrt_shape \
                else f"\\frac{{\\partial^2 f}}{{\\partial {x}^2}}"
        if self.vec_form:
            return f"\\frac{{\\partial \\operatorname{{vec}}(F)}}{{\\partial \\operatorname{{vec}}({x})^{{T}}}}"
        return f"\\frac{{\\partial {f}}}{{\\partial {x}}}"

    @property
    def equation_latex(self) -> str:
        """`∂f/∂x = ...` as one LaTeX equation."""
        return f"{self._lhs()} = {self.latex}"

    def _repr_latex_(self) -> str:
        from .render import shapes_latex
        return f"$${self.equation_latex} \\qquad {shapes_latex(self._shapes_used())}$$"

    def __repr__(self) -> str:
        return f"Derivative({self.kind} of {self.parsed.source!r} by {self.wrt}: {self.text})"


def _check_name(name, what: str):
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise MatcalcError(f"{what} must be a variable name like X or w, not {name!r}")
    from .grammar import check_name_length
    check_name_length(name, what)
    if name == "axis":
        raise MatcalcError(f"{what}: axis is a keyword (axis=), not a variable")


def _check_layout(layout):
    if layout not in LAYOUTS:
        raise MatcalcError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")


def _setup(expr: str, wrt, shapes, assume=None, symmetric=None, syntax="matcalc", many: bool = False):
    """(parsed expression, the variable node, a function that applies the declared facts).
    With `many`, `wrt` is a list of names and the second item the list of variable nodes."""
    from .assume import make_rewrite, parse_facts
    wrts = list(wrt) if many else [wrt]
    for w in wrts:
        _check_name(w, "wrt")
    facts = parse_facts(assume, symmetric)
    parsed = parse_expr(expr, shapes, extra_vars=tuple(wrts), syntax=syntax,
                        square=[n for f, n in facts if f == "symmetric"])
    parsed.facts = facts
    parsed.warnings = [w for x in wrts for w in _absent_warning(parsed, x)]
    rewrite = make_rewrite(parsed.facts, parsed.var_shapes)
    if rewrite is not None:
        parsed.expr = S.rebuild(parsed.expr, rewrite)
    xs = [S.var(w, parsed.var_shapes[w]) for w in wrts]
    return parsed, (xs if many else xs[0]), \
        (lambda n: n if rewrite is None or n is None else S.rebuild(n, rewrite))


def _absent_warning(parsed: Parsed, wrt: str) -> list[str]:
    """A warning when `wrt` does not occur in the expression (a misspelt name gives zeros)."""
    if wrt in parsed.names:
        return []
    from .grammar import suggest
    names = [n for n in parsed.names if n != "axis"]
    if not names:
        return [f"{wrt} does not occur in the expression, which has no variables: its derivative is zero"]
    hint = ""
    for n in names:  # a case slip first (w for W), then a small edit distance
        if n.lower() == wrt.lower():
            hint = f"; did you mean {n}?"
            break
    hint = hint or suggest(wrt, names) or \
        next((f"; did you mean {n}?" for n in names if len(wrt) < 3 and _near(wrt, n)), "")
    return [f"{wrt} does not occur in the expression (its variables: {', '.join(names)}), "
            f"so its derivative is zero{hint}"]


def _near(a: str, b: str) -> bool:
    from .grammar import _distance
    return _distance(a.lower(), b.lower()) <= 1


def _jacobian(f: Node, x: Node):
    """(result, vec_form, differential) for a non-scalar f by a non-scalar x."""
    seed = S.dvar(x.attr, x.shape)
    df = forward(f, {x.attr: seed})
    if df is None:
        rows, cols = numel(f.shape), numel(x.shape)
        z = S.zeros((rows, cols)) if cols != 1 else S.zeros((rows,))
        return z, True, S.zeros(f.shape)
    return vec_jacobian(df, seed), True, df


def derive(f: Node, x: Node) -> tuple[Node, bool, Node | None]:
    """(derivative node, is it a vec-Jacobian, differential) of f by variable x, mixed layout."""
    if f.shape == ():
        return reverse(f, x, S.const(1)), False, None
    if x.shape == ():
        df = forward(f, {x.attr: S.const(1)})
        return (S.zeros(f.shape) if df is None else df), False, None
    return _jacobian(f, x)


@B.budgeted()
@_guard
def diff(expr: str, wrt: str, *, shapes: dict | None = None, layout: str = "mixed",
         assume=None, symmetric=None, syntax: str = "matcalc") -> Derivative:
    """First derivative of `expr` by the variable `wrt` (API.md).

    `symmetric`: names of square matrices that are symmetric; `assume`: facts such as
    "rows_sum_to_one=Y" (see `matcalc.assume`)."""
    _check_layout(layout)
    parsed, x, facts = _setup(expr, wrt, shapes, assume, symmetric, syntax)
    f = parsed.expr
    result, vec_form, differential = derive(f, x)
    result, differential = facts(result), facts(differential)
    out = array_shape(f.shape)
    if vec_form and len(out) == 1 and len(x.shape) == 1:
        vec_form = False  # the m×n Jacobian is already out_shape + wrt_shape
    if layout == "numerator" and f.shape == () and len(x.shape) == 2:
        result = S.T(result)
    elif layout == "denominator" and len(out) == 1 and len(x.shape) == 1:
        result = S.T(result)
    d = Derivative(kind="diff", parsed=parsed, wrt=wrt, result=result, layout=layout,
                   out_shape=f.shape, wrt_shape=x.shape, vec_form=vec_form, differential=differential)
    if layout != "mixed" and vec_form:
        d.warnings.append(f"layout {layout} applies to derivatives with at most two axes; this one has "
                          f"{len(out) + len(x.shape)} and is written as the vec-Jacobian "
                          f"∂vec(F)/∂vec({wrt})ᵀ, the same in every layout")
    return d


@B.budgeted()
@_guard
def hessian(expr: str, wrt: str, *, shapes: dict | None = None, assume=None, symmetric=None,
            syntax: str = "matcalc", layout: str = "mixed") -> Derivative:
    """Second derivative of a scalar `expr` by `wrt`: n×n for a vector, Kronecker form for a matrix.

    `layout` is accepted for symmetry with `diff`: a Hessian is symmetric, so the numerator
    (Jacobian of the gradient) and denominator (its transpose) layouts give the same matrix."""
    _check_layout(layout)
    parsed, x, facts = _setup(expr, wrt, shapes, assume, symmetric, syntax)
    f = parsed.expr
    if f.shape != ():
        src = parsed.source.strip()
        src = src if len(src) <= 40 else src[:37] + "..."
        what = f"has {f.shape[0]} entries" if len(f.shape) == 1 else f"is {fmt_shape(f.shape)}"
        raise MatcalcError(f"hessian needs a scalar expression, but {src} {what}; use diff for a Jacobian")
    g = facts(reverse(f, x, S.const(1)))
    if x.shape == ():
        dg = forward(g, {x.attr: S.const(1)})
        h, vec_form, differential = (S.const(0) if dg is None else dg), False, None
    else:
        h, vec_form, differential = _jacobian(g, x)
        vec_form = len(x.shape) == 2
    h, differential = facts(h), facts(differential)
    return Derivative(kind="hessian", parsed=parsed, wrt=wrt, result=h, layout="mixed",
                      out_shape=x.shape, wrt_shape=x.shape, vec_form=vec_form, differential=differential)


@B.budgeted()
@_guard
def vjp(expr: str, wrt, *, upstream: str = "G", shapes: dict | None = None, assume=None,
        symmetric=None, syntax: str = "matcalc"):
    """The backprop rule: the gradient of sum(upstream * expr) by `wrt`; by several variables
    (`"W1,b1"`) the rules of all of them from one sweep, as `Gradients` (see `matcalc.grad`)."""
    _check_name(upstream, "upstream")
    if isinstance(wrt, str) and "," in wrt:  # several names: their rules from one sweep
        from .gradients import grad
        return grad.__wrapped__(expr, wrt, upstream=upstream, shapes=shapes, assume=assume,
                                symmetric=symmetric, syntax=syntax)
    parsed, x, facts = _setup(expr, wrt, shapes, assume, symmetric, syntax)
    _check_upstream(parsed, upstream, [wrt])
    f = parsed.expr
    g = S.var(upstream, f.shape)
    result = facts(reverse(f, x, g))
    return Derivative(kind="vjp", parsed=parsed, wrt=wrt, result=result, layout="mixed",
                      out_shape=f.shape, wrt_shape=x.shape, vec_form=False, upstream=upstream)


def _check_upstream(parsed: Parsed, upstream: str, wrts: list[str]):
    if upstream in wrts:
        raise MatcalcError(f"the upstream gradient's name {upstream} is the variable itself")
    if upstream in parsed.var_shapes and upstream in parsed.expr.vars:
        raise MatcalcError(f"the upstream gradient's name {upstream} is a variable of the expression; "
                           f"choose another with upstream=")


def _value_shapes(values, shapes: dict | None) -> dict | None:
    """`shapes` completed with the shapes of the given arrays (None if there is nothing to add)."""
    if not isinstance(values, dict):
        return None
    import numpy as np
    out = dict(shapes or {})
    for k, v in values.items():
        if k in out or not isinstance(k, str):
            continue
        try:
            shp = np.shape(v)
        except (TypeError, ValueError):
            continue
        if len(shp) <= 2 and all(n > 0 for n in shp):
            out[k] = tuple(int(n) for n in shp)
    return out if len(out) > len(shapes or {}) else None


@B.budgeted()
@_guard
def evaluate(expr: str, values: dict, *, shapes: dict | None = None, syntax: str = "matcalc") -> np.ndarray:
    """The numeric value of `expr` at `values`."""
    try:
        parsed = parse_expr(expr, shapes, syntax=syntax)
    except ShapeError as first:  # m·n = 9 has no unique solution: the values' shapes settle it
        guess = _value_shapes(values, shapes)
        if guess is None:
            raise
        try:
            parsed = parse_expr(expr, guess, syntax=syntax)
        except MatcalcError:
            raise first from None
    import numpy as np

    from .evaluate import bind_values, evaluate_node
    env, dims = bind_values(parsed.var_shapes, values)
    return np.asarray(evaluate_node(parsed.expr, env, dims), dtype=float)


@B.budgeted()
@_guard
def parse(expr: str, *, shapes: dict | None = None, syntax: str = "matcalc") -> Parsed:
    """The typed, shape-checked expression graph of `expr`."""
    return parse_expr(expr, shapes, syntax=syntax)
