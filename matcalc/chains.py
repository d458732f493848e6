"""Products as chains of factors: their shapes, the scalars inside them, and the local
rewrites of adjacent factors (the identities of `identities.py` registered for "matmul").

Kept apart from `simplify` (whose `matmul` uses them) because nothing here builds a product.
"""
from __future__ import annotations

import heapq

from .errors import InternalError
from .expr import Node, as_2d, fmt_shape, make


class InternalShapeError(InternalError):
    """A rule built an ill-shaped node: a bug in matcalc, never the user's input."""


def _fail(op: str, *nodes: Node):
    shapes = ", ".join(fmt_shape(n.shape) for n in nodes)
    raise InternalShapeError(f"internal error: {op} of shapes {shapes}")


def _chain(t: Node) -> list[Node]:
    return list(t.args) if t.op == "matmul" else [t]


def _chain_shape(fs: list[Node]) -> tuple:
    r, c = as_2d(fs[0].shape)
    for f in fs[1:]:
        fr, fc = as_2d(f.shape)
        if fr != c:
            _fail("@", *fs)
        c = fc
    return _ends_shape(fs[0].shape, fs[-1].shape, r, c)


def _ends_shape(first: tuple, last: tuple, r, c) -> tuple:
    """The shape of an r×c product from its first and last factors' shapes (vectors are columns)."""
    if len(last) == 1:
        return () if r == 1 and len(first) == 2 else (r,)
    if len(first) == 1 and r != 1:
        return (r, c)
    if r == 1 and c == 1:
        return ()
    return (r, c)


def _is_row(f: Node) -> bool:
    return len(f.shape) == 2 and f.shape[0] == 1


def _kron_parts(f: Node):
    return f.args if f.op == "kron" else None


def _seams_shape(chain: list[Node], seams: list[int]) -> tuple:
    """The shape of a product whose factors fit everywhere except perhaps at the seams (positions
    p where chain[p-1] and chain[p] came from different arguments)."""
    for p in seams:
        if 0 < p < len(chain) and as_2d(chain[p - 1].shape)[1] != as_2d(chain[p].shape)[0]:
            _fail("@", *chain)
    r, c = as_2d(chain[0].shape)[0], as_2d(chain[-1].shape)[1]
    return _ends_shape(chain[0].shape, chain[-1].shape, r, c)


def _has_interior_rv(chain) -> bool:
    """A row factor after the first or a vector factor before the last: the only places an
    inner product uᵀ … v can start or end."""
    return any(len(f.shape) == 1 for f in chain[:-1]) or \
        any(len(f.shape) == 2 and f.shape[0] == 1 for f in chain[1:])


def interior_rv(f: Node) -> bool:
    """`_has_interior_rv` of a product's factors, computed once per node."""
    memo = f._memo
    if memo is None:
        memo = f._memo = {}
    got = memo.get("interior_rv")
    if got is None:
        got = memo["interior_rv"] = _has_interior_rv(f.args)
    return got


def _inner_products(chain: list[Node], maybe: bool = True) -> tuple[list[Node], list[Node]]:
    """Take the scalars out of a product: in b uᵀ A v cᵀ the factor uᵀ A v is a number, so the
    product is (uᵀ A v) b cᵀ (and its text parses: a number is no operand of @). `maybe` False:
    the caller knows the chain has no row after its first factor nor vector before its last."""
    inner = []
    changed = maybe and len(chain) > 2 and _has_interior_rv(chain)
    while changed and len(chain) > 2:
        changed = False
        for i, f in enumerate(chain):
            if len(f.shape) == 2 and f.shape[0] == 1:
                j = next((k for k in range(i + 1, len(chain)) if len(chain[k].shape) == 1), None)
                if j is not None and (i, j) != (0, len(chain) - 1):
                    inner.append(make("matmul", tuple(chain[i:j + 1]), None, ()))
                    chain = chain[:i] + chain[j + 1:]
                    changed = True
                    break
    return chain, inner


def _rewrite_chain(chain: list[Node], seams: list[int] | None = None) -> list[Node]:
    """Local rewrites of adjacent factors (diag·diag, kron·kron, a trailing ones vector, ...),
    leftmost first, until none applies. Only pairs at `seams` (positions p: chain[p-1], chain[p]),
    the last pair and the pairs around a rewrite can apply (the rest lie inside an already
    canonical product): the stretches between them are copied, not visited."""
    n = len(chain)
    if n < 2:
        return chain
    todo = list(range(1, n)) if seams is None else sorted({p for p in seams if 0 < p < n} | {n - 1})
    heapq.heapify(todo)
    out, pos = [chain[0]], 1
    while todo:
        p = heapq.heappop(todo)
        if p < pos:
            continue
        out.extend(chain[pos:p])
        pending = [chain[p]]  # pop() yields the next factor to place after out[-1]
        while pending:
            f = pending.pop()
            new = I.apply("matmul", out[-1], f, not pending and p == n - 1) if out else None
            if new is None:
                out.append(f)
                continue
            out.pop()
            pending.extend(reversed(_chain(new)))
            if p + 1 < n:  # the next factor's left neighbour changes
                heapq.heappush(todo, p + 1)
        pos = p + 1
    out.extend(chain[pos:])
    return out


from . import identities as I  # noqa: E402  (the identities call back into the constructors)
