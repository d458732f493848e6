"""Products as chains of factors: their shapes, the scalars inside them, the local rewrites of
adjacent factors (the identities of `identities.py` registered for "matmul"), the common ends of
several chains (factoring), and when a long operand stays whole (FLAT_MAX).

Kept apart from `simplify` (whose `matmul` uses them) because nothing here builds a product.
"""
from __future__ import annotations

import heapq

from .errors import InternalError
from .expr import Node, as_2d, fmt_shape, make


#: A sum, product or Hadamard product with more operands than this is kept whole, as one operand
#: (a nested block), by the sum or product built from it, instead of being flattened into it:
#: flattening an operand that grows by one term or factor per layer (the Jacobians
#: J_k = D_k W_k J_{k-1} of a deep network, the adjoints of nested x ⊙ σ(x), a residual network's
#: r_k = r_{k-1} + f(r_{k-1})) copies it at every layer, quadratic in the depth. What a person
#: writes is shorter and stays flat, with like terms and powers collected; factoring
#: (`_common_end`) opens a product's block where two chains differ.
FLAT_MAX = 16


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


def _common_end(chains: list[list[Node]], left: bool):
    """(common, rests): the longest run of factors that starts (left) or ends every chain while
    each keeps at least one factor, and what each chain keeps; None if there is none.

    A long product kept whole inside a chain (a block: FLAT_MAX) is opened only where the chains
    differ, the longest first (a shorter block may be the end of a longer one, never the
    reverse), so a shared block is compared once however long it is."""
    stacks = [ch[::-1] if left else list(ch) for ch in chains]  # top: the next factor from that end
    common: list[Node] = []
    while True:
        top = stacks[0][-1]
        if all(s[-1] is top for s in stacks):
            if all(len(s) > 1 for s in stacks):
                common.append(top)
                for s in stacks:
                    s.pop()
                continue
            longest = [s for s in stacks if _is_block(s[-1])]  # the same block: open it
        else:
            most = max(_flat_len(s[-1]) for s in stacks)
            longest = [s for s in stacks if _is_block(s[-1]) and _flat_len(s[-1]) == most]
        if not longest:
            break
        for s in longest:
            block = s.pop()
            s.extend(block.args[::-1] if left else block.args)
    if not common:
        return None
    if left:
        return common, [s[::-1] for s in stacks]
    return common[::-1], stacks


def _is_block(f: Node) -> bool:
    """A product kept whole as one factor of a longer one because it is past FLAT_MAX."""
    return f.op == "matmul" and len(f.args) > FLAT_MAX


def _flat_len(f: Node) -> int:
    """How many factors a product has when its nested blocks are opened (1: not a product);
    computed once per node, children first with an explicit stack (blocks nest deep)."""
    if f.op != "matmul":
        return 1
    stack = [f]
    while stack:
        n = stack[-1]
        if n._memo is None:
            n._memo = {}
        if "flat_len" in n._memo:
            stack.pop()
            continue
        todo = [a for a in n.args if a.op == "matmul" and (a._memo is None or "flat_len" not in a._memo)]
        if todo:
            stack.extend(todo)
            continue
        n._memo["flat_len"] = sum(a._memo["flat_len"] if a.op == "matmul" else 1 for a in n.args)
        stack.pop()
    return f._memo["flat_len"]


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
