"""Printing a shared expression graph in time and text linear in its distinct nodes.

A printer (`render._Base`) writes a node from the texts of the nodes its `_print_<op>` method
renders (through `dispatch`: the declared form, else `_print_<op>`): its *print children*, which may be nodes the printer makes on the way (`(…)ᵀ` of a sum,
`−t` of a negative term).  `plan` finds them once per node, with an explicit stack, by running
each `_print_<op>` with a stub `render` that records what it is asked for; `write` then renders the
nodes children first, so every `render` call is a memo hit: no recursion, whatever the depth.

A print child large enough and written more than once is named once, in a `where` binding.  The
bindings come in the order of the walk, children first, so each one uses only names bound before
it and the text evaluates back.
"""
from __future__ import annotations

from .expr import Node, size

SHARE_MIN_SIZE = 12      # a repeated piece at least this big (in nodes of its tree) is named once
UNSHARED_MIN_SIZE = 160  # with share=False only pieces this big are named (the text stays linear)
LONG_TEXT = 40           # a piece written from two places or more is named once its text is this long
UNSHARED_LONG_TEXT = 400
MAX_TEXT_DEPTH = 200     # a piece whose text nests this deep is named: every text parses back


class Plan:
    """The print graph below a root: nodes children first, their print children, the named ones."""

    def __init__(self, order: list[Node], kids: dict[int, list[Node]], named: list[Node]):
        self.order, self.kids, self.named = order, kids, named


def _print_children(printer, n: Node) -> list[Node]:
    rec: list[Node] = []
    printer.recording = rec
    try:
        printer.dispatch(n)  # the operator's declared form (ops/), the printer's method, or name(args)
    finally:
        printer.recording = None
    return rec


def plan(printer, root: Node, min_size: int) -> Plan:
    """Walk the print graph below `root` (iteratively) and choose the pieces to name."""
    kids: dict[int, list[Node]] = {}
    order: list[Node] = []
    done: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        n, expanded = stack.pop()
        key = id(n)
        if expanded:
            if key not in done:
                done.add(key)
                order.append(n)
            continue
        if key in done:
            continue
        if key not in kids:
            kids[key] = _print_children(printer, n)
        stack.append((n, True))
        for c in reversed(kids[key]):
            if id(c) not in done:
                stack.append((c, False))
    return Plan(order, kids, _choose(order, kids, root, min_size))


def _choose(order: list[Node], kids: dict[int, list[Node]], root: Node, min_size: int) -> list[Node]:
    """Pieces written more than once in the text (counting a named piece once) and big enough."""
    count = {id(root): 1}
    named = set()
    for n in reversed(order):  # parents before children
        c = count.get(id(n), 0)
        if n is not root and c >= 2 and n.args and n.op not in ("T", "const") and size(n) >= min_size:
            named.add(id(n))
            c = 1
        for a in kids[id(n)]:
            count[id(a)] = count.get(id(a), 0) + c
    return [n for n in order if id(n) in named]  # children first: dependency order


def _names(root: Node):
    """`t1`, `t2`, … skipping the names of the root's variables."""
    taken, i = root.vars, 0
    while True:
        i += 1
        if f"t{i}" not in taken:
            yield f"t{i}"


def binding_names(root: Node, k: int) -> list[str]:
    """The first k of `t1`, `t2`, … that are not names of the root's variables."""
    fresh = _names(root)
    return [next(fresh) for _ in range(k)]


def write(printer, root: Node, pl: Plan, long: int) -> tuple[str, list[tuple[str, str]]]:
    """The root's text and its (name, text) bindings, rendered children first from the memo.

    Besides the planned names, a piece referenced from two places or more whose text has become
    `long` characters is named as soon as it is written: no text is copied twice unless it is
    short, so the whole text stays linear in the size of the graph.  A piece whose text nests
    MAX_TEXT_DEPTH levels is named too, so that no text nests deeper than the parser reads."""
    printer.names = {}
    indeg: dict[int, int] = {}
    for n in pl.order:
        for c in pl.kids[id(n)]:
            indeg[id(c)] = indeg.get(id(c), 0) + 1
    planned = {id(n) for n in pl.named}
    fresh = _names(root)
    defs: list[tuple[str, str]] = []
    memo = printer.memo

    def name(n: Node, text: str) -> tuple[str, int]:
        label = next(fresh)
        defs.append((label, text))
        got = (printer.name(label), printer.ATOM)
        memo[id(n)] = (n, got)
        return got

    depth: dict[int, int] = {}  # how deep the text of each node nests (a name: 1)
    for n in pl.order:
        got = printer.dispatch(n)
        d = 1 + max((depth[id(c)] for c in pl.kids[id(n)]), default=0)
        if id(n) in planned:
            got, d = name(n, got[0]), 1
        elif n is not root and n.args and n.op != "const" and (
                d >= MAX_TEXT_DEPTH or (indeg.get(id(n), 0) >= 2 and len(got[0]) >= long)):
            a = n.args[0]
            if n.op == "T" and a.args and memo.get(id(a), (None,))[0] is a:  # name Xᵀ's X, not Xᵀ
                name(a, memo[id(a)][1][0])
                got, d = printer.dispatch(n), 2
            else:
                got, d = name(n, got[0]), 1
        memo[id(n)] = (n, got)
        depth[id(n)] = d
    return memo[id(root)][1][0], defs


def render_shared(printer, root: Node, share: bool = True) -> tuple[str, list[tuple[str, str]]]:
    """The root's text with `printer`, its repeated large pieces as (name, text) bindings."""
    pl = plan(printer, root, SHARE_MIN_SIZE if share else UNSHARED_MIN_SIZE)
    scale = getattr(printer, "LONG_SCALE", 1)  # LaTeX takes about three times the characters
    return write(printer, root, pl, scale * (LONG_TEXT if share else UNSHARED_LONG_TEXT))
