"""Built-in verification: a derivative against central finite differences, and exactly with sympy.

`check(d)` draws values of the inferred shapes (small concrete sizes; positive where `log`,
`sqrt` or a power need it, symmetric positive definite where `inv`, `det`, `logdet` need it),
evaluates the derivative, and compares it with central differences of the expression itself.
For tiny sizes `exact=True` also compares, entry by entry, with sympy's derivative of the
expression written out on matrices of scalar symbols (the notes' own method), at an exact
rational point.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .evaluate import Dims, evaluate_node
from .expr import Node, dim_factors, postorder

SIZES = [3, 4, 5, 2, 6, 7, 8, 9]


@dataclass
class CheckResult:
    """The outcome of `Derivative.check()`."""

    max_abs_error: float
    max_rel_error: float
    sizes: dict = field(default_factory=dict)
    exact: bool | None = None
    tolerance: float = 1e-5

    @property
    def ok(self) -> bool:
        return self.max_rel_error <= self.tolerance and self.exact is not False

    def __str__(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in self.sizes.items())
        ex = "" if self.exact is None else f"; exact sympy check {'passed' if self.exact else 'FAILED'}"
        return (f"{'ok' if self.ok else 'MISMATCH'}: largest relative error {self.max_rel_error:.2e} "
                f"against central differences ({sizes}){ex}")


def _domains(root: Node) -> dict[str, str]:
    """Which variables must be positive or positive definite for the expression to be defined."""
    dom: dict[str, str] = {}

    def mark(n: Node, kind: str):
        for v in postorder(n):
            if v.op == "var":
                if kind == "spd" and len(v.shape) == 2 and v.shape[0] == v.shape[1]:
                    dom[v.attr] = "spd"
                elif dom.get(v.attr) not in ("spd", "unit"):
                    dom[v.attr] = "positive" if kind == "spd" else kind

    from .ops import registry
    for n in postorder(root):  # the domains the operators declare (ops/)
        kind = registry.fn(n.attr).domain if n.op == "fn" else registry.op(n.op).domain
        if kind == "invertible":
            mark(n.args[0], "spd")
        elif kind in ("positive", "unit"):
            mark(n.args[0], kind)
        elif n.op == "pow" and not (n.args[1].op == "const" and float(n.args[1].attr).is_integer() and n.args[1].attr > 0):
            mark(n.args[0], "positive")  # the domain of a power depends on its exponent
    return dom


def sample_values(var_shapes: dict, root: Node, seed: int = 0, sizes: dict | None = None, facts=()):
    """Random values for every variable (honouring declared facts), and the sizes of the dimensions."""
    rng = np.random.default_rng(seed)
    sizes = dict(sizes or {})
    order = SIZES if seed % 2 == 0 else SIZES[::-1]
    pool = iter(s for s in order * 4)
    for shape in var_shapes.values():
        for d in shape:
            for f in dim_factors(d):
                if isinstance(f, str) and f not in sizes:
                    sizes[f] = next(pool)
    dom = _domains(root)
    values = {}
    for name, shape in var_shapes.items():
        shp = tuple(int(np.prod([sizes[f] if isinstance(f, str) else f for f in dim_factors(d)])) for d in shape)
        kind = dom.get(name)
        if kind == "spd":  # invertible and well conditioned, but not symmetric: a transpose
            v = rng.standard_normal(shp) + 2 * np.sqrt(shp[0]) * np.eye(shp[0])  # error stays visible
        elif kind == "positive":
            v = np.abs(rng.standard_normal(shp)) + 0.5
        elif kind == "unit":  # inside (-1, 1), even summed over a product's inner dimension
            v = rng.uniform(0.05, 0.3, shp) * rng.choice([-1.0, 1.0], shp)
        else:
            v = rng.standard_normal(shp)
            v = np.where(np.abs(v) < 0.1, 0.1 + np.abs(v), v)  # away from the kinks of abs, relu
        for fact, who in facts:
            if who == name and fact == "symmetric" and v.ndim == 2:
                v = (v + v.T) / 2
            if who == name and fact == "rows_sum_to_one" and v.ndim == 2:
                v = np.abs(v) + 0.1
                v = v / v.sum(axis=1, keepdims=True)
        values[name] = float(v) if shp == () else v
    return values, sizes


def _f(root: Node, var_shapes: dict):
    def fun(values):
        from .evaluate import bind_values
        env, dims = bind_values(var_shapes, values)
        return np.asarray(evaluate_node(root, env, dims), dtype=float)
    return fun


def _jac_fd(fun, values, name, h=1e-6):
    x0 = np.asarray(values[name], dtype=float)
    out0 = fun(values)
    jac = np.zeros(out0.shape + x0.shape)
    for idx in np.ndindex(x0.shape or (1,)):
        idx = idx if x0.shape else ()
        e = np.zeros_like(x0)
        e[idx] = h
        hi, lo = dict(values), dict(values)
        hi[name], lo[name] = x0 + e, x0 - e
        jac[(Ellipsis,) + tuple(idx)] = (fun(hi) - fun(lo)) / (2 * h)
    return jac


def reference(d, values) -> np.ndarray:
    """The derivative `d` by central finite differences, in `d.evaluate`'s layout."""
    var_shapes = dict(d.parsed.var_shapes)
    f = _f(d.parsed.expr, var_shapes)
    if d.kind == "vjp":
        g = np.asarray(values[d.upstream], dtype=float)
        return _jac_fd(lambda v: np.sum(g * f(v)), values, d.wrt)
    if d.kind == "hessian":
        return _hess_fd(f, values, d.wrt)
    jac = _jac_fd(f, values, d.wrt)
    out_nd, wrt_nd = len(d.out_shape), len(d.wrt_shape)
    if d.layout == "numerator" and out_nd == 0 and wrt_nd == 2:
        return jac.T
    if d.layout == "denominator" and out_nd == 1 and wrt_nd == 1:
        return jac.T
    return jac


def _hess_fd(fun, values, name, h=1e-4):
    x0 = np.asarray(values[name], dtype=float)
    n = x0.size

    def at(x):
        v = dict(values)
        v[name] = float(x) if x0.shape == () else x.reshape(x0.shape)
        return float(fun(v))

    H = np.zeros((n, n))
    x = x0.reshape(-1)
    for i in range(n):
        for j in range(n):
            ei, ej = np.zeros(n), np.zeros(n)
            ei[i], ej[j] = h, h
            H[i, j] = (at(x + ei + ej) - at(x + ei - ej) - at(x - ei + ej) + at(x - ei - ej)) / (4 * h * h)
    return H.reshape(x0.shape + x0.shape)


def check(d, seed: int = 0, exact: bool = False) -> CheckResult:
    """Compare the derivative `d` with central finite differences at random values (drawn again,
    with other sizes, where the expression is not defined at the first draw)."""
    from .errors import MatcalcError
    var_shapes = dict(d.parsed.var_shapes)
    if d.upstream is not None:
        var_shapes[d.upstream] = d.out_shape
    for attempt in range(6):
        values, sizes = sample_values(var_shapes, d.parsed.expr, seed + attempt, facts=d.facts)
        try:
            with np.errstate(all="ignore"):
                got = np.asarray(d.evaluate(values), dtype=float)
                ref = reference(d, values)
        except MatcalcError:
            continue
        if np.all(np.isfinite(got)) and np.all(np.isfinite(ref)):
            break
    if got.shape != ref.shape:
        return CheckResult(float("inf"), float("inf"), sizes)
    err = np.abs(got - ref)
    scale = max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0)
    tol = 1e-4 if d.kind == "hessian" else 1e-5
    res = CheckResult(float(err.max()) if err.size else 0.0,
                      float(err.max() / scale) if err.size else 0.0, sizes, tolerance=tol)
    if exact:
        from .exact import exact_check
        res.exact = exact_check(d)
    return res


def concrete_dims(sizes: dict) -> Dims:
    dims = Dims()
    dims.size.update(sizes)
    return dims
