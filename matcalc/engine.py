"""The walks that compose the operators' local rules (declared in `ops/`) by the chain rule.

- `reverse(f, x, g)`: the adjoint of variable x when f's adjoint is g (one reverse sweep over
  the shared graph, contributions summed per node) — gradients and backprop rules;
  `reverse_many(f, xs, g)` the adjoints of several variables from the same sweep.
- `forward(f, seeds)`: the differential df, linear in the seeds dX (one forward sweep).
- `vec_jacobian(df, dX)`: J with vec(df) = J vec(dX) (column-major vec), read off df by
  `vec(A dX B) = (Bᵀ ⊗ A) vec(dX)`, `vec(dXᵀ) = K vec(dX)`, `vec(a ⊙ dX) = diag(vec a) vec(dX)`.
"""
from __future__ import annotations

from typing import Callable

from .errors import InternalError
from .expr import Node, numel, postorder
from .ops import registry
from .simplify import add, eye, unvec, zeros

#: (node, adjoint, [(argument index, contribution)]) for each node the reverse sweep expands
Observer = Callable[[Node, Node, list], None]


def reverse(f: Node, x: Node, g: Node, observe: Observer | None = None) -> Node:
    """The adjoint of variable `x` given the adjoint `g` of `f` (reverse mode); `observe` sees
    every expansion (the steps write the sweep out from it)."""
    return reverse_many(f, (x,), g, observe)[x.attr]


def reverse_many(f: Node, xs, g: Node, observe: Observer | None = None) -> dict[str, Node]:
    """The adjoints of the variables `xs` given the adjoint `g` of `f`, from ONE reverse sweep:
    the pieces they share (the adjoints of common subexpressions) are built once."""
    want = {x.attr: x for x in xs}
    names = frozenset(n for n in want if f.has(n))
    out = {n: zeros(x.shape) for n, x in want.items()}
    if not names:
        return out
    adj: dict[int, list[Node]] = {id(f): [g]}
    left = set(names)
    for node in reversed(postorder(f)):
        parts = adj.pop(id(node), None)
        if parts is None:
            continue
        total = add(*parts) if len(parts) > 1 else parts[0]
        if node.op == "var" and node.attr in left and node is want[node.attr]:
            out[node.attr] = total
            left.discard(node.attr)
            if not left:
                break
            continue
        rule = registry.op(node.op).vjp_rule()
        contribs = [(i, _like(rule(total, node, i), a.shape)) for i, a in enumerate(node.args) if a.vars & names]
        for i, c in contribs:
            adj.setdefault(id(node.args[i]), []).append(c)
        if observe is not None:
            observe(node, total, contribs)
    return out


def _like(g: Node, shape: tuple) -> Node:
    """An adjoint in its argument's shape: an m×1 column's adjoint may come out as an m-vector
    (G @ b for A @ bᵀ) and is the same numbers, column-major."""
    if g.shape != shape and len(shape) == 2 and shape[1] == 1 and g.shape == (shape[0],):
        return unvec(g, shape[0], 1)
    return g


def forward(f: Node, seeds: dict[str, Node]) -> Node | None:
    """The differential of `f` when each variable named in `seeds` moves by its seed."""
    d: dict[int, Node | None] = {}
    names = set(seeds)
    for node in postorder(f):
        if node.op == "var":
            d[id(node)] = seeds.get(node.attr)
            continue
        if not node.args or not (node.vars & names):
            d[id(node)] = None
            continue
        ds = [d[id(a)] for a in node.args]
        d[id(node)] = registry.op(node.op).jvp_rule()(node, ds)
    return d[id(f)]


def vec_jacobian(df: Node, seed: Node) -> Node:
    """J such that vec(df) = J vec(seed), for df linear in the differential `seed`."""
    memo: dict[int, Node] = {}
    key = "d:" + seed.attr

    def J(e: Node) -> Node:
        got = memo.get(id(e))
        if got is None:
            got = memo[id(e)] = _J(e)
        return got

    def _J(e: Node) -> Node:
        if e is seed:
            return eye(numel(seed.shape))
        if key not in e.vars:  # no dependence (e.g. the zero differential of step or sign)
            return zeros((numel(e.shape), numel(seed.shape)))
        rule = registry.op(e.op).vec_jac
        if rule is None:
            raise InternalError(f"cannot read a Jacobian off a differential through {e.op}")
        return rule(e, J, key)

    for node in postorder(df):  # children first, so that the rules' J(child) are looked up, never
        if key in node.vars:    # recursed into: a differential may be thousands of levels deep
            J(node)
    return J(df)
