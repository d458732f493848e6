"""The transpose's constructor, pushed to the leaves by the identities of "T" (memoised per
node: a sum or product shared across the graph is transposed once), and structural symmetry.
Import them through `matcalc.simplify`, which re-exports them.
"""
from __future__ import annotations

import functools

from . import identities as I
from .expr import Node, make, transpose_shape
from .simplify import ones, zeros


def memo_on_node(key: str):
    """Cache a function of one node on the node itself, so that a walk through a shared graph
    computes it once per distinct node. Only for pure functions of the node: under threads a
    race can only compute the same (interned) value twice."""
    def deco(f):
        @functools.wraps(f)
        def cached(n: Node) -> Node:
            if not I.active():  # building without some identity: remember nothing
                return f(n)
            memo = n._memo
            if memo is None:
                memo = n._memo = {}
            got = memo.get(key)
            if got is None:
                got = memo[key] = f(n)
            return got
        return cached
    return deco


def is_symmetric(n: Node, sym_vars: frozenset = frozenset()) -> bool:
    """True when n equals its transpose by its structure (XᵀX, A + Aᵀ, inv of a symmetric
    matrix, ...); variables named in `sym_vars` are declared symmetric."""
    if len(n.shape) != 2 or n.shape[0] != n.shape[1] or n.shape[0] == 1:
        return False
    cache = not sym_vars and I.active()
    if cache and n._sym is not None:
        return n._sym
    op = n.op
    if op in ("eye", "diag", "ones", "zeros"):
        out = True
    elif op == "var":
        out = n.attr in sym_vars
    elif op in ("inv", "fn", "pow") or (op == "T" and n.args[0].shape == n.shape):
        out = is_symmetric(n.args[0], sym_vars) and (op != "pow" or n.args[1].shape == ())
    elif op == "mul":
        out = all(f.shape == () or is_symmetric(f, sym_vars) for f in n.args)
    elif op == "add":
        ts = list(n.args)
        out = all(is_symmetric(t, sym_vars) or T(t) in ts for t in ts)
    elif op == "matmul":
        fs = n.args
        k = len(fs)
        out = all(T(fs[i]) is fs[k - 1 - i] for i in range(k // 2)) and \
            (k % 2 == 0 or is_symmetric(fs[k // 2], sym_vars))
    else:
        out = False
    if cache:
        n._sym = out
    return out


@memo_on_node("T")
def T(a: Node) -> Node:
    """Transpose, pushed through sums, products and inverses down to the leaves."""
    op = a.op
    if a.shape == () or op in ("eye", "diag"):
        return a
    if op == "zeros":
        return zeros(transpose_shape(a.shape))
    if op == "ones" and len(a.shape) == 2:
        return ones(transpose_shape(a.shape))
    return I.apply("T", a) or make("T", (a,), None, transpose_shape(a.shape))
