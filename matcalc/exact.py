"""The exact check: the expression written out entry by entry on matrices of scalar symbols,
differentiated by sympy, compared with matcalc's derivative at an exact rational point."""
from __future__ import annotations

import random
import time

import sympy as sp

from .expr import Node, dim_factors, postorder

_FN = {
    "exp": sp.exp, "log": sp.log, "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "tanh": sp.tanh,
    "sigmoid": lambda x: 1 / (1 + sp.exp(-x)), "relu": lambda x: sp.Max(x, 0), "abs": sp.Abs,
    "sqrt": sp.sqrt, "softplus": lambda x: sp.log(1 + sp.exp(x)), "sign": sp.sign,
    "step": lambda x: sp.Heaviside(x, 0),
}


def _size(d, sizes) -> int:
    k = 1
    for f in dim_factors(d):
        k *= sizes[f] if isinstance(f, str) else f
    return k


def _two_d(shape, sizes):
    if shape == ():
        return (1, 1)
    if len(shape) == 1:
        return (_size(shape[0], sizes), 1)
    return (_size(shape[0], sizes), _size(shape[1], sizes))


def _as_matrix(v, node_shape, target_shape, sizes) -> sp.Matrix:
    """v (of node_shape) broadcast to the 2-D form of target_shape."""
    r, c = _two_d(target_shape, sizes)
    if not isinstance(v, sp.MatrixBase):
        return sp.Matrix(r, c, lambda i, j: v)
    if len(node_shape) == 1 and len(target_shape) == 2:  # a vector over the rows
        return sp.Matrix(r, c, lambda i, j: v[j, 0])
    if v.shape == (1, c) and r != 1:
        return sp.Matrix(r, c, lambda i, j: v[0, j])
    return v


def _out(m, shape):
    return m[0, 0] if shape == () and isinstance(m, sp.MatrixBase) else m


def interpret(root: Node, env: dict, sizes: dict, clock: "_Clock | None" = None):
    """The value of `root` with sympy matrices (vectors as columns, scalars as expressions)."""
    val: dict[int, object] = {}
    for n in postorder(root):
        if clock is not None:
            clock.tick()
        a = [val[id(x)] for x in n.args]
        op, sh = n.op, n.shape
        if op == "var":
            v = env[n.attr]
        elif op == "const":
            v = sp.nsimplify(n.attr)
        elif op == "numel":
            v = sp.Integer(_size(n.attr, sizes))
        elif op in ("eye", "ones", "zeros"):
            r, c = _two_d(sh, sizes)
            v = sp.eye(r) if op == "eye" else sp.ones(r, c) if op == "ones" else sp.zeros(r, c)
        elif op == "K":
            p, q = _size(n.attr[0], sizes), _size(n.attr[1], sizes)
            v = sp.zeros(p * q, p * q)
            for i in range(p):
                for j in range(q):
                    v[j + q * i, i + p * j] = 1
        elif op in ("add", "mul"):
            ms = [_as_matrix(x, y.shape, sh, sizes) for x, y in zip(a, n.args)]
            v = ms[0]
            for m in ms[1:]:
                v = v + m if op == "add" else v.multiply_elementwise(m)
            v = _out(v, sh)
        elif op == "pow":
            b, e = (_as_matrix(x, y.shape, sh, sizes) for x, y in zip(a, n.args))
            v = _out(sp.Matrix(b.shape[0], b.shape[1], lambda i, j: b[i, j] ** e[i, j]), sh)
        elif op == "matmul":
            v = _as_matrix(a[0], n.args[0].shape, n.args[0].shape, sizes)
            for x, y in zip(a[1:], n.args[1:]):
                v = v * _as_matrix(x, y.shape, y.shape, sizes)
            v = _out(v, sh)
        elif op == "T":
            v = a[0].T if isinstance(a[0], sp.MatrixBase) else a[0]
        elif op == "fn":
            f = _FN[n.attr]
            v = a[0].applyfunc(f) if isinstance(a[0], sp.MatrixBase) else f(a[0])
        elif op == "sum":
            m = _as_matrix(a[0], n.args[0].shape, n.args[0].shape, sizes)
            if n.attr is None:
                v = sum(m)
            elif n.attr == 0:
                v = sp.Matrix([sum(m[:, j]) for j in range(m.shape[1])])
            else:
                v = sp.Matrix([sum(m[i, :]) for i in range(m.shape[0])])
        elif op == "tr":
            v = a[0].trace()
        elif op == "det":
            v = a[0].det()
        elif op == "logdet":
            v = sp.log(sp.Abs(a[0].det()))
        elif op == "inv":
            v = a[0].inv()
        elif op == "norm":
            v = sp.sqrt(sum(x ** 2 for x in a[0]))
        elif op == "diag":
            v = sp.diag(*list(a[0]))
        elif op == "diagv":
            v = sp.Matrix([a[0][i, i] for i in range(a[0].shape[0])])
        elif op in ("softmax", "logsumexp"):
            m = a[0]
            if n.attr is None:
                e = m.applyfunc(sp.exp)
                v = e / sum(e) if op == "softmax" else sp.log(sum(e))
            else:
                e = m.applyfunc(sp.exp)
                if n.attr == 1:
                    rows = [e[i, :] / sum(e[i, :]) for i in range(e.shape[0])]
                    v = sp.Matrix.vstack(*rows) if op == "softmax" else sp.Matrix([sp.log(sum(e[i, :])) for i in range(e.shape[0])])
                else:
                    cols = [e[:, j] / sum(e[:, j]) for j in range(e.shape[1])]
                    v = sp.Matrix.hstack(*cols) if op == "softmax" else sp.Matrix([sp.log(sum(e[:, j])) for j in range(e.shape[1])])
        elif op == "vec":
            m = a[0]
            v = sp.Matrix([m[i, j] for j in range(m.shape[1]) for i in range(m.shape[0])])
        elif op == "kron":
            x, y = (_as_matrix(z, w.shape, w.shape, sizes) for z, w in zip(a, n.args))
            v = sp.kronecker_product(x, y)
        else:  # pragma: no cover
            raise NotImplementedError(op)
        val[id(n)] = v
    return val[id(root)]


def _symbols(name, shape, sizes):
    """The variable's entries as symbols; `[` never occurs in a variable's name, so the entry
    x[0,0] of a vector never meets a scalar named x_00."""
    r, c = _two_d(shape, sizes)
    if shape == ():
        return sp.Symbol(f"{name}", real=True)
    return sp.Matrix(r, c, lambda i, j: sp.Symbol(f"{name}[{i},{j}]", real=True))


def skipped_note(budget: float) -> str:
    return f"exact sympy check skipped: over its {budget:g} s budget (exact=True / --exact forces it)"


class OverBudget(Exception):
    """The exact check ran past its time budget."""


class _Clock:
    def __init__(self, budget: float | None):
        self.deadline = None if budget is None else time.monotonic() + budget

    def tick(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise OverBudget


def _tick(clock: "_Clock", x):
    clock.tick()
    return x


def _flat_f(v):
    """Entries in column-major order (vec)."""
    if not isinstance(v, sp.MatrixBase):
        return [v]
    return [v[i, j] for j in range(v.shape[1]) for i in range(v.shape[0])]


def exact_check(d, seed: int = 0, budget: float | None = None) -> tuple[bool | None, str]:
    """(verdict, note): True when matcalc's derivative equals sympy's entrywise derivative at a
    rational point; None when no tiny size makes the expression defined (e.g. a singular matrix)
    or, with a `budget` in seconds, when the check would take longer (the note says so)."""
    clock = _Clock(budget)
    for order in ((2, 3), (3, 2)):
        try:
            return _exact_check(d, seed, order, clock), ""
        except OverBudget:
            return None, skipped_note(budget)
        except Exception:  # noqa: BLE001 - sympy raises many types; the numeric check still stands
            continue
    return None, ""


def _exact_check(d, seed: int, order: tuple, clock: "_Clock") -> bool:
    var_shapes = dict(d.parsed.var_shapes)
    if d.upstream is not None:
        var_shapes[d.upstream] = d.out_shape
    sizes, nxt = {}, iter(list(order) * 4)
    for shape in var_shapes.values():
        for dd in shape:
            for f in dim_factors(dd):
                if isinstance(f, str) and f not in sizes:
                    sizes[f] = next(nxt, 2)
    env = {k: _symbols(k, s, sizes) for k, s in var_shapes.items()}
    for fact, name in getattr(d, "facts", []):
        if name == d.wrt:
            raise ValueError("a derivative by a constrained variable has no entrywise check")
        m = env.get(name)
        if not isinstance(m, sp.MatrixBase):
            continue
        if fact == "symmetric":
            env[name] = sp.Matrix(m.shape[0], m.shape[1], lambda i, j: m[min(i, j), max(i, j)])
        elif fact == "sums_to_one" and m.shape[1] == 1:
            env[name] = sp.Matrix(m.shape[0], 1, lambda i, j: m[i, 0] if i < m.shape[0] - 1 else 1 - sum(m[:-1, 0]))
        elif fact == "rows_sum_to_one":
            env[name] = sp.Matrix(m.shape[0], m.shape[1],
                                  lambda i, j: m[i, j] if j < m.shape[1] - 1 else 1 - sum(m[i, :m.shape[1] - 1]))
    rng = random.Random(seed)
    point = {}
    for k, m in env.items():
        ents = [m] if not isinstance(m, sp.MatrixBase) else list(m)
        for s in ents:
            for sym in getattr(s, "free_symbols", {s}):
                point.setdefault(sym, sp.Rational(rng.randint(1, 9), rng.randint(20, 40)) if
                                 k in {n for f, n in getattr(d, "facts", []) if f in ("rows_sum_to_one", "sums_to_one")}
                                 else sp.Rational(rng.randint(2, 9), rng.randint(2, 9)))
        if isinstance(m, sp.MatrixBase) and m.shape[0] == m.shape[1] and m.shape[0] > 1:
            for i in range(m.shape[0]):  # diagonally dominant: invertible, positive determinant
                if m[i, i].is_Symbol:
                    point[m[i, i]] = sp.Integer(3 + i)
    f = interpret(d.parsed.expr, env, sizes, clock)
    x = env[d.wrt]
    xs = _flat_f(x)
    if d.kind == "vjp":
        g = env[d.upstream]
        fm = f if isinstance(f, sp.MatrixBase) else sp.Matrix([[f]])
        gm = g if isinstance(g, sp.MatrixBase) else sp.Matrix([[g]])
        f = sum(fm.multiply_elementwise(gm))
    fs = _flat_f(f)
    if d.kind == "hessian":
        grads = [_tick(clock, sp.diff(f, s)) for s in xs]
        want = [[_tick(clock, sp.diff(g, s)) for s in xs] for g in grads]
    else:
        want = [[_tick(clock, sp.diff(fi, s)) for s in xs] for fi in fs]
    got = interpret(d.result, env, sizes, clock)
    transposed = d.kind == "diff" and (
        (d.layout == "numerator" and d.out_shape == () and len(d.wrt_shape) == 2)
        or (d.layout == "denominator" and len(d.out_shape) == 1 and len(d.wrt_shape) == 1))
    if transposed:
        got = got.T
    import numpy as np
    # 40 significant digits: a mismatch is a difference in the leading digits, not rounding
    W = np.array([[_tick(clock, sp.N(w.subs(point), 40)) for w in row] for row in want], dtype=object)
    G = np.array([_tick(clock, sp.N(sp.sympify(g).subs(point), 40)) for g in _flat_f(got)], dtype=object)
    two_axes = d.vec_form or (len(d.out_shape) == 1 and len(d.wrt_shape) == 1) or \
        (d.kind == "hessian" and d.wrt_shape != ())
    want_flat = W.reshape(-1, order="F") if two_axes else W.reshape(-1)
    if G.shape != want_flat.shape:
        return False
    scale = max([abs(w) for w in want_flat] + [sp.Integer(1)])
    return all(abs(g - w) <= sp.Float("1e-25", 40) * scale for g, w in zip(G, want_flat))
