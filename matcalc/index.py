"""Index form: one entry of a derivative written with indices and sums, the way the notes verify
a matrix result entry by entry (∂L/∂w_{ij} = 2 Σ_k x_{ki} (ŷ_{kj} − y_{kj}))."""
from __future__ import annotations

from .expr import Node
from .ops import registry
from .render import _latex_symbol, fmt_number



def _fn_name(name: str) -> str:
    """The element-wise function's LaTeX name in the index form (its declaration's index= or latex=)."""
    spec = registry.fn(name)
    if spec.index:
        return spec.index
    return spec.latex if "{0}" not in spec.latex else rf"\operatorname{{{name}}}"
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
            return fmt_number(n.attr)
        if op == "numel":
            return " ".join(_latex_symbol(f) if isinstance(f, str) else str(f) for f in (n.attr if isinstance(n.attr, tuple) else (n.attr,)))
        if op == "eye":
            return rf"\delta_{{{''.join(idx)}}}"
        if op in ("ones", "zeros"):
            return "1" if op == "ones" else "0"
        if op == "add":
            parts = [self.entry(a, self._bidx(a, n, idx)) for a in n.args]
            out = parts[0]
            for p in parts[1:]:
                out += " - " + p[1:] if p.startswith("-") else " + " + p
            return f"\\left({out}\\right)" if paren else out
        if op == "mul":
            coef, num, den = "", [], []
            for a in n.args:
                if a.op == "const":
                    coef = "-" if a.attr == -1 else fmt_number(a.attr) + " "
                elif a.op == "pow" and a.args[1].op == "const" and a.args[1].attr < 0:
                    b, e = a.args[0], -a.args[1].attr
                    t = self.entry(b, self._bidx(b, n, idx))
                    den.append(t if e == 1 else f"{{{t}}}^{{{fmt_number(e)}}}")
                else:
                    t = self.entry(a, self._bidx(a, n, idx))
                    if t != "1":
                        num.append(t)
            body = " ".join(num) or "1"
            if den:
                body = f"\\frac{{{body}}}{{{' '.join(den)}}}"
            return coef + body
        if op == "pow":
            b, e = n.args
            if e.op == "const" and e.attr == -1:
                return rf"\frac{{1}}{{{self.entry(b, self._bidx(b, n, idx))}}}"
            return f"{{{self.entry(b, self._bidx(b, n, idx))}}}^{{{self.entry(e, self._bidx(e, n, idx))}}}"
        if op == "matmul":
            fs = n.args
            sh = n.shape
            r = idx[0] if len(sh) == 2 and sh[0] != 1 or len(sh) == 1 else None
            c = idx[-1] if len(sh) == 2 else None
            col = [len(f.shape) == 1 for f in fs]
            row = [len(f.shape) == 2 and f.shape[0] == 1 for f in fs]
            bounds = [None if row[0] else r]
            sums = []
            for k in range(len(fs) - 1):
                if col[k]:
                    bounds.append(None)
                else:
                    bounds.append(self.fresh())
                    sums.append(bounds[-1])
            bounds.append(None if col[-1] else c)
            for k, f in enumerate(fs):  # diag(v) keeps the index: δ_ab v_a, summed away
                if f.op == "diag" and bounds[k] is not None and bounds[k + 1] is not None:
                    a, b = bounds[k], bounds[k + 1]
                    keep, drop = (a, b) if b in sums else (b, a)
                    if drop in sums:
                        sums.remove(drop)
                        bounds = [keep if x == drop else x for x in bounds]
            parts = []
            for k, f in enumerate(fs):
                if f.op == "diag" and bounds[k] == bounds[k + 1]:
                    parts.append(self.entry(f.args[0], (bounds[k],)))
                    continue
                ix = (bounds[k],) if col[k] else (bounds[k + 1],) if row[k] else (bounds[k], bounds[k + 1])
                parts.append(self.entry(f, ix))
            body = " ".join(q for q in parts if q != "1") or "1"
            return (rf"\sum_{{{','.join(sums)}}} " + body) if sums else body
        if op == "T":
            a = n.args[0]
            return self.entry(a, tuple(reversed(idx)) if len(a.shape) == 2 else idx)
        if op == "fn":
            return rf"{_fn_name(n.attr)}\left({self.entry(n.args[0], idx, paren=False)}\right)"
        rule = registry.op(op).index
        if rule is not None:
            return rule(self, n, idx)
        from .render import to_latex
        if n.shape == ():
            return to_latex(n, share=False)
        return rf"\left({to_latex(n, share=False)}\right)_{{{''.join(i for i in idx if i)}}}"

    def _bidx(self, a: Node, parent: Node, idx: tuple) -> tuple:
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
