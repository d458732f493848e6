"""Step-by-step derivations, the way the notes derive a gradient by hand.

For a scalar f the derivation is the reverse sweep written out: start from df = d(f); at each
step expand one node n of the frontier with its rule (d(AB) = dA B + A dB, d f(A) = f'(A) ⊙ dA,
…), check that every adjoint has the shape of its node (the dimension-compatibility principle),
and rewrite df = Σ ⟨Gₖ, d nₖ⟩ over the new frontier, where ⟨G, dN⟩ is tr(Gᵀ dN) for matrices,
Gᵀ dN for vectors and G dN for scalars.  It ends with the identification
df = tr(Gᵀ dX) ⇒ ∂f/∂X = G.  Every df line equals the previous one; `Step.expr` holds the
expression so tests can check the equalities numerically.
For other outputs: the differential dF by the forward rules, then the vec-Jacobian.
"""
from __future__ import annotations

from typing import Callable

from . import simplify as S
from .expr import Node, fmt_shape, make, postorder, transpose_shape
from .render import to_latex, to_text
from .engine import reverse
from .ops import registry
from .share import Session

#: a piece of a line this long (characters of text) is named once, in the line that first writes it,
#: and every later line uses the name: the lines together stay linear in the size of the graph
STEP_LONG_TEXT = 80

class Step:
    """One line of a derivation: the rule applied, the resulting expression, the shapes checked.
    `expr` is df as a node (differentials as `d(...)`), built when first read: a line of a wide
    frontier is written with its unchanged terms elided, and its node is made only if asked for."""

    __slots__ = ("rule", "latex", "text", "shapes", "_expr", "note")

    def __init__(self, rule: str, latex: str, text: str, shapes: dict | None = None,
                 expr: Node | Callable[[], Node] | None = None, note: str = ""):
        self.rule, self.latex, self.text, self.note = rule, latex, text, note
        self.shapes = {} if shapes is None else shapes
        self._expr = expr

    @property
    def expr(self) -> Node | None:
        if callable(self._expr) and not isinstance(self._expr, Node):
            self._expr = self._expr()
        return self._expr

    def __repr__(self) -> str:
        return f"Step(rule={self.rule!r}, latex={self.latex!r}, text={self.text!r}, shapes={self.shapes!r}, " \
               f"note={self.note!r})"


def d_of(n: Node) -> Node:
    """The differential d(n) of a subexpression, as an opaque node."""
    if n.op == "var":
        return S.dvar(n.attr, n.shape)
    return make("dof", (n,), None, n.shape)


def _Tkeep(g: Node) -> Node:
    """Gᵀ written as such (not pushed to the leaves), as a textbook writes tr(Gᵀ dX)."""
    if g.op in ("var", "T", "const", "eye", "ones", "zeros", "inv") or g.shape == ():
        return S.T(g)
    if g.op == "matmul" and 2 * sum(f.op == "T" for f in g.args) > len(g.args):
        return S.T(g)
    return make("T", (g,), None, transpose_shape(g.shape))


def pairing(g: Node, dn: Node) -> Node:
    """⟨G, dN⟩: tr(Gᵀ dN), Gᵀ dN or G dN by the shape (a number in G is pulled in front)."""
    if dn.shape == ():
        return S.mul(g, dn)
    c, g = S._split_coef(g)
    if S.is_ones(g) or g.op == "eye":
        out = S.sum_(dn) if g.op != "eye" else S.tr(dn)
    elif len(dn.shape) == 1 or dn.shape[0] == 1:
        out = S.matmul(_Tkeep(g), dn) if len(dn.shape) == 1 else S.matmul(dn, _Tkeep(g))
    else:
        out = S.tr(S.matmul(_Tkeep(g), dn))
    return S.mul(S.const(c), out)


def _free_prefix(letters: str, taken: set) -> str:
    """The first letter no variable uses as `letter` + digits (a1 must not look like a user's a1)."""
    import re
    used = {m.group(1) for v in taken for m in [re.fullmatch(r"([A-Za-z])\d+", v)] if m}
    return next((c for c in letters if c not in used), letters[0])


class Lines:
    """The text and LaTeX of a derivation's lines, written with names shared by all of them:
    a long piece of the function (a value of the forward pass) is named a1, a2, …, a long piece
    of an adjoint g1, g2, …, once, in the `where` of the line that first writes it; later lines
    use the name, like a textbook backprop.  Pieces holding a differential are never named."""

    def __init__(self, f: Node, taken=()):
        from .render import TextPrinter
        from .render_latex import latex_printer
        self.f, self.forward = f, {id(n) for n in postorder(f)}  # f holds its nodes: the ids stay theirs
        self.taken = set(f.vars) | set(taken)
        self.prefix = {"a": _free_prefix("avuw", self.taken), "g": _free_prefix("ghpq", self.taken)}
        self.count = {"a": 0, "g": 0}
        self._seed: dict[int, tuple[Node, bool]] = {}
        self.text = Session(TextPrinter(), STEP_LONG_TEXT, self._label, keep=self._has_differential)
        self.latex = Session(latex_printer(), 0, None, follow=self.text)

    def _label(self, n: Node) -> str:
        kind = "a" if id(n) in self.forward else "g"
        while True:
            self.count[kind] += 1
            name = f"{self.prefix[kind]}{self.count[kind]}"
            if name not in self.taken:
                return name

    def _has_differential(self, n: Node) -> bool:
        """d(…) or a dX below n (memoised per node, children first with an explicit stack)."""
        memo, stack = self._seed, [n]
        while stack:
            m = stack[-1]
            if id(m) in memo and memo[id(m)][0] is m:
                stack.pop()
                continue
            todo = [a for a in m.args if not (id(a) in memo and memo[id(a)][0] is a)]
            if todo:
                stack.extend(todo)
                continue
            memo[id(m)] = (m, m.op in ("dof", "dvar") or any(memo[id(a)][1] for a in m.args))
            stack.pop()
        return memo[id(n)][1]

    def node_text(self, n: Node) -> str:
        """The text of a piece (its definition if it has a name: `tanh(a3)`, not `a4`)."""
        self.write(n)
        hit = self.text.labels.get(id(n))
        if hit is not None and hit[0] is n:
            return self.text.text_of[hit[1]]
        return self.text.printer.render(n)[0]

    def write(self, e: Node) -> tuple[str, str]:
        """(text, LaTeX) of e; the names it introduces wait in `where()`."""
        return self.text.write(e), self.latex.write(e)

    def alias(self, n: Node, shown: Node) -> None:
        """Later lines write `n` as `shown` was written (when it was)."""
        if shown is not n:
            self.text.alias(n, shown)
            self.latex.alias(n, shown)

    def where(self) -> tuple[str, str]:
        """The ` where …` of the names introduced since the last call, as text and LaTeX."""
        from .render_latex import _latex_symbol
        t, l = self.text.take_defs(), self.latex.take_defs()
        return ((" where " + "; ".join(f"{k} = {v}" for k, v in t)) if t else "",
                (",\\quad \\text{where } " + ",\\; ".join(f"{_latex_symbol(k)} = {v}" for k, v in l)) if l else "")


def _in_terms_of(c: Node, prev: Node) -> Node | None:
    """`c` written with `prev` as one factor, when c's factors include all of prev's (for a
    product of matrices: in a row); a node for printing only (not flattened, same value)."""
    if c is prev or c.op != prev.op or c.op not in ("mul", "matmul") or len(prev.args) < 2:
        return None
    if c.op == "matmul":
        m = len(prev.args)
        for s in range(len(c.args) - m + 1):
            if c.args[s] is prev.args[0] and all(c.args[s + j] is prev.args[j] for j in range(m)):
                return None if m == len(c.args) else make("matmul", c.args[:s] + (prev,) + c.args[s + m:], None, c.shape)
        return None
    (cc, cf), (pc, pf) = [(n.args[0].attr, n.args[1:]) if n.args[0].op == "const" else (1.0, n.args) for n in (c, prev)]
    rest = {}
    for f in cf:
        rest.setdefault(id(f), []).append(f)
    for f in pf:
        if not rest.get(id(f)):
            return None
        rest[id(f)].pop()
    others = tuple(f for fs in rest.values() for f in fs)
    if not others or pc == 0:
        return None
    coef = (S.const(cc / pc),) if cc != pc else ()
    return make("mul", coef + (prev,) + others, None, c.shape)


#: a frontier with more terms than this is written with the terms a step leaves alone elided
MAX_TERMS_SHOWN = 8


class Frontier:
    """df = Σ ⟨Gₖ, d nₖ⟩ during the sweep: key -> (node nₖ, adjoint Gₖ, the term ⟨Gₖ, d nₖ⟩).
    A contribution to a node already there is added to its adjoint while that is a short sum,
    else it is a term of its own (⟨G, dX⟩ + ⟨C, dX⟩), so that no step rebuilds a long sum; a
    node's terms all go when it is expanded (the engine passes their total).  Each step's changes
    are logged, so the expression of any line can be rebuilt when asked for (`at`) and a step
    costs only what it changes, however wide the frontier."""

    def __init__(self, f: Node, g0: Node, d0: Node):
        self.front: dict = {id(f): (f, g0, d0, d0)}  # key -> (node, adjoint, term, term as written)
        self.extra: dict[int, list] = {}   # node id -> the keys of its terms of their own
        self.start = dict(self.front)
        self.log: list[tuple[list, list]] = []

    def expand(self, node: Node, total: Node, contribs: list) -> list[tuple[Node, Node]]:
        """Replace `node` by its arguments' contributions; (adjoint, as written) of the terms
        added or changed: a contribution whose factors include all of `total`'s is written as
        `total` times the others (`g5 * (1 - tanh(z) ** 2)`, not the whole flattened product)."""
        front = self.front
        removed = [id(node)] + self.extra.pop(id(node), [])
        for key in removed:
            del front[key]
        changed, shown = {}, []
        for i, c in contribs:
            a = node.args[i]
            prev = front.get(id(a))
            if prev is None:
                key, g, w = id(a), c, _in_terms_of(c, total) or c
            elif prev[1].op != "add" or len(prev[1].args) < MAX_TERMS_SHOWN:
                key, g = id(a), S.add(prev[1], c)
                w = g
            else:
                keys = self.extra.setdefault(id(a), [])
                key, g, w = (id(a), len(keys) + 1), c, _in_terms_of(c, total) or c
                keys.append(key)
            term = pairing(g, d_of(a))
            front[key] = changed[key] = (a, g, term, term if w is g else pairing(w, d_of(a)))
            shown.append((g, w))
        self.log.append((removed, list(changed.items())))
        return shown

    def expr(self) -> Node:
        return S.add(*[t for _, _, t, _ in self.front.values()])

    def shown(self, keys=None) -> Node:
        """The expression as written: each term with its adjoint as written."""
        entries = self.front.values() if keys is None else [self.front[k] for k in keys]
        return S.add(*[e[3] for e in entries])

    def at(self, k: int) -> Node:
        """The expression of the frontier after step k (replaying the log)."""
        front = dict(self.start)
        for removed, changed in self.log[:k + 1]:
            for key in removed:
                del front[key]
            front.update(changed)
        return S.add(*[t for _, _, t, _ in front.values()])


def _expand(lines: Lines, fr: Frontier, node: Node, total: Node, contribs: list) -> Step:
    """The step of the engine's reverse sweep expanding `node` (adjoint `total`) into its arguments:
    the frontier df = Σ ⟨Gₖ, d nₖ⟩ loses the node and gains its arguments.  A wide frontier is
    written as the terms this step changed and `+ …` for the others (the same as the line before)."""
    rule, formula = registry.step_of(node)
    if node.op == "mul" and len(contribs) == 1 and \
            all(i == contribs[0][0] or a.shape == () for i, a in enumerate(node.args)):
        rule, formula = "linearity (a constant factor)", r"\mathrm{d}(cA) = c\,\mathrm{d}A"
    shown = fr.expand(node, total, contribs)
    rest = len(fr.front) - len(shown)
    if len(fr.front) <= MAX_TERMS_SHOWN or rest == 0:
        e = fr.expr()
        text, latex = lines.write(fr.shown())
    else:
        k = len(fr.log) - 1
        e = lambda: fr.at(k)  # noqa: E731 - built only if asked for
        text, latex = lines.write(fr.shown(dict(fr.log[-1][1]))) if shown else ("0", "0")
        more = f"{rest} more term{'s' if rest > 1 else ''}, as in the line before"
        text, latex = f"{text} + … ({more})", f"{latex} + \\dots \\text{{ ({more})}}"
    for g, w in shown:  # a later line writing the adjoint itself writes it as it was written here
        lines.alias(g, w)
    shapes = {"node": f"{lines.node_text(node)}: {fmt_shape(node.shape)}",
              "adjoint": f"{fmt_shape(total.shape)} ✓" if total.shape == node.shape or total.shape == ()
              else f"{fmt_shape(total.shape)} ✗"}
    for i, c in contribs:
        a = node.args[i]
        shapes[f"∂f/∂({lines.node_text(a)})"] = (
            f"{fmt_shape(c.shape)} like {fmt_shape(a.shape)} ✓" if c.shape == a.shape else f"{fmt_shape(c.shape)} ✗")
    wt, wl = lines.where()
    return Step(rule, f"\\mathrm{{d}}f = {latex}{wl}", f"df = {text}{wt}", shapes, e, note=formula)


def gradient_steps(f: Node, x: Node, g0: Node, result: Node, layout_note: tuple | None = None,
                   assumption: tuple | None = None) -> list[Step]:
    """The reverse sweep for a scalar f, written out one rule at a time: the steps observe the
    engine's own sweep (`engine.reverse(..., observe=)`), one step per expanded node; the lines
    share the names of their long pieces (`Lines`), so all of them together are linear in size."""
    steps = []
    name = x.attr
    lines = Lines(f, {name} | g0.vars)
    d0 = pairing(g0, d_of(f))
    what = "f" if f.shape == () else f"⟨G, F⟩ with F {fmt_shape(f.shape)}"
    text, latex = lines.write(d0)
    wt, wl = lines.where()
    steps.append(Step("differential", f"\\mathrm{{d}}f = {latex}{wl}", f"df = {text}{wt}", {"f": what}, d0))
    if not f.has(name):
        steps.append(Step("no dependence", f"\\mathrm{{d}}f = 0", "df = 0", {}, S.const(0)))
        return steps
    fr = Frontier(f, g0, d0)
    reverse(f, x, g0, observe=lambda node, total, contribs: steps.append(_expand(lines, fr, node, total, contribs)))
    g = result
    ident = pairing(g, d_of(x))
    text, latex = lines.write(ident)
    wt, wl = lines.where()
    lhs = "tr(Gᵀ dX)" if len(x.shape) == 2 else "Gᵀ dx" if len(x.shape) == 1 else "G dx"
    steps.append(Step("identification", f"\\mathrm{{d}}f = {latex}{wl} \\;\\Rightarrow\\; "
                      f"\\frac{{\\partial f}}{{\\partial {to_latex(x)}}} = {to_latex(g)}",
                      f"df = {text}{wt}  =>  df/d{name} = {to_text(g)}",
                      {name: fmt_shape(x.shape), "gradient": f"{fmt_shape(g.shape)} ✓"}, ident,
                      note=f"df = {lhs} gives ∂f/∂{name} = G (simplified)"))
    if assumption:
        rule, final = assumption
        steps.append(Step(rule, f"\\frac{{\\partial f}}{{\\partial {to_latex(x)}}} = {to_latex(final)}",
                          f"df/d{name} = {to_text(final)}", {"gradient": f"{fmt_shape(final.shape)} ✓"},
                          pairing(final, d_of(x))))
    if layout_note:
        latex, text = layout_note
        steps.append(Step("layout conversion", latex, text, {}))
    return steps


def _own(n: Node) -> tuple[str, str, str, str]:
    """A line of its own (the forward part, read back by itself): the text and its ` where …`,
    the LaTeX and its `where`, each piece repeated in it named once (linear in its nodes)."""
    from .render import TextPrinter, _referenced
    from .render_latex import _latex_symbol, latex_printer
    from .share import render_shared
    body, defs = render_shared(TextPrinter(), n)
    defs = _referenced(body, [f"{k} = {v}" for k, v in defs])
    lbody, ldefs = render_shared(latex_printer(), n)
    return (body, " where " + "; ".join(defs) if defs else "", lbody,
            ",\\quad \\text{where } " + ",\\; ".join(f"{_latex_symbol(k)} = {v}" for k, v in ldefs) if ldefs else "")


def forward_steps(f: Node, x: Node, df: Node | None, result: Node, vec_form: bool,
                  layout_note: tuple | None = None) -> list[Step]:
    """The differential by the forward rules, then the derivative read off it (each line
    self-contained: its text, with its own `where`, evaluates by itself)."""
    t, tw, l, lw = _own(d_of(f))
    steps = [Step("differential", f"\\mathrm{{d}}F = {l}{lw}", f"dF = {t}{tw}", {"F": fmt_shape(f.shape)})]
    used = sorted({registry.step_of(n)[0] for n in postorder(f) if n.args and n.has(x.attr)})
    if df is None:
        steps.append(Step("no dependence", "\\mathrm{d}F = 0", "dF = 0", {}))
        return steps
    t, tw, l, lw = _own(df)
    steps.append(Step("forward rules: " + ", ".join(used), f"\\mathrm{{d}}F = {l}{lw}", f"dF = {t}{tw}",
                      {"dF": fmt_shape(df.shape)}, df))
    t, tw, l, lw = _own(result)
    xl = to_latex(x)
    if vec_form:
        steps.append(Step("vectorisation: vec(A dX B) = (Bᵀ ⊗ A) vec(dX), vec(dXᵀ) = K vec(dX), "
                          "vec(a ⊙ dX) = diag(vec a) vec(dX)",
                          f"\\operatorname{{vec}}(\\mathrm{{d}}F) = \\left({l}\\right) "
                          f"\\operatorname{{vec}}(\\mathrm{{d}}{xl}){lw}",
                          f"vec(dF) = ({t}) @ vec(d{x.attr}){tw}", {"J": fmt_shape(result.shape)}))
    elif len(f.shape) == 1 and len(x.shape) == 1:
        steps.append(Step("identification: dF = J dx (an element-wise factor a ⊙ dx is diag(a) dx)",
                          f"\\mathrm{{d}}F = {l}\\, \\mathrm{{d}}{xl}{lw}",
                          f"dF = ({t}) @ d{x.attr}{tw}", {"J": fmt_shape(result.shape)}))
    else:
        steps.append(Step("identification: dF = F' dα", f"\\frac{{\\partial F}}{{\\partial {xl}}} = {l}{lw}",
                          f"dF/d{x.attr} = {t}{tw}", {"derivative": fmt_shape(result.shape)}))
    if layout_note:
        latex, text = layout_note
        steps.append(Step("layout conversion", latex, text, {}))
    return steps


def steps_latex(steps: list[Step]) -> str:
    """One aligned LaTeX derivation, each line tagged with its rule."""
    lines = []
    for s in steps:
        lhs, _, rhs = s.latex.partition(" = ")
        lines.append(f"{lhs} &= {rhs} && \\text{{{s.rule}}}")
    return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"


def step_value(expr: Node, wrt: str, values: dict, direction, var_shapes: dict):
    """The number a df line stands for when the variable moves along `direction`: every d(n) is
    replaced by the directional derivative of n (forward mode), then the line is evaluated."""
    import numpy as np

    from .engine import forward
    from .evaluate import bind_values, evaluate_node
    seed_name = "dir_" + wrt
    while seed_name in var_shapes:
        seed_name += "_"
    x_shape = var_shapes[wrt]
    seed = S.var(seed_name, x_shape)

    def rewrite(n: Node):
        if n.op == "dvar" and n.attr == wrt:
            return seed
        if n.op == "dof":
            d = forward(n.args[0], {wrt: seed})
            return S.zeros(n.shape) if d is None else d
        return None

    e = S.rebuild(expr, rewrite)
    shapes = dict(var_shapes, **{seed_name: x_shape})
    env, dims = bind_values(shapes, dict(values, **{seed_name: direction}))
    out = np.asarray(evaluate_node(e, env, dims), dtype=float)
    return float(out) if out.ndim == 0 else out


def derivation_steps(d) -> list:
    """The steps of a Derivative `d`: the engine's sweep written out, with the layout and the
    declared facts as steps of their own."""
    from . import simplify as S
    from .engine import forward, reverse
    from .render import to_latex, to_text
    f, x = d.parsed.expr, S.var(d.wrt, d.wrt_shape)
    if d.kind == "vjp":
        return gradient_steps(f, x, S.var(d.upstream, d.out_shape), d.result)
    if d.kind == "hessian":
        g = reverse(f, x, S.const(1))
        first = gradient_steps(f, x, S.const(1), g)
        seed = S.dvar(x.attr, x.shape) if x.shape != () else S.const(1)
        dg = forward(g, {x.attr: seed})
        return first + forward_steps(g, x, dg, d.result, d.vec_form or x.shape != ())
    xl = to_latex(x)
    if f.shape == ():
        note = None
        grad = d.result
        if d.layout == "numerator" and len(x.shape) == 2:
            grad = S.T(d.result)
            note = (f"\\frac{{\\partial f}}{{\\partial {xl}}}\\Big|_{{\\text{{numerator}}}} = "
                    f"\\left(\\frac{{\\partial f}}{{\\partial {xl}}}\\right)^{{T}} = {to_latex(d.result)}",
                    f"numerator layout: the transpose, {to_text(d.result)}")
        assumption = None
        raw = reverse(f, x, S.const(1)) if d.fact_names else grad  # a sweep only when facts may change it
        if raw is not grad:
            assumption = (f"assumption: {', '.join(d.fact_names)}", grad)
            grad = raw
        return gradient_steps(f, x, S.const(1), grad, note, assumption)
    res, note = d.result, None
    if d.layout == "denominator" and len(f.shape) == 1 and len(x.shape) == 1:
        res = S.T(res)
        note = (f"\\frac{{\\partial F}}{{\\partial {xl}}}\\Big|_{{\\text{{denominator}}}} = J^{{T}} = "
                f"{to_latex(d.result)}", f"denominator layout: the transpose, {to_text(d.result)}")
    return forward_steps(f, x, d.differential if d.differential is not None else
                         forward(f, {x.attr: S.const(1) if x.shape == () else S.dvar(x.attr, x.shape)}),
                         res, d.vec_form, note)
