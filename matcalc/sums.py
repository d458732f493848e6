"""Sums of all entries and over an axis (with keepdims): the constructor `sum_` and the folds it
applies by linearity (a broadcast term sums to a count times itself, a centred vector to 0).
Re-exported by `simplify`."""
from __future__ import annotations

from .expr import Node, make, numel as shape_numel, size
from .simplify import (T, _fail, _joint, _row_broadcast, add, bcast, const, is_zero, mul, numel, ones,
                       zeros)
from .vectorize import unvec, vec


def _broadcast_count(src: tuple, dst: tuple):
    """How many times each entry of a value of shape src appears in it broadcast to dst."""
    if src == ():
        return shape_numel(dst)
    if len(src) == 1 or src[0] == 1:
        return dst[0] if len(dst) == 2 else 1
    return dst[1] if src[1] == 1 else 1


def _constant_along(t: Node, shape: tuple, axis) -> bool:
    """t (an operand broadcast to `shape`) takes one value along the summed axis (all axes: None)."""
    if t.shape == ():
        return True
    if axis is None:
        return t.shape != shape
    if axis == 0:
        return len(t.shape) == 1 or t.shape[0] == 1
    return len(t.shape) == 2 and t.shape[1] == 1 and t.shape != shape


def _scaled_along(t: Node, axis: int) -> bool:
    """t is c ⊙ Y with a column (row) c constant along the axis and Y of t's shape."""
    return t.op == "mul" and any(f.shape != () and _constant_along(f, t.shape, axis) for f in t.args) and \
        any(f.shape == t.shape for f in t.args)


def _sum_of_sum(a: Node, axis) -> Node | None:
    """Linearity over the broadcast terms of a sum: sum(X + c) = sum(X) + (count) sum(c), and
    sum(Y + c ⊙ Z, axis) = sum(Y, axis) + c ⊙ sum(Z, axis), so that sum(x − mean(x)) folds to 0;
    None when no term is broadcast along (or scaled by a factor constant along) the summed axes."""
    spread = [t for t in a.args if _constant_along(t, a.shape, axis)]
    scaled = [t for t in a.args if axis is not None and t not in spread and _scaled_along(t, axis)]
    if not spread and not scaled or len(spread) == len(a.args) and axis is not None:
        return None
    rest = [t for t in a.args if t not in spread and t not in scaled]
    out_shape = () if axis is None else ((a.shape[1],) if axis == 0 else (a.shape[0],))
    parts = ([sum_(add(*rest), axis)] if rest else []) + [sum_(t, axis) for t in scaled]
    for t in spread:
        if axis is None:
            parts.append(mul(numel(_broadcast_count(t.shape, a.shape)), sum_(t)))
        else:
            parts.append(bcast(mul(numel(a.shape[axis]), vec(t)), out_shape))
    return add(*parts)


def _sum_of_product(a: Node, axis: int) -> Node | None:
    """Factors constant along the summed axis come out: sum(c ⊙ Y, axis=1) = c ⊙ sum(Y, axis=1)
    for an m×1 column c (a row or vector for axis 0); None when there is none."""
    out = [f for f in a.args if _constant_along(f, a.shape, axis)]
    rest = [f for f in a.args if not _constant_along(f, a.shape, axis)]
    if not out or not any(f.shape == a.shape for f in rest):
        return None
    return mul(*[vec(f) for f in out], sum_(mul(*rest), axis))


def sum_(a: Node, axis: int | None = None, keepdims: bool = False) -> Node:
    """Sum of all entries (axis None), column sums (axis 0) or row sums (axis 1); with keepdims
    the column sums are a 1×n row and the row sums an m×1 column."""
    if a.shape == ():
        return a
    if keepdims and axis is not None and len(a.shape) == 2 and a.shape[1 - axis] != 1:
        out = sum_(a, axis)
        return T(out) if axis == 0 else unvec(out, a.shape[0], 1)
    if axis is not None and len(a.shape) == 2 and a.shape[1 - axis] == 1:
        axis = None  # the column sums of an m×1 column, the row sums of a row: one number
    if axis == 1 and len(a.shape) == 2 and a.shape[1] == 1:
        return vec(a)
    if a.op == "add" and len(a.shape) == 2 or (a.op == "add" and axis is None):
        folded = _sum_of_sum(a, axis)
        if folded is not None and size(folded) <= size(a):  # only where terms cancel: keeps sharing
            return folded
    if a.op == "mul" and axis is not None and len(a.shape) == 2:
        out = _sum_of_product(a, axis)
        if out is not None:
            return out
    if len(a.shape) == 1 or (len(a.shape) == 2 and a.shape[0] == 1 and axis == 0):
        if axis == 1:
            _fail("sum axis=1", a)
        if len(a.shape) == 2:  # column sums of a row are the row itself
            return vec(a)
        axis = None
    if axis is None:
        if is_zero(a):
            return const(0)
        if a.op == "ones":
            return numel(shape_numel(a.shape))
        if a.op in ("T", "unvec", "vec"):
            return sum_(a.args[0])
        if a.op == "mul" and a.args[0].shape == () and len(a.args) > 1:
            scal = [f for f in a.args if f.shape == ()]
            rest = [f for f in a.args if f.shape != ()]
            s = _joint(rest)
            if s == a.shape:
                return mul(*scal, sum_(rest[0] if len(rest) == 1 else make("mul", tuple(rest), None, s)))
        return make("sum", (a,), None, ())
    m, n = a.shape
    out_shape = (n,) if axis == 0 else (m,)
    if is_zero(a):
        return zeros(out_shape)
    if a.op == "T":
        return sum_(a.args[0], 1 - axis)
    if a.op == "mul" and a.args[0].op == "const":
        return mul(a.args[0], sum_(make("mul", a.args[1:], None, a.shape) if len(a.args) > 2 else a.args[1], axis))
    if a.op == "ones":
        return mul(numel(m if axis == 0 else n), ones(out_shape))
    v = _row_broadcast(a)
    if v is not None and (axis == 0) == (len(v.shape) == 1):
        # a vector repeated down m rows (an m×1 column across n columns), summed over them
        return mul(numel(m if axis == 0 else n), vec(v))
    return make("sum", (a,), axis, out_shape)
