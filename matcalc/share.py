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


class Session:
    """Several texts written in order by one printer, sharing names, the way a derivation names
    t1, t2, … once and uses them in every later line: a piece written in an earlier text is
    written again as the text (or the name) it got then, so the texts together are linear in
    the distinct nodes below them, however many there are.

    A piece is named the first time it is written if its text is `long` characters or more,
    unless `keep(n)` (a piece the reader should see, such as one holding a differential).
    `label(n)` gives the fresh name of a piece.  With `follow`, another session's names are
    used instead (a LaTeX session follows the text session, so that both name the same pieces).
    The bindings a text introduces are taken with `take_defs`, in dependency order."""

    def __init__(self, printer, long: int, label, keep=lambda n: False, follow: Session | None = None):
        self.printer, self.long, self.label, self.keep, self.follow = printer, long, label, keep, follow
        printer.names = {}
        self.labels: dict[int, tuple[Node, str]] = {}   # id -> (node, name): every piece named so far
        self.defs: list[tuple[str, str]] = []
        self.text_of: dict[str, str] = {}   # name -> the text it stands for

    def _new_below(self, root: Node) -> tuple[list[Node], dict[int, list[Node]]]:
        """The nodes below `root` not written yet, children first, and their print children."""
        printer, memo = self.printer, self.printer.memo
        kids: dict[int, list[Node]] = {}
        order: list[Node] = []
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:
            n, expanded = stack.pop()
            key = id(n)
            if expanded:
                order.append(n)
                continue
            if key in kids or (key in memo and memo[key][0] is n):
                continue
            kids[key] = _print_children(printer, n)
            stack.append((n, True))
            stack.extend((c, False) for c in reversed(kids[key]))
        return order, kids

    def _name(self, n: Node, text: str, label: str | None = None):
        label = label or self.label(n)
        self.labels[id(n)] = (n, label)
        self.printer.names[id(n)] = label
        self.defs.append((label, text))
        self.text_of[label] = text
        got = (self.printer.name(label), self.printer.ATOM)
        self.printer.memo[id(n)] = (n, got)
        return got

    def _named_by_leader(self, n: Node) -> str | None:
        hit = self.follow.labels.get(id(n))
        return hit[1] if hit is not None and hit[0] is n else None

    def write(self, root: Node) -> str:
        """The text of `root`, naming the long pieces below it that no earlier text wrote."""
        printer, memo = self.printer, self.printer.memo
        order, _ = self._new_below(root)
        for n in order:
            got = printer.dispatch(n)
            if n is root or not n.args or n.op == "const":
                pass
            elif self.follow is not None:
                label = self._named_by_leader(n)
                if label is not None:
                    got = self._name(n, got[0], label)
            elif len(got[0]) >= self.long and not self.keep(n):
                a = n.args[0]
                hit = memo.get(id(a))
                if n.op == "T" and a.args and not self.keep(a) and id(a) not in self.labels \
                        and hit is not None and hit[0] is a:
                    self._name(a, hit[1][0])  # name Xᵀ's X, not Xᵀ
                    got = printer.dispatch(n)
                else:
                    got = self._name(n, got[0])
            memo[id(n)] = (n, got)
        return printer.render(root)[0]

    def alias(self, n: Node, shown: Node) -> None:
        """Write `n` from now on as `shown` was written (the same value, written another way)."""
        memo = self.printer.memo
        hit = memo.get(id(shown))
        if hit is not None and hit[0] is shown and id(n) not in memo:
            memo[id(n)] = (n, hit[1])

    def take_defs(self) -> list[tuple[str, str]]:
        """The bindings introduced since the last call, each after those it uses."""
        out, self.defs = self.defs, []
        return out
