"""The expression graph: immutable, interned nodes with symbolic shapes.

A shape is `()` (scalar), `(n,)` (column vector), `(1, n)` (row vector) or `(m, n)` (matrix).
A dimension is an int, a name (str) or a product of those (a sorted tuple, e.g. `("m", "n")`
for m·n, the size of vec of an m×n matrix).  Building the same node twice returns the same
object, so equality is identity and a repeated subexpression exists once.
"""
from __future__ import annotations

import threading
import weakref
import zlib
from typing import Iterator

from . import budget

Dim = object  # int | str | tuple


class Node:
    """One operator applied to child nodes. Build nodes with `make` (or `simplify`'s constructors)."""

    __slots__ = ("op", "args", "attr", "shape", "h", "__weakref__", "_vars", "_size", "_sym", "_memo")

    def __repr__(self) -> str:
        from .render import to_text
        return f"<{to_text(self)} : {fmt_shape(self.shape)}>"

    def __lt__(self, other: "Node") -> bool:
        return sort_key(self) < sort_key(other)

    @property
    def vars(self) -> frozenset:
        """Names of the variables (and differential seeds) the node depends on (set by `make`)."""
        return self._vars

    def has(self, name: str) -> bool:
        return name in self.vars

    def has_seed(self) -> bool:
        return any(v.startswith("d:") for v in self.vars)


_TABLE: "weakref.WeakValueDictionary[tuple, Node]" = weakref.WeakValueDictionary()
# Looking a node up and inserting it must be one step: two threads building the same node at
# once would otherwise create two copies, and identity is equality in this graph.
_TABLE_LOCK = threading.Lock()


def _stable_hash(op: str, attr, shape, args) -> int:
    h = zlib.crc32(f"{op}|{attr!r}|{shape!r}".encode())
    for i, a in enumerate(args):
        h = (h * 1000003 + a.h + i) & 0xFFFFFFFFFFFF
    return h


_NO_VARS: frozenset = frozenset()


def _vars_of(op: str, attr, args: tuple) -> frozenset:
    """The variables a new node depends on, from its arguments' (each computed when it was made,
    so no pass ever walks the graph for them)."""
    if op == "var":
        return frozenset((attr,))
    if op == "dvar":
        return frozenset(("d:" + attr,))
    v = _NO_VARS
    for a in args:
        av = a._vars
        if av is not v and not av <= v:
            v = av if not v else v | av
    return v


def make(op: str, args: tuple = (), attr=None, shape: tuple = ()) -> Node:
    """The unique node `op(args; attr)` of the given shape (no simplification)."""
    args = tuple(args)
    if len(args) > budget.MAX_OPERANDS:
        budget.too_many_operands(op, len(args))
    budget.tick(1 + len(args))  # the work budget (matcalc.budget): a node asked for, its arguments read
    key = (op, tuple(map(id, args)), attr, shape)
    node = _TABLE.get(key)
    if node is not None:
        return node
    fresh = Node()
    fresh.op, fresh.args, fresh.attr, fresh.shape = op, args, attr, shape
    fresh.h = _stable_hash(op, attr, shape, args)
    fresh._vars = _vars_of(op, attr, args)
    fresh._size = min(10**9, 1 + sum(a._size for a in args))
    fresh._sym = None
    fresh._memo = None  # per-node results of pure functions of the node (transpose.memo_on_node)
    with _TABLE_LOCK:
        node = _TABLE.get(key)
        if node is None:
            _TABLE[key] = node = fresh
    return node


# ----------------------------------------------------------------------------- dimensions

def dim_factors(d) -> tuple:
    return d if isinstance(d, tuple) else (d,)


def dim_mul(*dims) -> Dim:
    """The product of dimensions, canonical: ints folded, names sorted; 1 if empty."""
    k, names = 1, []
    for d in dims:
        for f in dim_factors(d):
            if isinstance(f, int):
                k *= f
            else:
                names.append(f)
    if k == 0:
        return 0
    names.sort()
    if not names:
        return k
    if k != 1:
        return (k, *names)
    return names[0] if len(names) == 1 else tuple(names)


def numel(shape: tuple) -> Dim:
    return dim_mul(*shape)


def fmt_dim(d) -> str:
    if isinstance(d, tuple):
        return "·".join(str(f) for f in d)
    return str(d)


def fmt_shape(shape: tuple) -> str:
    if shape == ():
        return "scalar"
    if len(shape) == 1:
        return f"{fmt_dim(shape[0])}-vector"
    if shape[0] == 1:
        return f"1×{fmt_dim(shape[1])} row vector"
    return f"{fmt_dim(shape[0])}×{fmt_dim(shape[1])}"


def transpose_shape(s: tuple) -> tuple:
    if len(s) == 0:
        return s
    if len(s) == 1:
        return (1, s[0])
    if s[0] == 1:
        return (s[1],)
    return (s[1], s[0])


def as_2d(s: tuple) -> tuple:
    """A shape as rows × columns (scalars 1×1, column vectors n×1)."""
    return (1, 1) if s == () else (s[0], 1) if len(s) == 1 else s


def broadcast_shape(s1: tuple, s2: tuple):
    """numpy broadcasting restricted to matcalc's shapes; None when they do not broadcast."""
    if s1 == s2 or s2 == ():
        return s1
    if s1 == ():
        return s2
    if len(s1) == 1 and len(s2) == 2 and s2[1] == s1[0]:
        return s2
    if len(s2) == 1 and len(s1) == 2 and s1[1] == s2[0]:
        return s1
    if len(s1) == 2 and len(s2) == 2:  # per axis: equal, or 1 (m×1 with 1×n is m×n)
        out = []
        for a, b in zip(s1, s2):
            if a != b and a != 1 and b != 1:
                return None
            out.append(b if a == 1 else a)
        return tuple(out)
    return None


def matmul_shape(a: tuple, b: tuple):
    """Shape of `A @ B`, None if the inner dimensions differ (scalars are not allowed)."""
    if a == () or b == ():
        return None
    if len(a) == 1:  # a column vector: only an outer product with a row is defined
        if len(b) == 2 and b[0] == 1:
            return (a[0], b[1])
        return None
    if a[1] != (b[0]):
        return None
    if len(b) == 1:
        return () if a[0] == 1 else (a[0],)
    if a[0] == 1 and b[1] == 1:
        return ()
    return (a[0], b[1])


# ----------------------------------------------------------------------------- traversal

def postorder(root: Node, done=None) -> list[Node]:
    """Every distinct node below `root` (included), children before parents; iterative.
    `done(node)` True: the node (and what is below it) is already handled, so it is skipped —
    a memo filled by earlier walks then costs one visit per new node, not per walk."""
    seen, out, stack = set(), [], [(root, False)]
    while stack:
        node, finished = stack.pop()
        if finished:
            out.append(node)
            continue
        if id(node) in seen or (done is not None and done(node)):
            continue
        budget.tick()
        seen.add(id(node))
        stack.append((node, True))
        for a in reversed(node.args):
            if id(a) not in seen:
                stack.append((a, False))
    return out


def iter_vars(root: Node) -> Iterator[Node]:
    for n in postorder(root):
        if n.op == "var":
            yield n


_CATEGORY = {"const": 0, "numel": 0, "var": 1, "T": 2, "pow": 4, "mul": 5, "matmul": 5, "add": 6,
             "K": 2, "eye": 2, "ones": 2, "zeros": 2}


def sort_key(n: Node) -> tuple:
    """A deterministic order for the operands of commutative operators (X just before Xᵀ)."""
    flag = 0
    if n.op == "T":
        n, flag = n.args[0], 1
    if n.op == "var":
        return (1, n.attr, flag, n.h)
    return (_CATEGORY.get(n.op, 3), "", n.h, flag)


def size(n: Node) -> int:
    """Number of nodes of the expanded tree (saturating), a measure of output size."""
    return n._size
