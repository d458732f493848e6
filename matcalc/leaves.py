"""The leaves of the graph: constants, variables, differentials, eye, ones, zeros, dimensions as
numbers and the commutation matrix; the tests for zero, one and constants; and the arithmetic
that folds constants. Import them through `matcalc.simplify`, which re-exports them.

Constants fold in IEEE arithmetic, as numpy computes them: 1/0 is inf, 0/0 and inf − inf are
nan, 0 · inf is nan, and such a constant is never folded away (0 · nan is nan, not 0). A result
that overflows, an infinite value from finite numbers that is no division by zero (1e308 · 1e308),
is refused: it stands for a finite number that a float cannot hold.
"""
from __future__ import annotations

import math

from .expr import Node, dim_mul, make


def const(v: float) -> Node:
    """The number v; inf, -inf and nan are the values of undefined constants such as 1/0 and 0/0."""
    v = float(v)
    if v == 0:
        v = 0.0  # no negative zero
    elif v != v:
        v = math.nan  # one nan object: the intern table finds a key by identity (nan != nan)
    return make("const", (), v, ())


# ----------------------------------------------------------------------------- constant arithmetic

def _overflow(v: float, *operands: float) -> float:
    """v, unless it is infinite and every operand finite: a finite number too large for a float."""
    if math.isinf(v) and all(math.isfinite(x) for x in operands):
        from .errors import MatcalcError
        raise MatcalcError(f"a constant overflows to {v} (numbers must stay below about 1.8e308)")
    return v


def plus(a: float, b: float) -> float:
    """a + b in IEEE arithmetic (inf − inf is nan); an overflow is a MatcalcError."""
    return _overflow(a + b, a, b)


def times(a: float, b: float) -> float:
    """a · b in IEEE arithmetic (0 · inf is nan); an overflow is a MatcalcError."""
    return _overflow(a * b, a, b)


def over(a: float, b: float) -> float:
    """a / b in IEEE arithmetic: ±inf for a nonzero a over 0, nan for 0/0 (constants have no −0)."""
    if b == 0:
        return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a)
    return _overflow(a / b, a, b)


def power(a: float, e: float) -> float | None:
    """a ** e as numpy computes it (0 ** −1 is inf, (−8) ** 0.5 is nan); None when a finite
    result overflows (10 ** 400 stays a power: it is a finite number)."""
    if a < 0 and math.isfinite(e) and not e.is_integer() and (math.isfinite(a) or e == 0.5):
        return math.nan  # no real value (numpy takes −inf ** 0.5 as sqrt(−inf), C's pow gives inf)
    try:
        v = a ** e
    except ZeroDivisionError:  # 0 to a negative power
        return math.inf
    except OverflowError:
        return None
    return None if math.isinf(v) and math.isfinite(a) and math.isfinite(e) and a != 0 else v


def constant_value(n: Node) -> float | None:
    """The number every entry of n is, if n is a constant, zeros, ones or c * ones; else None."""
    if n.op == "const":
        return n.attr
    if is_zero(n) or is_ones(n):
        return 0.0 if is_zero(n) else 1.0
    if n.op == "mul" and len(n.args) == 2 and n.args[0].op == "const" and is_ones(n.args[1]):
        return n.args[0].attr
    return None


def is_finite(n: Node) -> bool:
    """n is no constant whose value is inf or nan (an expression counts as finite)."""
    return n.op != "const" or math.isfinite(n.attr)


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
    return n.op == "zeros" or (n.op == "const" and n.attr == 0) or (n.op == "T" and n.args[0].op == "zeros")


def is_const(n: Node, v: float | None = None) -> bool:
    return n.op == "const" and (v is None or n.attr == v)


def is_ones(n: Node) -> bool:
    return n.op == "ones" or (n.op == "const" and n.attr == 1) or (n.op == "T" and n.args[0].op == "ones")
