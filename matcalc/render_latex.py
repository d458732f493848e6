"""The LaTeX printer: a sympy `LatexPrinter` subclass (built on first use, so that sympy is
imported only when LaTeX is asked for) sharing `render._Base`'s dispatch through the registry, and
`to_latex` with `where` bindings for repeated pieces."""
from __future__ import annotations

from functools import lru_cache

from .expr import Node, dim_factors
from .render import (PREC_ADD, PREC_ATOM, PREC_MUL, PREC_NEG, PREC_POST, PREC_POW, _Base, _coef_split,
                     latex_number)
from .share import render_shared


_GREEK = frozenset("alpha beta gamma delta epsilon eta theta kappa lambda mu nu rho sigma tau phi omega".split())


@lru_cache(maxsize=1 << 16)  # a flat sum of 5 000 terms names 5 000 variables
def _latex_symbol(name: str) -> str:
    """sympy's rendering of a name (`alpha` → α, `W1` → W_{1}), Greek only for matcalc's Greek names."""
    import re

    from sympy import Symbol
    from sympy.printing.latex import latex
    out = latex(Symbol(name))
    base = re.match(r"[A-Za-z]+", name).group(0)
    if out.startswith("\\") and base.lower() not in _GREEK and not out.startswith("\\mathrm"):
        return "\\mathit{" + name.replace("_", "\\_") + "}"
    return out


def _latex_printer_class():
    from sympy.printing.latex import LatexPrinter

    class MatcalcLatexPrinter(LatexPrinter, _Base):
        """sympy's LaTeX printer taught matcalc's nodes: `_print_Node` dispatches on the operator."""

        LONG_SCALE = 3

        def __init__(self, names=None):
            LatexPrinter.__init__(self)
            _Base.__init__(self, names)

        def doprint(self, expr):
            return self.render(expr)[0] if isinstance(expr, Node) else LatexPrinter.doprint(self, expr)

        def _print_Node(self, n):
            return self.render(n)[0]

        def form(self, spec):
            return spec.latex

        def generic(self, n, name):
            if not name.startswith("\\"):
                name = "\\operatorname{" + name.replace("_", "\\_") + "}"
            return self._fcall(name, *n.args)

        def paren(self, s):
            return f"\\left({s}\\right)"

        def name(self, s):
            return _latex_symbol(s)

        def dim(self, d):
            return " ".join(_latex_symbol(f) if isinstance(f, str) else str(f) for f in dim_factors(d))

        def _print_var(self, n):
            return _latex_symbol(n.attr), PREC_ATOM

        def _print_dvar(self, n):
            return f"\\mathrm{{d}}{_latex_symbol(n.attr)}", PREC_ATOM

        def _print_const(self, n):
            return latex_number(n.attr), (PREC_NEG if n.attr < 0 else PREC_ATOM)

        def _print_dof(self, n):
            return f"\\mathrm{{d}}\\left({self.render(n.args[0])[0]}\\right)", PREC_ATOM

        def _print_numel(self, n):
            return self.dim(n.attr), (PREC_MUL if isinstance(n.attr, tuple) else PREC_ATOM)

        def _print_eye(self, n):
            return f"I_{{{self.dim(n.shape[0])}}}", PREC_ATOM

        def _print_ones(self, n):
            return "\\mathbf{1}_{" + " \\times ".join(self.dim(d) for d in n.shape) + "}", PREC_ATOM

        def _print_zeros(self, n):
            return "\\mathbf{0}_{" + " \\times ".join(self.dim(d) for d in n.shape) + "}", PREC_ATOM

        def _print_K(self, n):
            return f"K_{{{self.dim(n.attr[0])},{self.dim(n.attr[1])}}}", PREC_ATOM

        def _print_add(self, n):
            u = self.untransposed_add(n)
            if u is not None:
                return f"{self.at(u, PREC_ATOM)}^{{T}}", PREC_POST
            return self.terms(n), PREC_ADD

        def _print_mul(self, n):
            coef, factors = _coef_split(n)
            num, den = [], []
            for f in factors:
                if f.op == "pow" and f.args[1].op == "const" and f.args[1].attr < 0:
                    e = -f.args[1].attr
                    den.append((f.args[0], e))
                else:
                    num.append(f)
            scal = [self.at(f, PREC_POW) for f in num if f.shape == ()]
            arr = [self.at(f, PREC_POW if len(num) > 1 else PREC_MUL) for f in num if f.shape != ()]
            body = " ".join(scal)
            if arr:
                body = (body + " " if body else "") + " \\odot ".join(arr)
            c = abs(coef)
            if den:
                dens = []
                for b, e in den:
                    dens.append(self.at(b, PREC_MUL) if e == 1 else f"{self.at(b, PREC_POST)}^{{{latex_number(e)}}}")
                numer = body if body else "1"
                if c != 1:
                    numer = f"{latex_number(c)} {numer}" if body else latex_number(c)
                s = f"\\frac{{{numer}}}{{{' '.join(dens)}}}"
            else:
                s = body if c == 1 else f"{latex_number(c)} {body}" if body else latex_number(c)
            return ("- " + s if coef < 0 else s), PREC_MUL

        def _print_pow(self, n):
            base, e = n.args
            if e.op == "const" and e.attr < 0:
                inner = self.at(base, PREC_MUL) if e.attr == -1 else f"{self.at(base, PREC_POST)}^{{{latex_number(-e.attr)}}}"
                return f"\\frac{{1}}{{{inner}}}", PREC_MUL
            exp = self.render(e)[0]
            if base.shape != ():
                exp = "\\circ " + exp
            if base.op == "fn" and _plain_command(base.attr):
                return f"{self.render(base)[0]}^{{{exp}}}", PREC_POW
            return f"{self.at(base, PREC_ATOM)}^{{{exp}}}", PREC_POW

        def _print_matmul(self, n):
            fs = self.untransposed(n)
            s = " ".join(self.at(f, PREC_NEG) for f in (fs or n.args))
            return (f"\\left({s}\\right)^{{T}}", PREC_POST) if fs else (s, PREC_MUL)

        def _print_T(self, n):
            a = n.args[0]
            if a.op == "inv":
                return f"{self.at(a.args[0], PREC_ATOM)}^{{-T}}", PREC_POST
            return f"{self.at(a, PREC_ATOM)}^{{T}}", PREC_POST

        def _fcall(self, name, *args):
            return f"{name}\\left({', '.join(self.render(a)[0] for a in args)}\\right)", PREC_ATOM

        def _print_fn(self, n):
            from .ops import registry
            name = registry.fn(n.attr).latex
            if "{0}" in name:
                return name.format(self.render(n.args[0])[0]), PREC_ATOM
            return self._fcall(name, n.args[0])

    return MatcalcLatexPrinter


_PRINTER_CLASS = None


def _plain_command(name: str) -> bool:
    """A function written as a plain command (\\tanh, \\sigma): its power goes on the name."""
    from .ops import registry
    latex = registry.fn(name).latex
    return latex.startswith("\\") and not latex.startswith("\\operatorname") and "{0}" not in latex


def latex_printer(names=None):
    global _PRINTER_CLASS
    if _PRINTER_CLASS is None:
        _PRINTER_CLASS = _latex_printer_class()
    return _PRINTER_CLASS(names)


def to_latex(node: Node, share: bool = True) -> str:
    """LaTeX of the node; repeated large pieces are named in `\\text{where}` lines."""
    body, defs = render_shared(latex_printer(), node, share)
    if not defs:
        return body
    return body + ",\\quad \\text{where } " + ",\\; ".join(f"{_latex_symbol(k)} = {v}" for k, v in defs)
