"""Index form: one entry of a derivative written with indices and sums, the way the notes verify
a matrix result entry by entry (∂L/∂w_{ij} = 2 Σ_k x_{ki} (ŷ_{kj} − y_{kj}))."""
from __future__ import annotations

from .expr import Node
from .ops import registry
from .render import _latex_symbol, latex_number

_FREE = ["k", "l", "r", "s", "t", "u", "v", "a", "b", "c"]


class IndexPrinter:
    """Writes entry `idx` of a node; `idx` has one index per axis (none for a scalar)."""

    def __init__(self, taken=()):
        self.count = 0
        self.taken = set(taken)

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
        op = n.op
        if n.shape == ():
            idx = ()
        elif len(n.shape) == 2 and n.shape[0] == 1 and len(idx) == 2:
            idx = (idx[1],)  # a row vector: its entries are indexed by the column
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
            parts = [self.entry(a, self.bidx(a, n, idx)) for a in n.args]
            out = parts[0]
            for p in parts[1:]:
                out += " - " + p[1:] if p.startswith("-") else " + " + p
            return f"\\left({out}\\right)" if paren else out
        rule = registry.op(op).index
        if rule is not None:
            return rule(self, n, idx)
        from .render import to_latex
        if n.shape == ():
            return to_latex(n, share=False)
        return rf"\left({to_latex(n, share=False)}\right)_{{{''.join(i for i in idx if i)}}}"

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
    """LaTeX of one entry of the derivative `d` in index notation."""
    p = IndexPrinter(taken={"i", "j"})
    x = p.sym(d.wrt, ())
    res = d.result
    if d.kind in ("diff", "vjp") and (d.out_shape == () or d.kind == "vjp"):
        idx = ("i", "j")[:len(res.shape)]
        f = "L" if d.kind == "vjp" else "f"
        wrt_idx = idx[::-1] if d.layout == "numerator" and len(idx) == 2 else idx  # the transpose
        return rf"\frac{{\partial {f}}}{{\partial {p.sym(d.wrt, wrt_idx)}}} = {p.entry(res, idx, paren=False)}"
    if d.wrt_shape == () and d.kind == "diff":
        idx = ("i", "j")[:len(res.shape)]
        return rf"\frac{{\partial f_{{{''.join(idx)}}}}}{{\partial {x}}} = {p.entry(res, idx, paren=False)}"
    if not d.vec_form and len(res.shape) == 2:
        i, j = "i", "j"
        if d.layout == "denominator":  # the transpose of the Jacobian
            i, j = j, i
        lhs = rf"\frac{{\partial^2 f}}{{\partial {p.sym(d.wrt, (i,))} \partial {p.sym(d.wrt, (j,))}}}" \
            if d.kind == "hessian" else rf"\frac{{\partial f_{{{i}}}}}{{\partial {p.sym(d.wrt, (j,))}}}"
        return f"{lhs} = {p.entry(res, ('i', 'j'), paren=False)}"
    if d.differential is not None:  # more than two axes: the differential, entry by entry
        idx = ("i", "j")[:len(d.differential.shape)]
        return rf"\mathrm{{d}}F_{{{''.join(idx)}}} = {p.entry(d.differential, idx, paren=False)}"
    from .render import to_latex
    return to_latex(res)
