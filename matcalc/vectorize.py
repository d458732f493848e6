"""vec, unvec and the Kronecker product: their constructors and the reshapes between an m-vector
and an m×1 column.  Re-exported by `simplify`."""
from __future__ import annotations

from . import identities as I
from .expr import Node, as_2d, dim_mul, make, numel as shape_numel
from .simplify import T, add, eye, fn, is_zero, mul, ones, pow_, zeros


def vec(a: Node) -> Node:
    """The column-major vectorisation of a matrix (a vector or scalar unchanged)."""
    if a.shape == () or len(a.shape) == 1:
        return a
    if a.shape[0] == 1:  # a row: its entries (the transpose of an m×1 column is one too)
        t = T(a)
        return t if len(t.shape) == 1 else vec(t)
    if a.op == "unvec":
        return a.args[0]
    if a.shape[1] == 1:
        return _as_vector(a, {})
    if a.op == "mul" and a.args[0].op == "const":  # vec(c A) = c vec(A)
        return mul(a.args[0], vec(make("mul", a.args[1:], None, a.shape) if len(a.args) > 2 else a.args[1]))
    return I.apply("vec", a) or make("vec", (a,), None, (shape_numel(a.shape),))


def unvec(v: Node, m, n) -> Node:
    """The m×n matrix whose column-major vectorisation is the vector v (the inverse of vec)."""
    if n == 1 and m != 1:
        shape = (m, 1)
    elif m == 1:
        return T(v) if n != 1 else v
    else:
        shape = (m, n)
    if v.op == "vec" and v.args[0].shape == shape:
        return v.args[0]
    if shape[1] == 1:
        return _as_column(v, m, {})
    if is_zero(v):
        return zeros(shape)
    if v.op == "mul" and v.args[0].op == "const":
        return mul(v.args[0], unvec(make("mul", v.args[1:], None, v.shape) if len(v.args) > 2 else v.args[1], m, n))
    return make("unvec", (v,), (m, n), shape)


def _as_column(v: Node, m, memo: dict) -> Node:
    """The m-vector v as an m×1 column, pushed through element-wise operations to its leaves:
    row sums become sum(…, axis=1, keepdims=True), vec(c) becomes c."""
    got = memo.get(id(v))
    if got is not None:
        return got
    if v.shape == ():
        out = v
    elif v.op == "sum" and v.attr == 1:
        out = make("sum", v.args, 1, (m, 1))
    elif v.op == "vec" and v.args[0].shape == (m, 1):
        out = v.args[0]
    elif v.op in ("mul", "add"):
        out = (mul if v.op == "mul" else add)(*[_as_column(a, m, memo) for a in v.args])
    elif v.op == "pow" and v.args[1].shape == ():
        out = pow_(_as_column(v.args[0], m, memo), v.args[1])
    elif v.op == "fn":
        out = fn(v.attr, _as_column(v.args[0], m, memo))
    elif is_zero(v) or v.op == "ones":
        out = (zeros if is_zero(v) else ones)((m, 1))
    else:
        out = make("unvec", (v,), (m, 1), (m, 1))
    memo[id(v)] = out
    return out


def _as_vector(c: Node, memo: dict) -> Node:
    """The entries of an m×1 column c as an m-vector, pushed through element-wise operations
    (the inverse of `_as_column`)."""
    got = memo.get(id(c))
    if got is not None:
        return got
    if len(c.shape) < 2:
        out = c
    elif c.op == "sum":
        from .sums import sum_  # sums.py builds on this module
        out = sum_(c.args[0], c.attr)
    elif c.op == "unvec":
        out = c.args[0]
    elif c.op in ("mul", "add"):
        out = (mul if c.op == "mul" else add)(*[_as_vector(a, memo) for a in c.args])
    elif c.op == "pow" and c.args[1].shape == ():
        out = pow_(_as_vector(c.args[0], memo), c.args[1])
    elif c.op == "fn":
        out = fn(c.attr, _as_vector(c.args[0], memo))
    elif is_zero(c) or c.op == "ones":
        out = (zeros if is_zero(c) else ones)((c.shape[0],))
    else:
        out = make("vec", (c,), None, (c.shape[0],))
    memo[id(c)] = out
    return out


def kron(a: Node, b: Node) -> Node:
    """The Kronecker product; vectors count as one-column matrices."""
    if a.shape == () or b.shape == ():
        return mul(a, b)
    if a.op == "eye" and b.op == "eye":
        return eye(dim_mul(a.shape[0], b.shape[0]))
    (p, q), (r, s) = as_2d(a.shape), as_2d(b.shape)
    rows, cols = dim_mul(p, r), dim_mul(q, s)
    if cols == 1:
        shape = (rows,)
    elif rows == 1:
        shape = (1, cols)
    else:
        shape = (rows, cols)
    return make("kron", (a, b), None, shape)
