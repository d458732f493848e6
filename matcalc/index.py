"""Index form: one entry of a derivative written with indices and sums, the way the notes verify
a matrix result entry by entry (∂L/∂w_{ij} = 2 Σ_k x_{ki} (ŷ_{kj} − y_{kj}))."""
from __future__ import annotations

from . import budget
from .expr import Node, postorder, size
from .ops import registry
from .render import _latex_symbol, latex_number

_FREE = ["k", "l", "r", "s", "t", "u", "v", "a", "b", "c"]
_LEAVES = frozenset({"var", "dvar", "const", "numel", "eye", "ones", "zeros"})
INDEX_SHARE_MIN_SIZE = 12  # a piece used in two places or more, this big (nodes of its tree), is named
INDEX_MAX_DEPTH = 40       # a piece whose entry nests this deep is named (the printer recurses)


def pieces_to_name(root: Node) -> list[Node]:
    """The pieces the index form names once (children first): used by two nodes or more and big,
    or as deep as INDEX_MAX_DEPTH; written out, the shared graph would be copied as a tree."""
    order = postorder(root)
    size(root)  # fills every node's tree size in one walk
    parents: dict[int, int] = {}
    for n in order:
        for a in set(map(id, n.args)):
            parents[a] = parents.get(a, 0) + 1
    depth: dict[int, int] = {}
    named = []
    for n in order:
        d = 1 + max((depth[id(a)] for a in n.args), default=0)
        if n is not root and n.op not in _LEAVES and (
                d >= INDEX_MAX_DEPTH or (parents.get(id(n), 0) >= 2 and size(n) >= INDEX_SHARE_MIN_SIZE)):
            named.append(n)
            d = 1
        depth[id(n)] = d
    return named


class IndexPrinter:
    """Writes entry `idx` of a node; `idx` has one index per axis (none for a scalar)."""

    def __init__(self, taken=()):
        self.count = 0
        self.taken = set(taken)
        self.names: dict[int, str] = {}    # id -> name of the pieces written once, in `where`
        self.keep: list[Node] = []         # holds the named nodes, so that their ids stay theirs
        self.defining: Node | None = None
        self._latex = None

    def name_pieces(self, root: Node) -> list[tuple[str, str]]:
        """Name the pieces of `root` worth naming; their definitions, each one entry of the piece
        with free indices i, j (children first: each uses only names defined before it)."""
        from .share import binding_names
        pieces = pieces_to_name(root)
        labels = [x for x in binding_names(root, len(pieces) + len(self.taken)) if x not in self.taken]
        defs = []
        for n, label in zip(pieces, labels):
            idx = ("i", "j")[:len(n.shape)]
            self.defining, self.count = n, 0  # each definition is an equation of its own
            body = self.entry(n, idx, paren=False)
            self.names[id(n)] = label
            self.keep.append(n)
            self.defining = None
            if self._latex is not None:  # the LaTeX of a parent with no index form uses the name
                self._latex.memo[id(n)] = (n, (self._latex.name(label), self._latex.ATOM))
            defs.append((self.entry(n, idx), body))
        self.defining, self.count = None, 0
        return defs

    def fresh(self) -> str:
        while True:
            name = _FREE[self.count % len(_FREE)] + ("" if self.count < len(_FREE) else str(self.count // len(_FREE)))
            self.count += 1
            if name not in self.taken:
                return name

    def sym(self, name: str, idx) -> str:
        base = name.lower() if len(name) == 1 and name.isupper() else _latex_symbol(name)
        if len(name) > 1:
            base = f"{{{base}}}"
        return base + (f"_{{{''.join(idx)}}}" if idx else "")

    def entry(self, n: Node, idx: tuple, paren: bool = True) -> str:
        """Entry `idx` of `n`: leaves and sums here, every other operator by its declaration's
        `index=` (ops/), else its LaTeX with the indices attached."""
        idx = tuple(idx)
        budget.tick()  # an entry written (the work budget)
        op = n.op
        if n.shape == ():
            idx = ()
        elif len(n.shape) == 2 and n.shape[0] == 1 and len(idx) == 2:
            idx = (idx[1],)  # a row vector: its entries are indexed by the column
        if id(n) in self.names and n is not self.defining:
            return self.sym(self.names[id(n)], idx)
        if op == "var":
            return self.sym(n.attr, idx)
        if op == "dvar":
            return r"\mathrm{d}" + self.sym(n.attr, idx)
        if op == "const":
            return latex_number(n.attr)
        if op == "numel":
            return " ".join(_latex_symbol(f) if isinstance(f, str) else str(f) for f in (n.attr if isinstance(n.attr, tuple) else (n.attr,)))
        if op == "eye":
            return rf"\delta_{{{''.join(idx)}}}"
        if op in ("ones", "zeros"):
            return "1" if op == "ones" else "0"
        if op == "add":
            parts = [self.entry(a, self.bidx(a, n, idx), paren=False) for a in n.args]
            out = parts[0]
            for p in parts[1:]:
                out += " - " + p[1:] if p.startswith("-") else " + " + p
            return f"\\left({out}\\right)" if paren else out
        rule = registry.op(op).index
        if rule is not None:
            out = rule(self, n, idx)
            # a negative factor next to another reads as a subtraction: δ_kl (−x_k), not δ_kl −x_k
            return f"\\left({out}\\right)" if paren and out.startswith("-") else out
        text = self.latex(n)
        if n.shape == ():
            return text
        return rf"\left({text}\right)_{{{''.join(i for i in idx if i)}}}"

    def latex(self, n: Node) -> str:
        """The LaTeX of a node with no index form (the named pieces by their names), from one
        printer for the whole form: each node is written once."""
        if self._latex is None:
            from .render_latex import latex_printer
            self._latex = latex_printer()
            self._latex.names = self.names  # the same dict: names given later are seen
        return self._latex.render(n)[0]

    def bidx(self, a: Node, parent: Node, idx: tuple) -> tuple:
        """The index of a broadcast operand: a vector over matrix rows takes the column index."""
        if a.shape == () or a.shape == parent.shape:
            return idx
        if len(a.shape) == 1 and len(parent.shape) == 2:
            return (idx[1],)
        if len(a.shape) == 2 and a.shape[0] == 1 and len(parent.shape) == 2:
            return (idx[1],)
        return idx


def index_latex(d) -> str:
    """LaTeX of one entry of the derivative `d` in index notation; the pieces the graph shares
    (and very deep ones) are named once, each defined entry by entry after `where`."""
    names = set(d.parsed.var_shapes) | {d.wrt} | ({d.upstream} if d.upstream else set())
    p = IndexPrinter(taken={"i", "j"} | names | {v.lower() for v in names})  # X is written x
    form = _lhs(p, d)
    if form is None:
        from .render import to_latex
        return to_latex(d.result)
    lhs, node, idx = form
    defs = p.name_pieces(node)
    out = f"{lhs} = {p.entry(node, idx, paren=False)}"
    if defs:
        out += ",\\quad \\text{where } " + ",\\; ".join(f"{k} = {v}" for k, v in defs)
    return out


def _lhs(p: IndexPrinter, d):
    """(left-hand side, node, its indices) of the index form of `d`, or None (its LaTeX instead)."""
    x = p.sym(d.wrt, ())
    res = d.result
    if d.kind in ("diff", "vjp") and (d.out_shape == () or d.kind == "vjp"):
        idx = ("i", "j")[:len(res.shape)]
        f = "L" if d.kind == "vjp" else "f"
        wrt_idx = idx[::-1] if d.layout == "numerator" and len(idx) == 2 else idx  # the transpose
        return rf"\frac{{\partial {f}}}{{\partial {p.sym(d.wrt, wrt_idx)}}}", res, idx
    if d.wrt_shape == () and d.kind == "diff":
        idx = ("i", "j")[:len(res.shape)]
        return rf"\frac{{\partial f_{{{''.join(idx)}}}}}{{\partial {x}}}", res, idx
    if not d.vec_form and len(res.shape) == 2:
        i, j = "i", "j"
        if d.layout == "denominator":  # the transpose of the Jacobian
            i, j = j, i
        lhs = rf"\frac{{\partial^2 f}}{{\partial {p.sym(d.wrt, (i,))} \partial {p.sym(d.wrt, (j,))}}}" \
            if d.kind == "hessian" else rf"\frac{{\partial f_{{{i}}}}}{{\partial {p.sym(d.wrt, (j,))}}}"
        return lhs, res, ("i", "j")
    if d.differential is not None:  # more than two axes: the differential, entry by entry
        idx = ("i", "j")[:len(d.differential.shape)]
        return rf"\mathrm{{d}}F_{{{''.join(idx)}}}", d.differential, idx
    return None
