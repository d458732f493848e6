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

from dataclasses import dataclass, field

from . import simplify as S
from .expr import Node, fmt_shape, make, postorder, transpose_shape
from .render import to_latex, to_text
from .engine import reverse
from .ops import registry

@dataclass
class Step:
    """One line of a derivation: the rule applied, the resulting expression, the shapes checked."""

    rule: str
    latex: str
    text: str
    shapes: dict = field(default_factory=dict)
    expr: Node | None = field(default=None, repr=False)   # df as a node (differentials as `d(...)`)
    note: str = ""


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


def _frontier_expr(front: dict[int, tuple[Node, Node]]) -> Node:
    return S.add(*[pairing(g, d_of(n)) for n, g in front.values()])


def _expand(front: dict, node: Node, total: Node, contribs: list) -> Step:
    """The step of the engine's reverse sweep expanding `node` (adjoint `total`) into its arguments:
    the frontier df = Σ ⟨Gₖ, d nₖ⟩ loses the node and gains its arguments."""
    del front[id(node)]
    rule, formula = registry.step_of(node)
    if node.op == "mul" and len(contribs) == 1 and \
            all(i == contribs[0][0] or a.shape == () for i, a in enumerate(node.args)):
        rule, formula = "linearity (a constant factor)", r"\mathrm{d}(cA) = c\,\mathrm{d}A"
    shapes = {"node": f"{to_text(node, share=False)}: {fmt_shape(node.shape)}",
              "adjoint": f"{fmt_shape(total.shape)} ✓" if total.shape == node.shape or total.shape == ()
              else f"{fmt_shape(total.shape)} ✗"}
    for i, c in contribs:
        a = node.args[i]
        shapes[f"∂f/∂({to_text(a, share=False)})"] = (
            f"{fmt_shape(c.shape)} like {fmt_shape(a.shape)} ✓" if c.shape == a.shape else f"{fmt_shape(c.shape)} ✗")
        prev = front.get(id(a))
        front[id(a)] = (a, c if prev is None else S.add(prev[1], c))
    e = _frontier_expr(front)
    return Step(rule, f"\\mathrm{{d}}f = {to_latex(e, share=False)}", f"df = {to_text(e, share=False)}",
                shapes, e, note=formula)


def gradient_steps(f: Node, x: Node, g0: Node, result: Node, layout_note: tuple | None = None,
                   assumption: tuple | None = None) -> list[Step]:
    """The reverse sweep for a scalar f, written out one rule at a time: the steps observe the
    engine's own sweep (`engine.reverse(..., observe=)`), one step per expanded node."""
    steps = []
    name = x.attr
    d0 = pairing(g0, d_of(f))
    what = "f" if f.shape == () else f"⟨G, F⟩ with F {fmt_shape(f.shape)}"
    steps.append(Step("differential", f"\\mathrm{{d}}f = {to_latex(d0, share=False)}",
                      f"df = {to_text(d0, share=False)}", {"f": what}, d0))
    if not f.has(name):
        steps.append(Step("no dependence", f"\\mathrm{{d}}f = 0", "df = 0", {}, S.const(0)))
        return steps
    front: dict[int, tuple[Node, Node]] = {id(f): (f, g0)}
    reverse(f, x, g0, observe=lambda node, total, contribs: steps.append(_expand(front, node, total, contribs)))
    g = result
    ident = pairing(g, d_of(x))
    lhs = "tr(Gᵀ dX)" if len(x.shape) == 2 else "Gᵀ dx" if len(x.shape) == 1 else "G dx"
    steps.append(Step("identification", f"\\mathrm{{d}}f = {to_latex(ident, share=False)} \\;\\Rightarrow\\; "
                      f"\\frac{{\\partial f}}{{\\partial {to_latex(x)}}} = {to_latex(g)}",
                      f"df = {to_text(ident, share=False)}  =>  df/d{name} = {to_text(g)}",
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


def forward_steps(f: Node, x: Node, df: Node | None, result: Node, vec_form: bool,
                  layout_note: tuple | None = None) -> list[Step]:
    """The differential by the forward rules, then the derivative read off it."""
    d0 = d_of(f)
    steps = [Step("differential", f"\\mathrm{{d}}F = {to_latex(d0, share=False)}",
                  f"dF = {to_text(d0, share=False)}", {"F": fmt_shape(f.shape)})]
    used = sorted({registry.step_of(n)[0] for n in postorder(f) if n.args and n.has(x.attr)})
    if df is None:
        steps.append(Step("no dependence", "\\mathrm{d}F = 0", "dF = 0", {}))
        return steps
    steps.append(Step("forward rules: " + ", ".join(used), f"\\mathrm{{d}}F = {to_latex(df, share=False)}",
                      f"dF = {to_text(df, share=False)}", {"dF": fmt_shape(df.shape)}, df))
    if vec_form:
        steps.append(Step("vectorisation: vec(A dX B) = (Bᵀ ⊗ A) vec(dX), vec(dXᵀ) = K vec(dX), "
                          "vec(a ⊙ dX) = diag(vec a) vec(dX)",
                          f"\\operatorname{{vec}}(\\mathrm{{d}}F) = \\left({to_latex(result)}\\right) "
                          f"\\operatorname{{vec}}(\\mathrm{{d}}{to_latex(x)})",
                          f"vec(dF) = ({to_text(result)}) @ vec(d{x.attr})",
                          {"J": fmt_shape(result.shape)}))
    elif len(f.shape) == 1 and len(x.shape) == 1:
        steps.append(Step("identification: dF = J dx (an element-wise factor a ⊙ dx is diag(a) dx)",
                          f"\\mathrm{{d}}F = {to_latex(result)}\\, \\mathrm{{d}}{to_latex(x)}",
                          f"dF = ({to_text(result)}) @ d{x.attr}", {"J": fmt_shape(result.shape)}))
    else:
        steps.append(Step("identification: dF = F' dα", f"\\frac{{\\partial F}}{{\\partial {to_latex(x)}}} = {to_latex(result)}",
                          f"dF/d{x.attr} = {to_text(result)}", {"derivative": fmt_shape(result.shape)}))
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
        raw = reverse(f, x, S.const(1))
        if d.fact_names and raw is not grad:
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
