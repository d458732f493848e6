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
    """The outcome of `Derivative.check()`: `.ok`, the largest errors, the exact check's verdict
    (True / False / None when not run), the generated code's error when code was checked."""

    max_abs_error: float
    max_rel_error: float
    sizes: dict = field(default_factory=dict)
    exact: bool | None = None
    tolerance: float = 1e-5
    note: str = ""
    within: bool = False          # every entry within its tolerance (scale and difference error)
    fd_error: float = 0.0         # the finite differences' own estimated relative error
    code: str | None = None       # the backend whose generated code was compared
    code_error: float | None = None

    @property
    def ok(self) -> bool:
        code_ok = self.code is None or (self.code_error is not None and self.code_error <= 1e-7)
        return self.within and self.exact is not False and code_ok

    def __str__(self) -> str:
        if not self.sizes and self.max_abs_error != self.max_abs_error:  # nan: nothing was compared
            return f"MISMATCH: {self.note}" if self.note else "MISMATCH: nothing could be compared"
        sizes = ", ".join(f"{k}={v}" for k, v in self.sizes.items())
        ex = "" if self.exact is None else f"; exact sympy check {'passed' if self.exact else 'FAILED'}"
        code = "" if self.code is None else (
            f"; {self.code} code {'agrees' if self.code_error is not None and self.code_error <= 1e-7 else 'DISAGREES'}"
            + (f" (relative error {self.code_error:.1e})" if self.code_error not in (None, 0.0, float('inf')) else ""))
        note = f" ({self.note})" if self.note else ""
        return (f"{'ok' if self.ok else 'MISMATCH'}: largest relative error {self.max_rel_error:.2e} "
                f"against central differences ({sizes}){ex}{code}{note}")


def _domains(root: Node) -> dict[str, str]:
    """Which variables must be positive or positive definite for the expression to be defined."""
    dom: dict[str, str] = {}
    marked: set = set()  # (id, kind) of nodes whose variables are marked already

    def mark(n: Node, kind: str):
        for v in postorder(n, lambda m: (id(m), kind) in marked):
            marked.add((id(v), kind))
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


def sample_values(var_shapes: dict, root: Node, seed: int = 0, sizes: dict | None = None, facts=(),
                  dims=()):
    """Random values for every variable (honouring declared facts), and the sizes of the
    dimensions (the variables' and `dims`, e.g. of constants such as ones(n))."""
    rng = np.random.default_rng(seed)
    sizes = dict(sizes or {})
    order = SIZES if seed % 2 == 0 else SIZES[::-1]
    pool = iter(s for s in order * 40)
    names = [f for shape in var_shapes.values() for d in shape for f in dim_factors(d)] + list(dims)
    for f in names:
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
            if who == name and fact == "sums_to_one" and v.ndim == 1:
                v = np.abs(v) + 0.1
                v = v / v.sum()
            if who == name and fact == "rows_sum_to_one" and v.ndim == 2:
                v = np.abs(v) + 0.1
                v = v / v.sum(axis=1, keepdims=True)
        values[name] = float(v) if shp == () else v
    return values, sizes


def _evaluator(root: Node, var_shapes: dict, sizes: dict):
    """values -> the value of `root` (dimension sizes no value binds are taken from `sizes`)."""
    def fun(values):
        from .evaluate import bind_values
        env, dims = bind_values(var_shapes, values)
        for k, v in sizes.items():
            dims.size.setdefault(k, v)
        return np.asarray(evaluate_node(root, env, dims), dtype=float)
    return fun


# central differences at steps H0, H0/4, …: Richardson's table removes the h², h⁴, … terms; each
# entry takes the estimate whose successive extrapolations agree best, so neither a large value
# (rounding: sum(x**2) + 1e8) nor a fast oscillation (truncation: sin(10000*x)) fools it
H0, RATIO, STEPS = 1e-2, 4.0, 9
EPS = 8 * np.finfo(float).eps
#: the smallest error any finite-difference entry is credited with, per unit of |f|
ROUNDING_FLOOR = 1e3 * np.finfo(float).eps


def _jac_fd(fun, values, name):
    """(∂fun/∂values[name], an estimate of its error), shape out_shape + wrt_shape."""
    x0 = np.asarray(values[name], dtype=float)
    out0 = fun(values)
    jac, err = np.zeros(out0.shape + x0.shape), np.zeros(out0.shape + x0.shape)
    for idx in np.ndindex(x0.shape or (1,)):
        idx = idx if x0.shape else ()
        jac[(Ellipsis,) + idx], err[(Ellipsis,) + idx] = _richardson(fun, values, name, x0, idx)
    return jac, err


def _richardson(fun, values, name, x0, idx):
    scale = max(1.0, abs(float(x0[idx])))
    rows, best, best_err = [], None, None
    for k in range(STEPS):
        h = H0 * scale / RATIO ** k
        e = np.zeros_like(x0)
        e[idx] = h
        hi, lo = dict(values), dict(values)
        hi[name], lo[name] = (x0 + e, x0 - e) if x0.shape else (float(x0 + h), float(x0 - h))
        fh, fl = fun(hi), fun(lo)
        rounding = EPS * np.maximum(np.abs(fh), np.abs(fl)) / h
        row = [(fh - fl) / (2 * h)]
        for j in range(1, k + 1):
            row.append(row[j - 1] + (row[j - 1] - rows[k - 1][j - 1]) / (RATIO ** (2 * j) - 1))
        rows.append(row)
        for j in range(1, len(row)):
            cand_err = np.abs(row[j] - row[j - 1]) + np.abs(row[j] - rows[k - 1][j - 1]) + 2 * rounding
            if best is None:
                best, best_err = row[j].copy(), cand_err
            else:
                better = cand_err < best_err
                best, best_err = np.where(better, row[j], best), np.where(better, cand_err, best_err)
    return best, best_err


def reference(d, values, sizes=None) -> np.ndarray:
    """The derivative `d` by finite differences, in `d.evaluate`'s layout."""
    return reference_and_error(d, values, sizes)[0]


def reference_and_error(d, values, sizes=None) -> tuple[np.ndarray, np.ndarray]:
    """(the derivative by finite differences, its estimated error), in `d.evaluate`'s layout.
    A Hessian is the differences of the gradient (checked itself against differences of f)."""
    var_shapes = dict(d.parsed.var_shapes)
    sizes = sizes or {}
    f = _evaluator(d.parsed.expr, var_shapes, sizes)
    # No estimate falls below the rounding of the function itself: where f is constant in a
    # direction its differences are exactly 0, while the derivative, evaluated from terms of
    # f's size that cancel, is 0 only up to rounding (∂²/∂x² sum(softmax(softmax(x))))
    floor = ROUNDING_FLOOR * float(np.max(np.abs(f(values)), initial=0.0))
    ref, err = _reference(d, values, var_shapes, sizes, f)
    return ref, np.maximum(err, floor)


def _reference(d, values, var_shapes, sizes, f) -> tuple[np.ndarray, np.ndarray]:
    if d.kind == "vjp":
        g = np.asarray(values[d.upstream], dtype=float)
        return _jac_fd(lambda v: np.sum(g * f(v)), values, d.wrt)
    if d.kind == "hessian":
        from . import simplify as S
        from .engine import reverse
        grad = reverse(d.parsed.expr, S.var(d.wrt, d.wrt_shape), S.const(1))
        gfun = _evaluator(grad, var_shapes, sizes)
        fd_grad, grad_err = _jac_fd(f, values, d.wrt)
        wrong = np.abs(gfun(values) - fd_grad) > 1e-6 * max(1e-300, float(np.max(np.abs(fd_grad), initial=0))) + 8 * grad_err
        hess, err = _jac_fd(gfun, values, d.wrt)
        if np.any(wrong):  # the gradient the Hessian comes from is wrong: so is the reference
            err = err + np.inf
        return hess, err
    jac, err = _jac_fd(f, values, d.wrt)
    out_nd, wrt_nd = len(d.out_shape), len(d.wrt_shape)
    if (d.layout == "numerator" and out_nd == 0 and wrt_nd == 2) or \
            (d.layout == "denominator" and out_nd == 1 and wrt_nd == 1):
        return jac.T, err.T
    return jac, err


def _evaluate(d, values, sizes) -> np.ndarray:
    """d.evaluate with dimension sizes no value binds taken from `sizes`."""
    var_shapes = dict(d.parsed.var_shapes)
    if d.upstream is not None:
        var_shapes[d.upstream] = d.out_shape
    val = _evaluator(d.result, var_shapes, sizes)(values)
    if d.vec_form:
        from .evaluate import bind_values
        _, dims = bind_values(var_shapes, values)
        for k, v in sizes.items():
            dims.size.setdefault(k, v)
        val = val.reshape(tuple(dims(x) for x in d.out_shape + d.wrt_shape), order="F")
    return val


def _all_dims(*roots: Node) -> list:
    """Every dimension name in the graphs (constants such as ones(n) have sizes no value gives)."""
    out = []
    for root in roots:
        for n in postorder(root):
            for dd in list(n.shape) + ([n.attr] if n.op == "numel" else list(n.attr) if n.op == "K" else []):
                out += [f for f in dim_factors(dd) if isinstance(f, str) and f not in out]
    return out


def check(d, seed: int = 0, exact: bool | None = False, backend: str | None = None,
          budget: float = 0.5) -> CheckResult:
    """Compare the derivative `d` with finite differences at random values (drawn again, with
    other sizes, where the expression is not defined at the first draw); with `backend`, also
    its generated code; with `exact`, also exactly with sympy (None: within `budget` seconds)."""
    from .errors import MatcalcError
    var_shapes = dict(d.parsed.var_shapes)
    if d.upstream is not None:
        var_shapes[d.upstream] = d.out_shape
    dims = _all_dims(d.result, d.parsed.expr)
    found, problem = None, "no sample could be drawn"
    for attempt in range(6):
        values, sizes = sample_values(var_shapes, d.parsed.expr, seed + attempt, facts=d.facts, dims=dims)
        try:
            with np.errstate(all="ignore"):
                try:  # the public channel; sizes that no value gives (ones(n)) need the internal one
                    got = np.asarray(d.evaluate(values), dtype=float)
                except MatcalcError:
                    got = np.asarray(_evaluate(d, values, sizes), dtype=float)
                ref, err = reference_and_error(d, values, sizes)
        except MatcalcError as e:
            problem = str(e)
            continue
        if np.all(np.isfinite(got)) and np.all(np.isfinite(ref)):
            found = (values, sizes, got, ref, err)
            break
        problem = "the derivative or the expression is not finite at the points drawn"
    if found is None:
        return CheckResult(float("nan"), float("nan"), {}, note=f"could not check: {problem}")
    values, sizes, got, ref, err = found
    if got.shape != ref.shape:
        return CheckResult(float("inf"), float("inf"), sizes, note=f"shape {got.shape}, expected {ref.shape}")
    res = _compare(d, got, ref, err, sizes)
    if backend is not None:
        _check_code(d, backend, values, got, res)
    if exact is not False:
        if exact is None and _exact_work(d) > EXACT_WORK:
            note = f"exact sympy check skipped: too large for its {budget:g} s budget (exact=True / --exact forces it)"
        else:
            import time
            start = time.monotonic()
            from .exact import exact_check  # imports sympy (counted in the budget): only when it runs
            left = max(0.0, budget - (time.monotonic() - start))
            res.exact, note = exact_check(d, budget=None if exact else left)
            note = note.replace(f"over its {left:g} s", f"over its {budget:g} s")
        if note:
            res.note = "; ".join(x for x in (res.note, note) if x)
    return res


# entries of the derivative written out (at the exact check's sizes 2 and 3) times the nodes:
# above this the sympy check takes seconds, so within a budget it is not started
EXACT_WORK = 1500


def _exact_work(d) -> int:
    sizes, nxt = {}, iter([2, 3] * 40)
    shapes = list(d.parsed.var_shapes.values()) + [tuple(d.out_shape)]
    for f in [f for shape in shapes for dd in shape for f in dim_factors(dd)] + _all_dims(d.result):
        if isinstance(f, str) and f not in sizes:
            sizes[f] = next(nxt)
    entries = 1
    for dd in tuple(d.out_shape) + tuple(d.wrt_shape) * (2 if d.kind == "hessian" else 1):
        for f in dim_factors(dd):
            entries *= sizes.get(f, 3) if isinstance(f, str) else f
    return (len(postorder(d.result)) + len(postorder(d.parsed.expr))) * max(1, entries)


def _compare(d, got, ref, err, sizes) -> CheckResult:
    """The verdict: every entry within 1e-7 of the derivative's scale plus its difference error."""
    diff = np.abs(got - ref)
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    allowed = 1e-7 * scale + 8 * err + 1e-300
    worst = float(np.max(diff / allowed)) if diff.size else 0.0
    floor = max(scale, float(np.max(err, initial=0.0)) * 1e5, 1e-300)
    rel = float(diff.max() / floor) if diff.size else 0.0
    tol = 1e-4 if d.kind == "hessian" else 1e-5
    res = CheckResult(float(diff.max()) if diff.size else 0.0, rel, sizes, tolerance=tol)
    res.within = worst <= 1.0
    res.fd_error = float(np.max(err / max(scale, 1e-300))) if err.size else 0.0
    return res


def _check_code(d, backend: str, values: dict, got: np.ndarray, res: CheckResult) -> None:
    """The generated code of `backend` must give d.evaluate's array at the same point."""
    from .errors import MatcalcError
    res.code = backend
    try:
        out = d.compile(backend)(values)
        if hasattr(out, "detach"):
            out = out.detach().cpu().numpy()
        out = np.asarray(out, dtype=float)
    except MatcalcError as e:
        res.code_error, res.note = float("inf"), f"{backend} code: {e}"
        return
    except Exception as e:  # noqa: BLE001 - the generated code failing is a verdict, not a crash
        res.code_error, res.note = float("inf"), f"{backend} code raised {type(e).__name__}: {e}"
        return
    if out.shape != got.shape:
        res.code_error, res.note = float("inf"), f"{backend} code gives shape {out.shape}, not {got.shape}"
        return
    scale = max(float(np.max(np.abs(got), initial=0.0)), 1e-300)
    res.code_error = float(np.max(np.abs(out - got), initial=0.0) / scale)


def concrete_dims(sizes: dict) -> Dims:
    dims = Dims()
    dims.size.update(sizes)
    return dims
