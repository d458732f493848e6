"""Rendering: the input language (`to_text`) and LaTeX (`to_latex`, a sympy printer).

Both printers dispatch on the node's operator (`_print_<op>`), apart from the math.  A large
subexpression that occurs more than once is named once, in `where` lines the parser reads back.
"""
from __future__ import annotations

from . import budget
from .expr import Node, dim_factors, numel
from .number_text import fmt_number, latex_number, special_number  # noqa: F401  (re-exported)
from .share import render_shared

PREC_ADD, PREC_MUL, PREC_NEG, PREC_POW, PREC_POST, PREC_ATOM = 1, 2, 3, 4, 5, 6


def _coef_split(n: Node):
    if n.op == "mul" and n.args[0].op == "const":
        return n.args[0].attr, n.args[1:]
    if n.op == "const":
        return n.attr, ()
    if n.op == "mul":
        return 1.0, n.args
    return 1.0, (n,)


def shared_nodes(root: Node, min_size: int = 12) -> list[Node]:
    """Nodes of the graph worth naming once: big, and occurring more than once in the written-out
    tree (children first). The printers use `share.render_shared`, which also sees the pieces a
    printer makes on the way; this is for blocks of several results (`matcalc.grad`)."""
    from .expr import postorder, size
    order = postorder(root)
    count = {id(root): 1}
    named = set()
    for node in reversed(order):  # parents before children
        c = count.get(id(node), 0)
        if node is not root and c >= 2 and node.args and size(node) >= min_size and node.op not in ("T", "const"):
            named.add(id(node))
            c = 1
        for a in node.args:
            count[id(a)] = count.get(id(a), 0) + c
    return [n for n in order if id(n) in named]


def _binding_names(root: Node, k: int) -> list[str]:
    from .share import binding_names
    return binding_names(root, k)


class _Base:
    """Shared precedence logic; subclasses render leaves and operators.

    `render(child)` is a memo lookup when the whole graph is printed by `share.render_shared`
    (children first); while `share.plan` records print children it only notes the child."""

    ATOM = PREC_ATOM
    recording: list | None = None

    def __init__(self, names: dict[int, str] | None = None):
        self.names = names or {}
        self.memo: dict[int, tuple[str, int]] = {}
        self._forms: dict[int, tuple] = {}   # untransposed(_add) per node
        self._ntrans: dict[int, tuple] = {}

    def render(self, n: Node) -> tuple[str, int]:
        # keyed by id, so the memo holds the node too: a temporary node (−t for a negative term,
        # Aᵀ for a product written (…)ᵀ) must not be freed and its id reused by another one
        hit = self.memo.get(id(n))
        if hit is not None and hit[0] is n:
            return hit[1]
        if self.recording is not None:
            self.recording.append(n)
            return "t", PREC_ATOM
        if id(n) in self.names:
            got = (self.name(self.names[id(n)]), PREC_ATOM)
        else:
            got = self.dispatch(n)
        self.memo[id(n)] = (n, got)
        return got

    def dispatch(self, n: Node) -> tuple[str, int]:
        """The operator's own form from its declaration (ops/): a callable, a template with {0},
        or a function name; else the printer's core method; else the generic name(args)."""
        from .ops import registry
        budget.tick()  # a node written: printing runs under the work budget too
        spec = registry.op(n.op)
        form = self.form(spec)
        if form is None:
            meth = getattr(self, "_print_" + n.op, None)
            return meth(n) if meth is not None else self.generic(n, spec.written)
        if callable(form):
            return form(self, n)
        if "{0}" in form:
            return form.format(*[self.render(a)[0] for a in n.args]), PREC_ATOM
        return self.generic(n, form)

    def _cached(self, kind: str, n: Node, make):
        key = (kind, id(n))
        hit = self._forms.get(key)
        if hit is None or hit[0] is not n:
            hit = self._forms[key] = (n, make(n))
        return hit[1]

    def untransposed(self, n: Node):
        """Factors of Pᵀ when most factors of the product P are transposed, else None:
        `-(X⁻¹ A X⁻¹)ᵀ` reads better than `-X⁻ᵀ Aᵀ X⁻ᵀ` (the Matrix Cookbook's form)."""
        def make(n):
            k = sum(f.op == "T" for f in n.args)
            if k >= len(n.args) - k + 2:
                from .simplify import T
                return [T(f) for f in reversed(n.args)]
            return None
        return self._cached("mm", n, make)

    def untransposed_add(self, n: Node):
        """Sᵀ's node when the sum S is better written (…)ᵀ: `(X W − Y)ᵀ`, not `(X W)ᵀ − Yᵀ`."""
        if n.op != "add" or len(n.shape) != 2:
            return None

        def make(n):
            from .simplify import T
            t = T(n)
            if t.op == "T":
                return None
            if self.transposes(t) + 1 < self.transposes(n):
                return t
            return None
        return self._cached("add", n, make)

    def transposes(self, n: Node) -> int:
        """How many transposes writing n takes (counted over its tree, memoised per node)."""
        from .expr import postorder
        memo = self._ntrans  # id -> (node, count): holding the node keeps its id its own
        if id(n) not in memo:
            for m in postorder(n, lambda m: id(m) in memo):
                memo[id(m)] = (m, min(10**9, (m.op == "T") + sum(memo[id(a)][1] for a in m.args)))
        return memo[id(n)][1]

    def at(self, n: Node, prec: int) -> str:
        s, p = self.render(n)
        return s if p >= prec else self.paren(s)

    def terms(self, n: Node) -> str:
        """A sum's terms joined with + and − (a negative term written as − its negation)."""
        out = []
        for i, t in enumerate(n.args):
            c, _ = _coef_split(t)
            if i and c < 0:
                out.append(" - " + self.at(_neg_of(t), PREC_MUL))
            elif i:
                out.append(" + " + self.at(t, PREC_MUL))
            else:
                out.append(self.at(t, PREC_MUL))
        return "".join(out)


class TextPrinter(_Base):
    """Renders nodes in matcalc's input language (parseable again)."""

    dim_alias: dict = {}

    def paren(self, s):
        return f"({s})"

    def name(self, s):
        return s

    def dim(self, d) -> str:
        return "*".join(self.dim_alias.get(f, str(f)) for f in dim_factors(d))

    def _print_var(self, n):
        return n.attr, PREC_ATOM

    def _print_dvar(self, n):
        return "d" + n.attr, PREC_ATOM

    def _print_dof(self, n):
        return f"d({self.render(n.args[0])[0]})", PREC_ATOM

    def number(self, v: float) -> str:
        return fmt_number(v)

    def _print_const(self, n):
        s = self.number(n.attr)
        return s, (PREC_NEG if n.attr < 0 else PREC_ATOM)

    def _print_numel(self, n):
        """A dimension as a number: len(x), rows(X), cols(X) (and their products) when a variable
        carries it, else sum(ones(n)) (n a declared dimension name)."""
        parts = [str(f) if isinstance(f, int) else self.dim_alias.get("#" + f, self.dim_alias.get(f))
                 for f in dim_factors(n.attr)]
        if all(parts):
            return " * ".join(parts), (PREC_ATOM if len(parts) == 1 else PREC_MUL)
        return f"sum(ones({', '.join(self.dim(d) for d in dim_factors(n.attr))}))", PREC_ATOM

    def _print_eye(self, n):
        return f"eye({self.dim(n.shape[0])})", PREC_ATOM

    def _print_ones(self, n):
        return f"ones({', '.join(self.dim(d) for d in n.shape)})", PREC_ATOM

    _print_zeros = lambda self, n: (f"zeros({', '.join(self.dim(d) for d in n.shape)})", PREC_ATOM)

    def _print_K(self, n):
        return f"commutation({self.dim(n.attr[0])}, {self.dim(n.attr[1])})", PREC_ATOM

    def _print_add(self, n):
        u = self.untransposed_add(n)
        if u is not None:
            return self.at(u, PREC_POST) + ".T", PREC_POST
        return self.terms(n), PREC_ADD

    def _print_mul(self, n):
        coef, factors = _coef_split(n)
        num, den = [], []
        for f in factors:
            if f.op == "pow" and f.args[1].op == "const" and f.args[1].attr < 0:
                e = -f.args[1].attr
                den.append(f.args[0] if e == 1 else ("pow", f.args[0], e))
            else:
                num.append(f)
        means = self._means(num, den)
        # right operands of '*' that are products need parens unless everything before is scalar
        parts = []
        scalar_so_far = True
        for k, f in enumerate(num):
            s, p = means[id(f)] if id(f) in means else self.render(f)
            if f.op == "matmul" and k < len(num) - 1 and p == PREC_MUL:
                s, p = self.paren(s), PREC_ATOM  # (uᵀ v) * a: a product inside a product, bracketed
            if parts and p <= PREC_MUL and not (scalar_so_far and f.op == "matmul"):
                s = self.paren(s)
            elif not parts and (p < PREC_MUL or (p == PREC_MUL and f.shape != () and abs(coef) == 1)):
                s = self.paren(s)  # (A @ B) * C: correct without, but clearer with
            parts.append(s)
            scalar_so_far = scalar_so_far and f.shape == ()
        if abs(coef) != 1 or not parts:
            parts.insert(0, self.number(abs(coef)))
        s = " * ".join(parts)
        for d in den:
            if isinstance(d, tuple):
                s += " / " + self.at(d[1], PREC_POST) + " ** " + self.number(d[2])
            else:
                s += " / " + self.at(d, PREC_NEG + 1)
        if coef < 0:
            return "-" + s, PREC_MUL
        return s, PREC_MUL

    def _means(self, num: list, den: list) -> dict:
        """sum(a, …) / k with k the number of entries summed is written mean(a, …): the pair is
        taken out of num and den and its text returned by the sum's id."""
        out = {}
        for f in num:
            if f.op != "sum" or id(f) in self.names:
                continue
            a = f.args[0]
            count = numel(a.shape) if f.attr is None else a.shape[f.attr]
            d = next((d for d in den if not isinstance(d, tuple) and d.op == "numel" and d.attr == count), None)
            if d is not None:
                den.remove(d)
                out[id(f)] = ("mean" + self.dispatch(f)[0][3:], PREC_ATOM)
        return out

    def _print_pow(self, n):
        base, e = n.args
        if e.op == "const" and e.attr < 0:
            inner = self.at(base, PREC_POST) if e.attr == -1 else f"{self.at(base, PREC_POST)} ** {self.number(-e.attr)}"
            return f"1 / {inner}", PREC_MUL
        return f"{self.at(base, PREC_POST)} ** {self.at(e, PREC_NEG)}", PREC_POW

    def _print_matmul(self, n):
        fs = self.untransposed(n)
        parts = [self.at(f, PREC_MUL + (f.op == "mul") if i == 0 else PREC_NEG) for i, f in enumerate(fs or n.args)]
        if fs:
            return f"({' @ '.join(parts)}).T", PREC_POST
        return " @ ".join(parts), PREC_MUL

    def _print_T(self, n):
        return self.at(n.args[0], PREC_POST) + ".T", PREC_POST

    def form(self, spec):
        return spec.text

    def generic(self, n, name):
        """name(args), with axis=k when the operator has an axis."""
        args = [self.render(a)[0] for a in n.args]
        if isinstance(n.attr, int) and not isinstance(n.attr, bool):
            args.append(f"axis={n.attr}")
        return f"{name}({', '.join(args)})", PREC_ATOM

    def _print_fn(self, n):
        return self.generic(n, n.attr)


def _neg_of(t: Node) -> Node:
    from .simplify import mul, const
    return mul(const(-1), t)


def dim_aliases(node: Node, var_shapes: dict, declared=()) -> dict[str, str]:
    """`len(v)`, `rows(X)` or `cols(X)` for each dimension of `node` that none of its own variables
    carries and that the user did not name (in `declared`), so that its text evaluates with the
    values alone (no `shapes=` needed)."""
    from .expr import postorder
    dims, carried = set(), set()  # a variable's dimension is fresh when the text is read again:
    for n in postorder(node):     # name every generated dimension a constant uses by a variable
        if n.op in ("eye", "ones", "zeros"):
            dims.update(f for d in n.shape for f in dim_factors(d) if isinstance(f, str))
        if n.op in ("K", "unvec"):
            dims.update(f for d in n.attr for f in dim_factors(d) if isinstance(f, str))
        if n.op == "numel":
            dims.update(f for f in dim_factors(n.attr) if isinstance(f, str))
    alias = {}
    numels = {f for n in postorder(node) if n.op == "numel" for f in dim_factors(n.attr) if isinstance(f, str)}
    for d in sorted(numels & set(declared)):  # a number is written len(x) even where eye(n) keeps n
        alias["#" + d] = next(_carriers(d, var_shapes), None)
    for d in sorted(dims - carried - set(declared)):
        for v, shape in var_shapes.items():
            if len(shape) == 1 and shape[0] == d:
                alias[d] = f"len({v})"
            elif len(shape) == 2 and shape[0] == d and shape[0] != 1:
                alias[d] = f"rows({v})"
            elif len(shape) == 2 and shape[1] == d:
                alias[d] = f"cols({v})"
            if d in alias:
                break
    return alias


def _carriers(d, var_shapes: dict):
    """len(v), rows(X), cols(X) for each variable with a dimension d."""
    for v, shape in var_shapes.items():
        if len(shape) == 1 and shape[0] == d:
            yield f"len({v})"
        elif len(shape) == 2 and shape[0] == d and shape[0] != 1:
            yield f"rows({v})"
        elif len(shape) == 2 and shape[1] == d:
            yield f"cols({v})"


def to_text(node: Node, share: bool = True, dim_alias: dict | None = None) -> str:
    """The node in the input language; repeated large pieces become `where` bindings."""
    p = TextPrinter()
    if dim_alias:
        p.dim_alias = dim_alias
    body, defs = render_shared(p, node, share)
    if not defs:
        return body
    defs = _referenced(body, [f"{k} = {v}" for k, v in defs])
    return body + (" where " + "; ".join(defs) if defs else "")


def _referenced(body: str, defs: list[str]) -> list[str]:
    """The bindings the body uses, directly or through other bindings (a piece named once but
    always written another way, such as 1 / t1 printed as a division, is dropped)."""
    import re
    rhs = {d.split(" = ", 1)[0]: d.split(" = ", 1)[1] for d in defs}
    word = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
    used, todo = set(), [body]
    while todo:
        for w in word.findall(todo.pop()):
            if w in rhs and w not in used:
                used.add(w)
                todo.append(rhs[w])
    return [d for d in defs if d.split(" = ", 1)[0] in used]


# ----------------------------------------------------------------------------- unicode

_SUP = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


class UnicodePrinter(TextPrinter):
    """Readable in a terminal: `2 Xᵀ (X w − y)`, `⊙`, `⊗`, `⁻¹`; not meant to be parsed."""

    def dim(self, d) -> str:
        return "·".join(str(f) for f in dim_factors(d))

    def number(self, v: float) -> str:
        return special_number(v, "∞", "NaN") or fmt_number(v)

    def _print_eye(self, n):
        return f"I_{self.dim(n.shape[0])}", PREC_ATOM

    def _print_ones(self, n):
        return f"1_{'×'.join(self.dim(d) for d in n.shape)}", PREC_ATOM

    def _print_zeros(self, n):
        return f"0_{'×'.join(self.dim(d) for d in n.shape)}", PREC_ATOM

    def _print_K(self, n):
        return f"K_{self.dim(n.attr[0])},{self.dim(n.attr[1])}", PREC_ATOM

    def _print_numel(self, n):
        return self.dim(n.attr), PREC_ATOM

    def _print_add(self, n):
        s, p = super()._print_add(n)
        if p == PREC_POST:
            return s[:-2] + "ᵀ", p
        return s.replace(" - ", " − "), PREC_ADD

    def _print_mul(self, n):
        coef, factors = _coef_split(n)
        num = [f for f in factors if not (f.op == "pow" and f.args[1].op == "const" and f.args[1].attr < 0)]
        den = [f for f in factors if f not in num]
        scal = [self.at(f, PREC_POW) for f in num if f.shape == ()]
        arr = [self.at(f, PREC_POW if len(num) > 1 else PREC_MUL) for f in num if f.shape != ()]
        body = " ".join(([self.number(abs(coef))] if abs(coef) != 1 else []) + scal)
        if arr:
            body = (body + " " if body else "") + " ⊙ ".join(arr)
        if den:
            dens = [self.at(f.args[0], PREC_POST) if f.args[1].attr == -1
                    else f"{self.at(f.args[0], PREC_POST)}^{self.number(-f.args[1].attr)}" for f in den]
            body = f"{body or '1'} / {' '.join(dens) if len(dens) == 1 else '(' + ' '.join(dens) + ')'}"
        return ("−" + body if coef < 0 else body), PREC_MUL

    def _print_pow(self, n):
        base, e = n.args
        if e.op == "const" and float(e.attr).is_integer():
            return f"{self.at(base, PREC_POST)}{fmt_number(e.attr).translate(_SUP)}", PREC_POW
        return f"{self.at(base, PREC_POST)}^{self.at(e, PREC_ATOM)}", PREC_POW

    def _print_matmul(self, n):
        fs = self.untransposed(n)
        s = " ".join(self.at(f, PREC_NEG) for f in (fs or n.args))
        return (f"({s})ᵀ", PREC_POST) if fs else (s, PREC_MUL)

    def _print_T(self, n):
        a = n.args[0]
        if a.op == "inv":
            return f"{self.at(a.args[0], PREC_ATOM)}⁻ᵀ", PREC_POST
        return self.at(a, PREC_POST) + "ᵀ", PREC_POST

    def form(self, spec):
        return spec.unicode if spec.unicode is not None else spec.text

    def _print_fn(self, n):
        from .ops import registry
        return self.generic(n, registry.fn(n.attr).unicode or n.attr)

    def _print_dvar(self, n):
        return "d" + n.attr, PREC_ATOM


def to_unicode(node: Node) -> str:
    """The node in terminal-friendly notation (Xᵀ, ⊙, ⊗, ⁻¹), with `where` lines."""
    body, defs = render_shared(UnicodePrinter(), node)
    if not defs:
        return body
    return body + "  where " + "; ".join(f"{k} = {v}" for k, v in defs)


def shapes_latex(var_shapes: dict, result_shape: tuple | None = None) -> str:
    """`X \\in \\mathbb{R}^{m \\times n}, …` for a notebook's display of the inferred shapes."""
    def space(shape):
        if shape == ():
            return r"\mathbb{R}"
        p = latex_printer()
        return r"\mathbb{R}^{" + r" \times ".join(p.dim(d) for d in shape) + "}"
    parts = [f"{_latex_symbol(k)} \\in {space(v)}" for k, v in var_shapes.items()]
    if result_shape is not None:
        parts.append(f"\\text{{result}} \\in {space(result_shape)}")
    return r"\left(" + ",\\; ".join(parts) + r"\right)"


from .render_latex import _GREEK, _latex_symbol, _plain_command, latex_printer, to_latex  # noqa: E402,F401
