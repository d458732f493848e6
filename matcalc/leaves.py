"""The leaves of the graph: constants, variables, differentials, eye, ones, zeros, dimensions as
numbers and the commutation matrix; and the tests for zero, one and constants. Import them
through `matcalc.simplify`, which re-exports them.
"""
from __future__ import annotations

import math

from .expr import Node, dim_mul, make


def const(v: float) -> Node:
    v = float(v)
    if not math.isfinite(v):
        from .errors import MatcalcError
        raise MatcalcError(f"a constant overflows to {v} (numbers must stay below about 1.8e308)")
    if v == 0:
        v = 0.0  # no negative zero
    return make("const", (), v, ())


def var(name: str, shape: tuple) -> Node:
    return make("var", (), name, tuple(shape))


def dvar(name: str, shape: tuple) -> Node:
    """The differential `d name`, the seed of forward mode."""
    return make("dvar", (), name, tuple(shape))


def eye(d) -> Node:
    if d == 1:
        return const(1)
    return make("eye", (), None, (d, d))


def ones(shape: tuple) -> Node:
    if shape == ():
        return const(1)
    if len(shape) == 2 and shape[0] == 1:
        from .transpose import T
        return T(ones((shape[1],)))
    return make("ones", (), None, tuple(shape))


def zeros(shape: tuple) -> Node:
    if shape == ():
        return const(0)
    return make("zeros", (), None, tuple(shape))


def numel(d) -> Node:
    """The number d (a dimension or a product of dimensions) as a scalar."""
    if isinstance(d, int):
        return const(d)
    return make("numel", (), d, ())


def commutation(m, n) -> Node:
    """K with K vec(A) = vec(Aᵀ) for an m×n matrix A."""
    if m == 1 or n == 1:
        return eye(dim_mul(m, n))
    d = dim_mul(m, n)
    return make("K", (), (m, n), (d, d))


def is_zero(n: Node) -> bool:
    return n.op == "zeros" or (n.op == "const" and n.attr == 0)


def is_const(n: Node, v: float | None = None) -> bool:
    return n.op == "const" and (v is None or n.attr == v)


def is_ones(n: Node) -> bool:
    return n.op == "ones" or (n.op == "const" and n.attr == 1) or (n.op == "T" and n.args[0].op == "ones")
