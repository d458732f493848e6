"""The operator registry: everything about an operator in one declaration.

Two kinds of declaration, in the manner of jax's primitive registration (`defjvp`, `deflinear`)
and autograd's `numpy_vjps.py` (one line per function):

- `elementwise(name, d=…, np=…, sp=…, latex=…, domain=…)`: an element-wise function (node op
  `fn`, attr the name): its derivative f'(x), numpy and sympy evaluation, code per backend, LaTeX,
  unicode, index form, and the sampling domain of checks. One line per function.
- `defop(name, …)`: a general operator (node op `name`): shape rule (the typer's hook), VJP, JVP
  (or `linear=True`: the JVP is the operator applied to the differential), numpy and sympy
  evaluation, code per backend, text, LaTeX, unicode, index form, the step's rule and formula,
  the sampling domain; `syntax=` declares the functions of the input language that build it.

Registration checks completeness: an operator without a VJP or JVP must say why (`no_vjp=…`,
`no_jvp=…`); using the missing rule raises `InternalError`, never a `KeyError`.  Every walk
(engine, steps, evaluate, exact, codegen) and every printer looks operators up here
(`op`, `fn`, `func`); printers fall back to a generic `name(args)` form.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

from ..errors import InternalError
from ..records import Record

Rule = Callable[..., Any]


class Op(Record):
    """A general operator: one node kind of the expression graph."""

    name: str
    arity: int | None = 1                  # None: variadic (add, mul, matmul)
    build: Rule | None = None              # (node, new args) -> node through the smart constructor
    vjp: Rule | None = None                # (g, node, i) -> adjoint contribution to argument i
    jvp: Rule | None = None                # (node, [d arg or None]) -> d node
    linear: bool = False                   # the JVP is the operator applied to the differentials
    no_vjp: str | None = None              # why there is no VJP (then vjp raises InternalError)
    no_jvp: str | None = None
    vec_jac: Rule | None = None            # (J of the argument, node) -> vec-Jacobian (linear ops)
    np: Rule | None = None                 # (node, [arrays], dims) -> array
    sp: Rule | None = None                 # (ctx, node, [sympy values]) -> sympy value
    code: Any = None                       # template "{ns}.f({0})", {backend: template}, or (gen, node) -> str
    text: Any = None                       # None: generic name(args[, axis=k]); or (printer, node) -> (str, prec)
    latex: Any = None                      # a function name (r"\det"), a template with {0}, or a callable
    unicode: Any = None
    index: Rule | None = None              # (index printer, node, idx) -> str
    step: tuple[str, str] | None = None    # (rule name, formula) for steps
    domain: str | None = None              # sampling domain of the arguments: positive, invertible, unit
    call: str | None = None                # the name the generic printers write (default: name)
    core: bool = False                     # structural: the printers and codegen own its rendering
    sample: tuple = ()                     # example: (expression, {var: shape}, [wrt, …]) for the registry test
    bounds: tuple | None = None            # (lo, hi): every entry's range whatever the arguments (codegen)

    def vjp_rule(self) -> Rule:
        if self.vjp is None:
            raise InternalError(f"no derivative rule (reverse mode) for {self.name}: {self.no_vjp or 'not declared'}")
        return self.vjp

    def jvp_rule(self) -> Rule:
        if self.linear and self.jvp is None:
            return lambda n, ds: self.build(n, ds)
        if self.jvp is None:
            raise InternalError(f"no derivative rule (forward mode) for {self.name}: {self.no_jvp or 'not declared'}")
        return self.jvp

    @property
    def written(self) -> str:
        return self.call or self.name


class Fn(Record):
    """An element-wise function f, applied entry by entry (node op `fn`, attr `name`)."""

    name: str
    d: Rule                                # x -> f'(x) (a node): the Jacobian is diag(f'(x))
    np: Rule                               # numpy ufunc (or callable on arrays)
    sp: Any                                # sympy function name, or (sympy module, x) -> expression
    latex: str                             # LaTeX function name, or a template with {0}
    code: Any = None                       # template with {0} and {ns}, or {backend: template}; default {ns}.name
    unicode: str | None = None             # default: the name
    index: str | None = None               # LaTeX name in the index form (default: latex, or operatorname)
    domain: str | None = None              # positive, unit (|x| < 1) or None (any real away from 0)
    idempotent: bool = False               # f(f(x)) = f(x)
    bounds: tuple | None = None            # (lo, hi): the range of f over the reals (codegen: Gram products)
    inverse: str | None = None             # f(g(x)) = x for g = inverse
    fold: Rule | None = None               # float -> float for constant folding (default: np)
    step: tuple[str, str] | None = None

    def fold_value(self, v: float) -> float:
        import numpy as _np
        with _np.errstate(all="ignore"):
            return float((self.fold or self.np)(_np.float64(v)))

    def overflows(self, v: float) -> bool:
        """f(v) overflows (exp(1000): a finite number a float cannot hold), as opposed to a pole or
        a point outside the domain (log(0) is −inf, sqrt(−1) nan)."""
        import numpy as _np
        try:
            with _np.errstate(all="ignore", over="raise"):
                (self.fold or self.np)(_np.float64(v))
        except FloatingPointError:
            return True
        return False

    def code_for(self, backend: str) -> str:
        c = self.code
        if isinstance(c, dict):
            c = c.get(backend, c.get("numpy"))
        return c or "{ns}." + self.name + "({0})"


class Func(Record):
    """A function of the input language that builds a node (or a canonical expression)."""

    name: str
    args: tuple[int, int] = (1, 1)         # least and most positional arguments
    axis: bool = False                     # takes axis=0|1
    keepdims: bool = False                 # takes keepdims=True (with an axis)
    dims: bool = False                     # its arguments after the first are dimensions (unvec(v, m, n))
    shape: Rule | None = None              # (typer, raw, arg shapes) -> shape; None: Typer.c_<name>
    build: Rule | None = None              # (builder, raw, [nodes]) -> node
    op: str | None = None                  # the operator it builds (for the registry test)
    sample: tuple = ()                     # (expression, {var: shape}, [wrt, …]) for the registry test


#: the modules that declare operators (imported on first lookup)
DECLARATIONS = ("algebra", "elementwise", "linalg", "reductions")
OPS: dict[str, Op] = {}
FNS: dict[str, Fn] = {}
FUNCS: dict[str, Func] = {}
_loaded = False
_LOCK = threading.RLock()


def defop(name: str, **kw) -> Op:
    """Declare a general operator; every walk finds it here."""
    spec = Op(name, **kw)
    if spec.vjp is None and spec.no_vjp is None and not spec.core:
        raise InternalError(f"operator {name}: no VJP; give vjp= or say why with no_vjp=")
    if spec.jvp is None and not spec.linear and spec.no_jvp is None and not spec.core:
        raise InternalError(f"operator {name}: no JVP; give jvp=, linear=True, or say why with no_jvp=")
    if spec.arity != 0 and spec.build is None:
        raise InternalError(f"operator {name}: no build= (its smart constructor, for rebuilding)")
    if spec.np is None and not spec.core:
        raise InternalError(f"operator {name}: no numpy evaluation")
    OPS[name] = spec
    return spec


def elementwise(name: str, **kw) -> Fn:
    """Declare an element-wise function (one line); it is a function of the language too."""
    spec = Fn(name, **kw)
    FNS[name] = spec
    FUNCS[name] = Func(name, op="fn", sample=(f"{name}(x)", {"x": ("n",)}, ["x"]))
    return spec


def defsyntax(name: str, **kw) -> Func:
    """Declare a function of the input language."""
    spec = Func(name, **kw)
    FUNCS[name] = spec
    return spec


def load() -> None:
    """Import the declaration modules (once, under a lock: no thread sees a half-filled registry)."""
    global _loaded
    if _loaded:
        return
    with _LOCK:
        if not _loaded:
            import importlib
            for module in DECLARATIONS:
                importlib.import_module(f"{__package__}.{module}")
            _loaded = True


def op(name: str) -> Op:
    """The declaration of a node operator; InternalError if there is none."""
    if not _loaded:
        load()
    spec = OPS.get(name)
    if spec is None:
        raise InternalError(f"no operator {name!r} in the registry (no derivative rule, evaluation or printing)")
    return spec


def fn(name: str) -> Fn:
    """The declaration of an element-wise function; InternalError if there is none."""
    if not _loaded:
        load()
    spec = FNS.get(name)
    if spec is None:
        raise InternalError(f"no element-wise function {name!r} in the registry")
    return spec


def functions() -> dict[str, Func]:
    """The functions of the input language, by name."""
    if not _loaded:
        load()
    return FUNCS


def step_of(n) -> tuple[str, str]:
    """The step's rule name and formula for node `n`."""
    if n.op == "fn":
        f = fn(n.attr)
        return f.step or ("chain rule, element-wise (a diagonal Jacobian)", r"\mathrm{d}f(A) = f'(A) \odot \mathrm{d}A")
    return op(n.op).step or (n.op, "")
