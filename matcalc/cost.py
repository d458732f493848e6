"""Flop counts of generated code in the symbolic dimensions, and choices between two ways to
compute the same product.

A cost (`Poly`) is a polynomial in the dimension names plus minima of pairs of costs (choices
the generated code makes at run time). `choose(a, b)` compares
two costs at a fixed set of sizes: when one is never dearer at any of them the choice is made
at code-generation time; otherwise it is left to run time, where the generated code evaluates
both counts from the arrays' shapes (as `np.linalg.multi_dot` does) and takes the cheaper way.
A wrong guess only costs speed: both ways compute the same value.
"""
from __future__ import annotations

import itertools

from .chain import product_shape
from .expr import as_2d, dim_factors

SAMPLE_SIZES = (1, 3, 30, 300, 3000)


class Poly:
    """A cost: a polynomial with integer coefficients in dimension names (monomial -> coefficient),
    plus the minimum of pairs of costs (choices the generated code makes at run time)."""

    __slots__ = ("terms", "mins")

    def __init__(self, terms: dict | None = None, mins: tuple = ()):
        self.terms = {m: c for m, c in (terms or {}).items() if c}
        self.mins = mins

    @staticmethod
    def dim(d) -> "Poly":
        """The size of one dimension (an int, a name, or a product of those)."""
        k, names = 1, []
        for f in dim_factors(d):
            if isinstance(f, int):
                k *= f
            else:
                names.append(f)
        return Poly({tuple(sorted(names)): k})

    @staticmethod
    def min(a: "Poly", b: "Poly") -> "Poly":
        return Poly(mins=((a, b),))

    def __add__(self, other: "Poly") -> "Poly":
        out = dict(self.terms)
        for m, c in other.terms.items():
            out[m] = out.get(m, 0) + c
        return Poly(out, self.mins + other.mins)

    def __mul__(self, other: "Poly") -> "Poly":
        """The product of two polynomials (without run-time choices)."""
        out: dict = {}
        for (m1, c1), (m2, c2) in itertools.product(self.terms.items(), other.terms.items()):
            m = tuple(sorted(m1 + m2))
            out[m] = out.get(m, 0) + c1 * c2
        return Poly(out)

    def names(self) -> set:
        return {x for m in self.terms for x in m}.union(*(a.names() | b.names() for a, b in self.mins))

    def value(self, env: dict) -> int:
        total = sum(min(a.value(env), b.value(env)) for a, b in self.mins)
        for m, c in self.terms.items():
            for x in m:
                c *= env[x]
            total += c
        return total

    def code(self, name) -> str:
        """Python code computing the cost from the dimensions' identifiers (name(dim))."""
        parts = ["*".join([str(c)] * (c != 1 or not m) + [name(x) for x in m]) for m, c in sorted(self.terms.items())]
        parts += [f"min({a.code(name)}, {b.code(name)})" for a, b in self.mins]
        return " + ".join(parts) or "0"


def matmul_cost(a: tuple, b: tuple) -> Poly:
    """Multiply-adds of one product of two operands of shapes a and b."""
    r, k = as_2d(a)
    _, c = as_2d(b)
    return Poly.dim(r) * Poly.dim(k) * Poly.dim(c)


def size(shape: tuple) -> Poly:
    r, c = as_2d(shape)
    return Poly.dim(r) * Poly.dim(c)


def choose(a, b) -> bool | None:
    """True when cost a is never above cost b at the sizes tried, False when b is never above a,
    None when it depends on the sizes (decide at run time)."""
    names = sorted(a.names() | b.names())
    a_wins = b_wins = False
    for env in _envs(names):
        va, vb = a.value(env), b.value(env)
        a_wins |= va < vb
        b_wins |= vb < va
    if a_wins and b_wins:
        return None
    return not b_wins


def _envs(names: list):
    """Sizes to try: every name equal (each sample size), then each name small or large alone."""
    if not names:
        yield {}
        return
    for s in SAMPLE_SIZES:
        yield dict.fromkeys(names, s)
    for x in names:
        for s, rest in ((SAMPLE_SIZES[0], SAMPLE_SIZES[-2]), (SAMPLE_SIZES[-1], SAMPLE_SIZES[2])):
            env = dict.fromkeys(names, rest)
            env[x] = s
            yield env


def three(shapes: list) -> tuple[Poly, Poly]:
    """The costs of (A B) C and A (B C)."""
    a, b, c = shapes
    return (matmul_cost(a, b) + matmul_cost(product_shape(a, b), c),
            matmul_cost(b, c) + matmul_cost(a, product_shape(b, c)))


def left_tree(k: int):
    t = 0
    for i in range(1, k):
        t = (t, i)
    return t


def tree_cost(t, shapes: list) -> tuple:
    """(cost, shape) of an association tree over shapes."""
    if isinstance(t, int):
        return Poly(), shapes[t]
    lc, ls = tree_cost(t[0], shapes)
    rc, rs = tree_cost(t[1], shapes)
    return lc + rc + matmul_cost(ls, rs), product_shape(ls, rs)
