"""The numeric form of a graph: det(A) A⁻¹ computed as the adjugate adj(A).

The derivative of det is written det(A) A⁻ᵀ, which is the transposed adjugate: it exists where A
is singular, but A⁻¹ does not. Every channel that computes numbers (`evaluate`, generated code,
`check`) computes the graph's numeric form instead: in each product, a factor A⁻¹ (or A⁻ᵀ, or one
inside a matrix product) beside a factor det(A)^p with p ≥ 1 becomes adj(A), and the power of
det(A) drops by one. The printed text is the graph itself, unchanged. adj(A) is computed from
the SVD A = U S Vᵀ as det(U) det(V) V diag(∏_{j≠i} s_j) Uᵀ: no division, so it is exact at rank
n − 1 (one nonzero singular-value product) and zero at rank ≤ n − 2, as the adjugate is.
"""
from __future__ import annotations

from .expr import Node, make, postorder
from .leaves import const
from .transpose import memo_on_node


def adjugate(a):
    """adj(A) of a square numpy array (det(A) A⁻¹ where A is invertible), through the SVD; nan
    where A has an entry that is not finite. The generated code's `_adjugate` (backends.py) is
    the same computation."""
    import numpy as np
    a = np.asarray(a, dtype=float)
    bad = not np.isfinite(a).all()
    u, s, vt = np.linalg.svd(np.where(np.isfinite(a), a, 0.0))
    others = np.prod(np.where(np.eye(len(s)) > 0, 1.0, s[None, :]), 1)  # ∏_{j≠i} s_j
    out = np.linalg.det(u) * np.linalg.det(vt) * (vt.T * others[None, :]) @ u.T
    return np.full(a.shape, np.nan) if bad else out


def _det_power(f: Node) -> tuple[Node, float] | None:
    """(A, p) if f is det(A) ** p with a number p ≥ 1."""
    if f.op == "det":
        return f.args[0], 1.0
    if f.op == "pow" and f.args[0].op == "det" and f.args[1].op == "const" and f.args[1].attr >= 1:
        return f.args[0].args[0], f.args[1].attr
    return None


def _with_adjugate(g: Node, a: Node) -> Node | None:
    """g with one factor A⁻¹ (possibly transposed, or in a matrix product) made adj(A); None if none."""
    if g.op == "inv" and g.args[0] is a:
        return make("adj", (a,), None, g.shape)
    if g.op == "T":
        inner = _with_adjugate(g.args[0], a)
        return None if inner is None else make("T", (inner,), None, g.shape)
    if g.op == "matmul":
        for k, h in enumerate(g.args):
            s = _with_adjugate(h, a)
            if s is not None:
                return make("matmul", g.args[:k] + (s,) + g.args[k + 1:], None, g.shape)
    return None


def _pair(m: Node) -> Node | None:
    """A product's numeric form: each det(A) ** p pays one power for each A⁻¹ made adj(A)."""
    factors: list = list(m.args)
    changed = False
    for i, f in enumerate(m.args):
        dp = _det_power(f)
        if dp is None:
            continue
        a, p = dp
        while p >= 1:
            hit = next(((j, s) for j, g in enumerate(factors) if j != i and g is not None
                        for s in [_with_adjugate(g, a)] if s is not None), None)
            if hit is None:
                break
            factors[hit[0]], p, changed = hit[1], p - 1, True
        if p != dp[1]:
            d = f if f.op == "det" else f.args[0]
            factors[i] = None if p == 0 else d if p == 1 else make("pow", (d, const(p)), None, ())
    if not changed:
        return None
    kept = [f for f in factors if f is not None]
    return kept[0] if len(kept) == 1 and kept[0].shape == m.shape else make("mul", tuple(kept), None, m.shape)


@memo_on_node("numeric form")
def numeric_form(root: Node) -> Node:
    """`root` as the channels that compute numbers evaluate it (see the module's docstring)."""
    new: dict[int, Node] = {}
    for n in postorder(root):
        args = tuple(new[id(a)] for a in n.args)
        m = n if all(x is y for x, y in zip(args, n.args)) else make(n.op, args, n.attr, n.shape)
        if m.op == "mul" and any(f.op in ("det", "pow") for f in m.args):
            m = _pair(m) or m
        new[id(n)] = m
    return new[id(root)]
