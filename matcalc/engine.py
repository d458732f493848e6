"""The walks that compose the local rules of `rules.py` by the chain rule.

- `reverse(f, x, g)`: the adjoint of variable x when f's adjoint is g (one reverse sweep over
  the shared graph, contributions summed per node) — gradients and backprop rules;
  `reverse_many(f, xs, g)` the adjoints of several variables from the same sweep.
- `forward(f, seeds)`: the differential df, linear in the seeds dX (one forward sweep).
- `vec_jacobian(df, dX)`: J with vec(df) = J vec(dX) (column-major vec), read off df by
  `vec(A dX B) = (Bᵀ ⊗ A) vec(dX)`, `vec(dXᵀ) = K vec(dX)`, `vec(a ⊙ dX) = diag(vec a) vec(dX)`.
"""
from __future__ import annotations

from .errors import InternalError
from .expr import Node, as_2d, numel, postorder
from .rules import JVP, VJP
from .simplify import (T, add, bcast, commutation, diag, eye, kron, matmul, mul, ones, vec, zeros)


def reverse(f: Node, x: Node, g: Node) -> Node:
    """The adjoint of variable `x` given the adjoint `g` of `f` (reverse mode)."""
    return reverse_many(f, (x,), g)[x.attr]


def reverse_many(f: Node, xs, g: Node) -> dict[str, Node]:
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
        rule = VJP.get(node.op)
        if rule is None:
            raise InternalError(f"no derivative rule for {node.op}")
        for i, a in enumerate(node.args):
            if a.vars & names:
                adj.setdefault(id(a), []).append(rule(total, node, i))
    return out


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
        rule = JVP.get(node.op)
        if rule is None:
            raise InternalError(f"no derivative rule for {node.op}")
        d[id(node)] = rule(node, ds)
    return d[id(f)]


def _lift(j: Node, src: tuple, dst: tuple) -> Node:
    """The vec-Jacobian of a value of shape `src` broadcast to shape `dst`."""
    if src == dst:
        return j
    if src == ():
        return matmul(vec(ones(dst)), j)
    # a vector (or row) broadcast over the rows of an m×n matrix: vec(1 vᵀ) = (I_n ⊗ 1_m) v
    m, n = dst
    return matmul(kron(eye(n), ones((m,))), j)


def vec_jacobian(df: Node, seed: Node) -> Node:
    """J such that vec(df) = J vec(seed), for df linear in the differential `seed`."""
    memo: dict[int, Node] = {}
    key = "d:" + seed.attr

    def J(e: Node) -> Node:
        got = memo.get(id(e))
        if got is not None:
            return got
        out = _J(e)
        memo[id(e)] = out
        return out

    def _J(e: Node) -> Node:
        if e is seed:
            return eye(numel(seed.shape))
        if key not in e.vars:  # no dependence (e.g. the zero differential of step or sign)
            return zeros((numel(e.shape), numel(seed.shape)))
        op = e.op
        if op == "add":
            return add(*[_lift(J(t), t.shape, e.shape) for t in e.args if key in t.vars])
        if op == "mul":
            idx = [i for i, a in enumerate(e.args) if key in a.vars]
            if len(idx) != 1:
                raise InternalError("internal error: the differential is not linear")
            i = idx[0]
            x = e.args[i]
            a = mul(*[f for j, f in enumerate(e.args) if j != i])
            if a.shape == ():
                return mul(a, _lift(J(x), x.shape, e.shape))
            if x.shape == ():
                return matmul(vec(bcast(a, e.shape)), J(x))
            return matmul(diag(vec(bcast(a, e.shape))), _lift(J(x), x.shape, e.shape))
        if op == "matmul":
            idx = [i for i, a in enumerate(e.args) if key in a.vars]
            if len(idx) != 1:
                raise InternalError("internal error: the differential is not linear")
            i = idx[0]
            x = e.args[i]
            r, c = as_2d(x.shape)
            left = matmul(*e.args[:i]) if i else eye(r)
            right = T(matmul(*e.args[i + 1:])) if i + 1 < len(e.args) else eye(c)
            return matmul(kron(right, left), J(x))
        if op == "T":
            x = e.args[0]
            r, c = as_2d(x.shape)
            return matmul(commutation(r, c), J(x))
        if op == "sum":
            x = e.args[0]
            if e.attr is None:
                return matmul(T(vec(ones(x.shape))), J(x))
            m, n = x.shape
            if e.attr == 0:
                return matmul(kron(eye(n), T(ones((m,)))), J(x))
            return matmul(kron(T(ones((n,))), eye(m)), J(x))
        if op == "tr":
            return matmul(T(vec(eye(e.args[0].shape[0]))), J(e.args[0]))
        if op == "vec":
            return J(e.args[0])
        if op == "pow" and e.args[1].op == "const" and e.args[1].attr == 1:
            return J(e.args[0])
        raise InternalError(f"cannot read a Jacobian off a differential through {op}")

    return J(df)
