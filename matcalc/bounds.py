"""The range of a node's entries whatever its variables' values, by interval arithmetic from the
operators' declared `bounds` (softmax in [0, 1], exp in [0, ∞), tanh in [-1, 1], …): generated
code evaluates Bᵀ diag(v) B as the Gram matrix of sqrt(v) B when every entry of v is ≥ 0."""
from __future__ import annotations

from .expr import Node, postorder


def entry_range(v: Node, memo: dict) -> tuple[float, float]:
    """(lo, hi) bounding every entry of v (memo: node id -> range, shared across calls)."""
    from .ops import registry
    for n in postorder(v):
        if id(n) in memo:
            continue
        a = [memo[id(x)] for x in n.args]
        if n.op == "fn":
            s = registry.fn(n.attr).bounds or _ANY
        elif n.op in ("var", "dvar"):
            s = _ANY
        elif n.op == "const":
            s = (float(n.attr), float(n.attr))
        elif n.op in ("add", "mul", "pow"):
            s = _interval(n.op, a, n.args)
        elif n.op in ("vec", "T", "diag"):
            s = a[0]
        else:
            s = getattr(registry.op(n.op), "bounds", None) or _ANY
        memo[id(n)] = s
    return memo[id(v)]


_ANY = (-float("inf"), float("inf"))


def _interval(op: str, a: list, args) -> tuple:
    """The range of a sum, product or constant power from its arguments' ranges."""
    if op == "add":
        return sum(x[0] for x in a), sum(x[1] for x in a)
    if op == "mul":
        lo, hi = a[0]
        for c, d in a[1:]:
            ends = [_times0(x, y) for x in (lo, hi) for y in (c, d)]
            lo, hi = min(ends), max(ends)
        return lo, hi
    e = args[1]
    if e.op != "const":
        return _ANY
    k = float(e.attr)
    lo, hi = a[0]
    if k.is_integer() and int(k) % 2 == 0 and k > 0:
        top = max(abs(lo), abs(hi)) ** k
        return (0.0 if lo <= 0 <= hi else min(abs(lo), abs(hi)) ** k), top
    return (0.0, float("inf")) if lo >= 0 else _ANY


def _times0(x: float, y: float) -> float:
    """x * y with 0 * inf = 0 (an entry that is exactly 0 stays 0)."""
    return 0.0 if x == 0 or y == 0 else x * y
