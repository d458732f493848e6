"""Build (and execute) the matcalc notebooks that reproduce the derivations of the teaching notes.

    python notebooks/make_notebooks.py              # write every notebook and execute it in place
    python notebooks/make_notebooks.py --no-execute # write them without outputs
    python notebooks/make_notebooks.py 03 05        # only the notebooks whose names start so

Each notebook is a list of markdown and code cells below; the first code cell of every notebook
defines `check` (asserts that `d.check()`, matcalc's own check against central finite differences,
passes, and that the derivative equals a note's result where one is given) and `derivative`, so a
notebook fails to execute if matcalc is wrong. Each notebook ends with one derivation step by step
(`d.steps_latex`) and its generated numpy code (`d.to_python()`). The notes are cited by title
and topic (see /work/shared/notes/README.md). Cell ids are deterministic so that regenerating
gives small diffs.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NB_DIR = Path(__file__).resolve().parent


def md(text: str):
    return new_markdown_cell(textwrap.dedent(text).strip())


def code(text: str):
    return new_code_cell(textwrap.dedent(text).strip())


SETUP = code('''
    import numpy as np
    from IPython.display import Math, display

    import matcalc

    rng = np.random.default_rng(0)


    def check(d, values, shapes=None, expected=None):
        """d.check() (matcalc's own check: central finite differences, and exactly with sympy when
        the problem is small) must pass; d.text must evaluate to the array d.evaluate gives; and
        with `expected` (a note's result) d.evaluate(values) must equal it."""
        result = d.check()
        assert result.ok, result
        got = d.evaluate(values)
        if expected is not None:
            assert got.shape == np.shape(expected), (got.shape, np.shape(expected))
            assert np.allclose(got, expected, rtol=1e-5, atol=1e-6), np.abs(got - expected).max()
        if got.ndim <= 2:
            assert np.allclose(matcalc.evaluate(d.text, values, shapes=shapes), got)
        print(f"OK  d/d{d.wrt}: {d.text}   (shape {got.shape})")
        print(f"    d.check(): {result}")


    def derivative(expr, wrt, values, shapes=None):
        """matcalc's derivative of expr by wrt at values, once its d.check() has passed."""
        d = matcalc.diff(expr, wrt, shapes=shapes)
        assert d.check().ok
        return d.evaluate(values)
''')


NOTEBOOKS: dict[str, list] = {}

# --------------------------------------------------------------------------------------------
NOTEBOOKS["01_dot_products_and_Ax"] = [
    md(r'''
    # 1. Dot products and $A\mathbf{x}$

    The note *深度学习中的矩阵运算* (“Matrix operations in deep learning”: dot and matrix products, element-wise operations, broadcasting, and their derivatives) derives the derivatives of
    a dot product $\mathbf{w}^T\mathbf{x}$ and of a matrix–vector product $A\mathbf{x}$.
    This notebook reproduces them with matcalc and checks every result against central finite
    differences. Vectors are columns: `w.T @ x` is a scalar.
    '''),
    SETUP,
    md(r'''
    ## Dot product $y = \mathbf{w}\cdot\mathbf{x} = \mathbf{w}^T\mathbf{x}$

    The note finds $\partial y/\partial \mathbf{x} = \mathbf{w}^T$ and
    $\partial y/\partial \mathbf{w} = \mathbf{x}^T$, written as row vectors (numerator layout).
    matcalc's default layout gives the gradient, which has the shape of the variable, so it
    prints `x` and `w`; in every layout a vector derivative stays a 1-D array, the row/column
    distinction is only a convention of the written form.
    '''),
    code('''
    d_w = matcalc.diff("w.T @ x", "w")
    print(d_w.text, d_w.variable_shapes)
    d_w
    '''),
    code('''
    d_x = matcalc.diff("w.T @ x", "x")
    print(d_x.text, d_x.variable_shapes)
    d_x
    '''),
    code('''
    values = {"w": rng.standard_normal(4), "x": rng.standard_normal(4)}
    check(d_w, values)
    check(d_x, values)
    '''),
    md(r'''
    ## Matrix–vector product $\mathbf{y} = A\mathbf{x}$ by $\mathbf{x}$

    Since $y_i = \sum_j a_{ij} x_j$, $\partial y_i/\partial x_j = a_{ij}$: the Jacobian
    $\partial\mathbf{y}/\partial\mathbf{x}$ ($m\times n$, one row per output) is $A$ itself.
    The note's $\mathbf{y} = W^T\mathbf{x}$, with the weight vectors as the columns of $W$, is the
    same statement with $A = W^T$.
    '''),
    code('''
    d = matcalc.diff("A @ x", "x")
    print(d.text, d.variable_shapes, d.shape)
    d
    '''),
    code('''
    values = {"A": rng.standard_normal((3, 4)), "x": rng.standard_normal(4)}
    check(d, values)
    '''),
    md(r'''
    ## $\mathbf{y} = A\mathbf{x}$ by $A$

    The note keeps only the nonzero part of this derivative: $\partial y_i/\partial a_{ij} = x_j$,
    so "row $i$" is $\mathbf{x}^T$ and $\partial\mathbf{y}/\partial A = [\mathbf{x}\cdots\mathbf{x}]^T$.
    The whole derivative of an $m$-vector by an $m\times n$ matrix has $m\cdot m\cdot n$ entries;
    matcalc writes it as the vec-Jacobian $\partial\mathbf{y}/\partial\operatorname{vec}(A)^T =
    \mathbf{x}^T\otimes I_m$ (the differential is $\mathrm{d}\mathbf{y} = \mathrm{d}A\,\mathbf{x}$),
    and `evaluate` returns the array $J_{ikl} = \partial y_i/\partial a_{kl}$ of shape $(m, m, n)$.
    '''),
    code('''
    d = matcalc.diff("A @ x", "A")
    print(d.text, "   ", d.differential_text, d.variable_shapes)
    d
    '''),
    code('''
    values = {"A": rng.standard_normal((3, 4)), "x": rng.standard_normal(4)}
    J = derivative("A @ x", "A", values)
    check(d, values, expected=J)
    # the note's compressed form: the only nonzero block of output i is row i of A, where it is x
    rows = np.arange(3)
    assert np.allclose(J[rows, rows, :], values["x"])
    assert np.count_nonzero(np.abs(J) > 1e-9) == 3 * 4
    print(J[rows, rows, :])
    '''),
    md(r'''
    ## Bilinear form $f = \mathbf{a}^T X \mathbf{b}$ by $X$

    $f = \sum_{ij} a_i x_{ij} b_j$, so $\partial f/\partial x_{ij} = a_i b_j$: the gradient is the
    outer product $\mathbf{a}\mathbf{b}^T$, an $m\times n$ matrix like $X$.
    '''),
    code('''
    d = matcalc.diff("a.T @ X @ b", "X")
    print(d.text, d.variable_shapes)
    d
    '''),
    code('''
    values = {"a": rng.standard_normal(3), "X": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    check(d, values)
    '''),
]

# --------------------------------------------------------------------------------------------
NOTEBOOKS["02_jacobian_layouts"] = [
    md(r'''
    # 2. The Jacobian and its two layouts

    The note *数学笔记 — 深度学习相关数学* (“Mathematics for deep learning”: scalar rules, partial derivatives, the Jacobian and its generalisation) builds the Jacobian from partial derivatives and uses the
    **numerator layout** (one row per output); the note *矩阵求导* (“Matrix derivatives”: the dimension-compatibility principle, linear regression, softmax cross-entropy, backprop) derives gradients with
    the *dimension-compatibility principle*, which uses the **denominator layout** (the transpose).
    matcalc's `layout=` argument chooses between them; the default `"mixed"` layout is the
    numerator layout for Jacobians and gives gradients the shape of the variable.
    '''),
    SETUP,
    md(r'''
    ## Partial derivatives and a $2\times 2$ Jacobian

    The note's example: $f(x, y) = 3x^2y$ and $g(x, y) = 2x + y^8$. Lower-case names are vectors
    by default, so `shapes` declares $x$ and $y$ scalars. Stacking the gradients as rows gives
    the numerator-layout Jacobian $\begin{bmatrix} 6xy & 3x^2 \\ 2 & 8y^7 \end{bmatrix}$; the
    denominator layout is its transpose.
    '''),
    code(r'''
    shapes = {"x": (), "y": ()}
    funcs = ["3 * x ** 2 * y", "2 * x + y ** 8"]
    partials = [[matcalc.diff(f, v, shapes=shapes) for v in ("x", "y")] for f in funcs]
    for f, row in zip(funcs, partials):
        print(f"{f:16}  d/dx = {row[0].text:9}  d/dy = {row[1].text}")
    entries = [[p.latex for p in row] for row in partials]
    display(Math(r"J_{\text{numerator}} = \begin{bmatrix} %s & %s \\ %s & %s \end{bmatrix}"
                 % (*entries[0], *entries[1])))
    display(Math(r"J_{\text{denominator}} = \begin{bmatrix} %s & %s \\ %s & %s \end{bmatrix}"
                 % (entries[0][0], entries[1][0], entries[0][1], entries[1][1])))
    '''),
    code('''
    values = {"x": 1.3, "y": 0.7}
    for f, row in zip(funcs, partials):
        for v, d in zip(("x", "y"), row):
            check(d, values, shapes=shapes)
    '''),
    md(r'''
    ## The identity function

    For $\mathbf{f}(\mathbf{x}) = \mathbf{x}$, $\partial x_i/\partial x_j$ is 1 on the diagonal and
    0 elsewhere: the Jacobian is the identity $I$. (Naming the dimension `n` in `shapes` lets the
    text form `eye(n)` be evaluated back.)
    '''),
    code('''
    d = matcalc.diff("x", "x", shapes={"x": ("n",)})
    print(d.text, d.variable_shapes)
    d
    '''),
    code('''
    values = {"x": rng.standard_normal(4)}
    check(d, values, shapes={"x": ("n",)})
    '''),
    md(r'''
    ## Vector by vector: $\mathbf{y} = A\mathbf{x}$ in both layouts

    In numerator layout $\partial\mathbf{y}/\partial\mathbf{x}$ is $m\times n$ and equals $A$; in
    denominator layout it is $n\times m$ and equals $A^T$. The `"mixed"` default agrees with the
    numerator layout here.
    '''),
    code('''
    layouts = {lay: matcalc.diff("A @ x", "x", layout=lay) for lay in ("mixed", "numerator", "denominator")}
    for lay, d in layouts.items():
        print(f"{lay:12} {d.text:4} shape {d.shape}")
    print(layouts["mixed"].variable_shapes)
    layouts["denominator"]
    '''),
    code('''
    values = {"A": rng.standard_normal((3, 4)), "x": rng.standard_normal(4)}
    J = derivative("A @ x", "x", values)          # (m, n): rows are outputs
    check(layouts["mixed"], values, expected=J)
    check(layouts["numerator"], values, expected=J)
    check(layouts["denominator"], values, expected=J.T)
    '''),
    md(r'''
    ## The chain rule: $\mathbf{z} = \exp(A\mathbf{x})$

    *数学笔记* (§3.2) composes $\mathbf{z} = \mathbf{g}(\mathbf{y})$, $\mathbf{y} = \mathbf{f}(\mathbf{x})$.
    In numerator layout the Jacobians multiply in the order of composition,
    $\frac{\partial\mathbf{z}}{\partial\mathbf{x}} = \frac{\partial\mathbf{z}}{\partial\mathbf{y}}
    \frac{\partial\mathbf{y}}{\partial\mathbf{x}} = \operatorname{diag}(e^{A\mathbf{x}})\,A$;
    in denominator layout (the note's $\partial\mathbf{z}^T/\partial\mathbf{x}$) the order is reversed.
    '''),
    code('''
    d_num = matcalc.diff("exp(A @ x)", "x", layout="numerator")
    d_den = matcalc.diff("exp(A @ x)", "x", layout="denominator")
    print("numerator:  ", d_num.text, d_num.shape)
    print("denominator:", d_den.text, d_den.shape)
    d_num
    '''),
    code('''
    values = {"A": rng.standard_normal((3, 4)), "x": rng.standard_normal(4)}
    J = derivative("exp(A @ x)", "x", values)
    check(d_num, values, expected=J)
    check(d_den, values, expected=J.T)
    '''),
    md(r'''
    ## Scalar by matrix: $f = \mathbf{a}^T X\mathbf{b}$ in both layouts

    For a scalar by an $m\times n$ matrix the numerator layout gives an $n\times m$ matrix
    ($\mathbf{b}\mathbf{a}^T$) and the denominator layout an $m\times n$ one ($\mathbf{a}\mathbf{b}^T$),
    the shape of $X$ itself. That is why note 003 picks the denominator layout: a gradient must
    have the shape of the variable it updates, and "dimension compatibility" checks exactly that.
    The default `"mixed"` layout agrees with the denominator layout for gradients.
    '''),
    code('''
    layouts = {lay: matcalc.diff("a.T @ X @ b", "X", layout=lay) for lay in ("mixed", "numerator", "denominator")}
    for lay, d in layouts.items():
        print(f"{lay:12} {d.text:8} shape {d.shape}")
    print(layouts["mixed"].variable_shapes)
    layouts["numerator"]
    '''),
    code('''
    values = {"a": rng.standard_normal(3), "X": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    J = derivative("a.T @ X @ b", "X", values)    # (m, n), like X
    check(layouts["mixed"], values, expected=J)
    check(layouts["denominator"], values, expected=J)
    check(layouts["numerator"], values, expected=J.T)
    '''),
]

# --------------------------------------------------------------------------------------------
NOTEBOOKS["03_elementwise_diagonal_jacobians"] = [
    md(r'''
    # 3. Element-wise operations and diagonal Jacobians

    The notes *深度学习中的矩阵运算* (“Matrix operations in deep learning”) and *数学笔记 — 深度学习相关数学* (“Mathematics for deep learning”, §3.3) study
    $\mathbf{y} = \mathbf{f}(\mathbf{u}) \bigcirc \mathbf{g}(\mathbf{v})$ for an element-wise
    operator $\bigcirc$: $y_i$ depends only on $u_i$ and $v_i$, so every Jacobian is diagonal,
    $\frac{\partial\mathbf{y}}{\partial\mathbf{u}} = \operatorname{diag}\big(\frac{\partial y_i}{\partial u_i}\big)$.
    (The notes write the element-wise product and division as $\otimes$ and $\oslash$; in matcalc
    they are `*` and `/`, and $\otimes$ means the Kronecker product.)

    The vectors $\mathbf{u}$ and $\mathbf{v}$ have the same length; `shapes` names it `n` so that
    results such as `eye(n)` can be evaluated back from their text form.
    '''),
    SETUP,
    code('''
    shapes = {"u": ("n",), "v": ("n",)}
    values = {"u": rng.standard_normal(4), "v": rng.uniform(0.5, 2.0, 4), "x": rng.standard_normal(4)}
    '''),
    md(r'''
    ## An element-wise function: $\exp(\mathbf{x})$

    $\partial e^{x_i}/\partial x_j = e^{x_i}$ if $i = j$ and 0 otherwise:
    the Jacobian is $\operatorname{diag}(e^{\mathbf{x}})$.
    '''),
    code('''
    d = matcalc.diff("exp(x)", "x")
    print(d.text, d.variable_shapes, "   ", d.differential_text)
    d
    '''),
    code('''
    check(d, values)
    '''),
    md(r'''
    ## Product $\mathbf{u} * \mathbf{v}$

    $\partial(u_iv_i)/\partial u_i = v_i$ and $\partial(u_iv_i)/\partial v_i = u_i$:
    the Jacobians are $\operatorname{diag}(\mathbf{v})$ and $\operatorname{diag}(\mathbf{u})$.
    '''),
    code('''
    d_u = matcalc.diff("u * v", "u", shapes=shapes)
    d_v = matcalc.diff("u * v", "v", shapes=shapes)
    print("by u:", d_u.text, "   by v:", d_v.text, "  ", d_u.variable_shapes)
    display(d_u, d_v)
    '''),
    code('''
    check(d_u, values, shapes=shapes)
    check(d_v, values, shapes=shapes)
    '''),
    md(r'''
    ## Quotient $\mathbf{u} / \mathbf{v}$

    $\partial(u_i/v_i)/\partial u_i = 1/v_i$ and $\partial(u_i/v_i)/\partial v_i = -u_i/v_i^2$:
    the Jacobians are $\operatorname{diag}(1/\mathbf{v})$ and $\operatorname{diag}(-\mathbf{u}/\mathbf{v}^2)$,
    as in both notes.
    '''),
    code('''
    d_u = matcalc.diff("u / v", "u", shapes=shapes)
    d_v = matcalc.diff("u / v", "v", shapes=shapes)
    print("by u:", d_u.text, "   by v:", d_v.text)
    display(d_u, d_v)
    '''),
    code('''
    check(d_u, values, shapes=shapes)
    check(d_v, values, shapes=shapes)
    '''),
    md(r'''
    ## Sum and difference: $\partial(\mathbf{u}+\mathbf{v})/\partial\mathbf{v}$ is $I$, not $-I$

    Since $y_i = u_i + v_i$, $\partial y_i/\partial v_i = 1$, so
    $\frac{\partial(\mathbf{u}+\mathbf{v})}{\partial\mathbf{u}} = \frac{\partial(\mathbf{u}+\mathbf{v})}{\partial\mathbf{v}} = I$,
    while for the difference $\frac{\partial(\mathbf{u}-\mathbf{v})}{\partial\mathbf{u}} = I$ and
    $\frac{\partial(\mathbf{u}-\mathbf{v})}{\partial\mathbf{v}} = -I$.

    *深度学习中的矩阵运算*'s table of derivatives by $\mathbf{v}$ gives
    $\frac{\partial(\mathbf{u}+\mathbf{v})}{\partial\mathbf{v}} = \operatorname{diag}(-\mathbf{1}) = -I$.
    With respect, that entry is a slip (it repeats the row for $\mathbf{u}-\mathbf{v}$ below it):
    the derivative is $I$, as note 002 states and as matcalc and the finite differences below confirm.
    '''),
    code('''
    sums = {(e, v): matcalc.diff(e, v, shapes=shapes) for e in ("u + v", "u - v") for v in ("u", "v")}
    for (e, v), d in sums.items():
        print(f"d({e})/d{v} = {d.text}")
    sums[("u + v", "v")]
    '''),
    code('''
    for (e, v), d in sums.items():
        check(d, values, shapes=shapes)

    J = derivative("u + v", "v", values)
    n = len(values["v"])
    assert np.allclose(J, np.eye(n)) and not np.allclose(J, -np.eye(n))
    print("finite differences of u + v by v:")
    print(J.round(6))
    '''),
]

# --------------------------------------------------------------------------------------------
NOTEBOOKS["04_backprop_Y_equals_WX"] = [
    md(r'''
    # 4. Backpropagation through $Y = WX$

    The note *矩阵乘* (“Matrix multiplication”: the backward pass of $Y = WX$) derives the backward pass of a matrix product: given the upstream
    gradient $G = \partial L/\partial Y$, the gradients are $X_\text{grad} = W^T G$ and
    $W_\text{grad} = G X^T$. `matcalc.vjp(expr, wrt)` computes exactly this rule: the gradient of
    $\sum G \odot \text{expr}$ by `wrt`, where the upstream $G$ has the shape of the expression.
    '''),
    SETUP,
    code('''
    m, n, p = 3, 4, 2                      # W: m×n, X: n×p, Y = W X: m×p
    values = {"W": rng.standard_normal((m, n)), "X": rng.standard_normal((n, p)),
              "G": rng.standard_normal((m, p))}
    '''),
    md(r'''
    ## $X_\text{grad} = W^T G$
    '''),
    code('''
    d_X = matcalc.vjp("W @ X", "X")
    print(d_X.text, d_X.variable_shapes)
    d_X
    '''),
    code('''
    check(d_X, values)
    '''),
    md(r'''
    ## $W_\text{grad} = G X^T$

    The note obtains it by transposing $Y = WX$ into $Y^T = X^TW^T$ and reusing the rule above.
    '''),
    code('''
    d_W = matcalc.vjp("W @ X", "W")
    print(d_W.text, d_W.variable_shapes)
    d_W
    '''),
    code('''
    check(d_W, values)
    '''),
    md(r'''
    ## The full derivative $\partial Y/\partial X$: a 4th-order tensor

    The derivative of the $m\times p$ matrix $Y$ by the $n\times p$ matrix $X$ has $m\cdot p\cdot n\cdot p$
    entries. matcalc writes it as the vec-Jacobian
    $\partial\operatorname{vec}(Y)/\partial\operatorname{vec}(X)^T = I_p\otimes W$ (column-major
    $\operatorname{vec}$, Kronecker product), together with the differential form
    $\mathrm{d}Y = W\,\mathrm{d}X$; `evaluate` returns the array
    $J_{ijkl} = \partial y_{ij}/\partial x_{kl}$ of shape $(m, p, n, p)$.
    '''),
    code('''
    d = matcalc.diff("W @ X", "X")
    print(d.text, "   shape", d.shape, "   ", d.differential_text)
    display(Math(d.differential_latex))
    d
    '''),
    code('''
    J = derivative("W @ X", "X", values)
    check(d, values, expected=J)
    # the same numbers as the Kronecker product, once both sides are vectorised column by column
    assert np.allclose(J.reshape(m * p, n * p, order="F"), np.kron(np.eye(p), values["W"]))
    '''),
    md(r'''
    ## From the 4th-order Jacobian back to the backprop rule

    Contracting the Jacobian with the upstream gradient,
    $(X_\text{grad})_{kl} = \sum_{ij} G_{ij}\,\partial y_{ij}/\partial x_{kl}$, gives back $W^T G$;
    the same holds for $W$, whose Jacobian is $X^T\otimes I_m$ (differential $\mathrm{d}Y = \mathrm{d}W\,X$).
    This is why backprop never needs to build the big tensor.
    '''),
    code('''
    d_by_W = matcalc.diff("W @ X", "W")
    print(d_by_W.text, "   ", d_by_W.differential_text)
    d_by_W
    '''),
    code('''
    J_W = derivative("W @ X", "W", values)
    check(d_by_W, values, expected=J_W)
    G = values["G"]
    assert np.allclose(np.einsum("ij,ijkl->kl", G, d.evaluate(values)), d_X.evaluate(values))
    assert np.allclose(np.einsum("ij,ijkl->kl", G, d_by_W.evaluate(values)), d_W.evaluate(values))
    print("G : dY/dX == W.T @ G and G : dY/dW == G @ X.T")
    '''),
]

# --------------------------------------------------------------------------------------------
NOTEBOOKS["05_linear_regression"] = [
    md(r'''
    # 5. Linear regression

    The note *矩阵求导* (“Matrix derivatives”: the dimension-compatibility principle, linear regression, softmax cross-entropy, backprop) opens with least squares,
    $J(\mathbf{w}) = \sum_i (\mathbf{w}^T\mathbf{x}_i - y_i)^2 = (X\mathbf{w}-\mathbf{y})^T(X\mathbf{w}-\mathbf{y})$
    with $X\in\mathbb{R}^{m\times n}$, and derives by dimension compatibility (denominator layout)
    $\partial J/\partial\mathbf{w} = 2X^T(X\mathbf{w}-\mathbf{y})$. Here matcalc derives it, the
    Hessian $2X^TX$, and the minimiser from the normal equations.
    '''),
    SETUP,
    code('''
    m, n = 8, 3
    values = {"X": rng.standard_normal((m, n)), "w": rng.standard_normal(n), "y": rng.standard_normal(m)}
    '''),
    md(r'''
    ## One sample (stochastic gradient descent)

    For one sample the note's eq. (2) is $\partial J_i/\partial\mathbf{w} = 2(\mathbf{w}^T\mathbf{x}_i - y_i)\,\mathbf{x}_i$,
    a scalar times a vector; `shapes` declares $y_i$ a scalar.
    '''),
    code('''
    d_i = matcalc.diff("(w.T @ x_i - y_i) ** 2", "w", shapes={"y_i": ()})
    print(d_i.text, d_i.variable_shapes)
    d_i
    '''),
    code('''
    sample = {"w": values["w"], "x_i": values["X"][0], "y_i": float(values["y"][0])}
    check(d_i, sample, shapes={"y_i": ()})
    '''),
    md(r'''
    ## The whole batch, in both forms

    The sum of squares and the inner product $(X\mathbf{w}-\mathbf{y})^T(X\mathbf{w}-\mathbf{y})$
    are the same function, and matcalc gives the same gradient for both: the note's eq. (4),
    $2X^T(X\mathbf{w}-\mathbf{y})$ (eq. (3), $2(X\mathbf{w}-\mathbf{y})X$, is the shape-incompatible
    first guess the note corrects). A gradient by a vector is an $n$-vector in every layout.
    '''),
    code('''
    d_sum = matcalc.diff("sum((X @ w - y) ** 2)", "w")
    d_dot = matcalc.diff("(X@w - y).T @ (X@w - y)", "w")
    d_den = matcalc.diff("sum((X @ w - y) ** 2)", "w", layout="denominator")
    print(d_sum.text, "|", d_dot.text, "|", d_den.text, "  ", d_sum.variable_shapes)
    assert d_sum.text == d_dot.text == d_den.text
    d_sum
    '''),
    code('''
    check(d_sum, values)
    check(d_dot, values)
    '''),
    md(r'''
    ## The Hessian $2X^TX$

    The gradient is affine in $\mathbf{w}$, so the Hessian is the constant $2X^TX$
    (positive semi-definite: $J$ is convex). The check differentiates the already-verified
    gradient once more by finite differences.
    '''),
    code('''
    H = matcalc.hessian("sum((X @ w - y) ** 2)", "w")
    print(H.text, H.shape)
    H
    '''),
    code('''
    check(H, values)
    '''),
    md(r'''
    ## Solving the normal equations

    Setting the gradient to zero gives $X^TX\mathbf{w} = X^T\mathbf{y}$. We solve it numerically,
    check that matcalc's gradient vanishes at the solution, that it matches `numpy.linalg.lstsq`,
    and that the Hessian there is positive definite (so it is the minimum).
    '''),
    code('''
    X, y = values["X"], values["y"]
    w_star = np.linalg.solve(X.T @ X, X.T @ y)
    at_opt = {**values, "w": w_star}
    grad = d_sum.evaluate(at_opt)
    print("w* =", w_star.round(4), "  |gradient at w*| =", f"{np.abs(grad).max():.1e}")
    assert np.allclose(grad, 0, atol=1e-10)
    assert np.allclose(w_star, np.linalg.lstsq(X, y, rcond=None)[0])
    assert np.all(np.linalg.eigvalsh(H.evaluate(at_opt)) > 0)
    '''),
]

# --------------------------------------------------------------------------------------------
NOTEBOOKS["06_dense_layer_softmax_cross_entropy"] = [
    md(r'''
    # 6. Dense layer, element-wise exp/log, softmax cross-entropy

    The note *矩阵求导* (“Matrix derivatives”: the dimension-compatibility principle, linear regression, softmax cross-entropy, backprop) backpropagates through a dense layer $S = XW + \mathbf{b}$
    ($X$: $m\times n$ samples, $W$: $n\times c$, $\mathbf{b}$ a length-$c$ bias added to every row)
    and a softmax cross-entropy loss. In matcalc's input language the bias broadcast is numpy's:
    `X @ W + b` adds `b` to each row. matcalc infers all shapes by itself; `dims` only gives the
    dimensions the note's names.
    '''),
    SETUP,
    code('''
    m, n, c = 5, 3, 4                      # the note's names: m samples, n features, c classes
    dims = {"X": ("m", "n"), "W": ("n", "c"), "b": ("c",)}
    values = {"X": rng.standard_normal((m, n)), "W": rng.standard_normal((n, c)),
              "b": rng.standard_normal(c), "G": rng.standard_normal((m, c))}
    '''),
    md(r'''
    ## Backprop through the dense layer

    With the upstream gradient $G = \partial L/\partial S$ ($m\times c$), the note's eq. (6) is
    $\partial L/\partial W = X^TG$ and eq. (8) is $\partial L/\partial\mathbf{b} = \mathbf{1}^TG$ —
    the bias is shared by all rows, so its gradient is the column sums of $G$, `sum(G, axis=0)`.
    '''),
    code('''
    d_W = matcalc.vjp("X @ W + b", "W", shapes=dims)
    d_b = matcalc.vjp("X @ W + b", "b", shapes=dims)
    print("W:", d_W.text, "   b:", d_b.text, "  ", d_W.variable_shapes)
    display(d_W, d_b)
    '''),
    code('''
    check(d_W, values, shapes=dims)
    check(d_b, values, shapes=dims)
    '''),
    md(r'''
    ## Element-wise $\exp$ and $\log$

    The note lists $\partial e^{\mathbf{x}}/\partial\mathbf{x} = [e^{x_i}]$ and
    $\partial\ln\mathbf{x}/\partial\mathbf{x} = [1/x_i]$: the diagonals of the diagonal Jacobians
    $\operatorname{diag}(e^{\mathbf{x}})$ and $\operatorname{diag}(1/\mathbf{x})$. For a matrix the same
    holds entry by entry; under a sum (as in a loss) only the diagonal survives, so
    $\partial\sum e^X/\partial X = e^X$ and $\partial\sum\ln X/\partial X = 1/X$.
    '''),
    code('''
    ew = {(e, v): matcalc.diff(e, v) for e, v in
          [("exp(x)", "x"), ("log(x)", "x"), ("sum(exp(A))", "A"), ("sum(log(A))", "A")]}
    for (e, v), d in ew.items():
        print(f"d {e} / d{v} = {d.text}")
    ew[("sum(log(A))", "A")]
    '''),
    code('''
    pos = {"x": rng.uniform(0.5, 2.0, 4), "A": rng.uniform(0.5, 2.0, (3, 4))}
    for (e, v), d in ew.items():
        check(d, pos)
    '''),
    md(r'''
    ## Picking entries and summing rows

    Two more rules of the note: a sum of selected entries $l = \sum A\odot B$ (with $B$ a 0/1 mask)
    has $\partial l/\partial A = B$; and for the row sums $\mathbf{l} = A\mathbf{1}$ an upstream
    gradient $\mathbf{g}$ (one entry per row) is broadcast over the columns: $\mathbf{g}\mathbf{1}^T$.
    (`shapes` names the dimensions of $A$ so that the text form `g @ ones(n).T` can be evaluated back.)
    '''),
    code('''
    shapes = {"A": ("m", "n")}
    d_pick = matcalc.diff("sum(A * B)", "A", shapes=shapes)
    d_rows = matcalc.vjp("sum(A, axis=1)", "A", upstream="g", shapes=shapes)
    print("pick:", d_pick.text, "   row sums:", d_rows.text)
    display(d_pick, d_rows)
    '''),
    code('''
    B = np.eye(3, 4)[[2, 0, 1]]            # one selected entry per row
    v = {"A": rng.standard_normal((3, 4)), "B": B, "g": rng.standard_normal(3)}
    check(d_pick, v, shapes=shapes)
    check(d_rows, v, shapes=shapes)
    '''),
    md(r'''
    ## Softmax cross-entropy, by the scores

    With one-hot labels $Y$ the loss is $L = -\sum Y\odot\log\operatorname{softmax}(S)$ (row-wise softmax).
    The note splits it into $L_1 = -\sum_i s_{i,y_i} = -\sum Y\odot S$, whose gradient is $-Y$, and
    $L_2 = \sum_i\log\sum_j e^{s_{ij}}$, whose gradient is $\operatorname{softmax}(S)$.
    '''),
    code('''
    d_L1 = matcalc.diff("-sum(Y * S)", "S")
    d_L2 = matcalc.diff("sum(logsumexp(S, axis=1))", "S")
    print("L1:", d_L1.text, "   L2:", d_L2.text)
    display(d_L1, d_L2)
    '''),
    code('''
    Y = np.eye(c)[rng.integers(0, c, m)]    # one-hot labels
    v = {"S": rng.standard_normal((m, c)), "Y": Y}
    check(d_L1, v)
    check(d_L2, v)
    '''),
    md(r'''
    ## Softmax cross-entropy by $W$ and $\mathbf{b}$: the general result

    Without knowing anything about $Y$, matcalc finds
    $\partial L/\partial S = \operatorname{softmax}(S)\odot\big((Y\mathbf{1})\mathbf{1}^T\big) - Y$: each row of
    the softmax is scaled by the corresponding row sum of $Y$. Through the dense layer this gives
    $X^T(\cdot)$ for $W$ and the column sums for $\mathbf{b}$. It holds for any $Y$, so the check uses
    positive targets whose rows do not sum to one.
    '''),
    code('''
    loss = "-sum(Y * log(softmax(X @ W + b, axis=1)))"
    g_W = matcalc.diff(loss, "W", shapes=dims)
    g_b = matcalc.diff(loss, "b", shapes=dims)
    print("W:", g_W.text)
    print("b:", g_b.text)
    display(g_W, g_b)
    '''),
    code('''
    v = {**values, "Y": rng.uniform(0.1, 1.0, (m, c))}
    check(g_W, v, shapes=dims)
    check(g_b, v, shapes=dims)
    '''),
    md(r'''
    ## ... and with rows of $Y$ summing to one

    Declaring `assume="rows_sum_to_one=Y"` (one-hot labels or probability targets) removes the
    factor: $\partial L/\partial W = X^T(\operatorname{softmax}(XW+\mathbf{b}) - Y)$ and
    $\partial L/\partial\mathbf{b}$ = the column sums of $\operatorname{softmax}(XW+\mathbf{b}) - Y$ —
    the note's "softmax of the scores, minus 1 at the label".
    '''),
    code('''
    h_W = matcalc.diff(loss, "W", shapes=dims, assume="rows_sum_to_one=Y")
    h_b = matcalc.diff(loss, "b", shapes=dims, assume="rows_sum_to_one=Y")
    print("W:", h_W.text)
    print("b:", h_b.text)
    display(h_W, h_b)
    '''),
    code('''
    v = {**values, "Y": np.eye(c)[rng.integers(0, c, m)]}     # one-hot rows
    check(h_W, v, shapes=dims)
    check(h_b, v, shapes=dims)

    # the assumption matters: for targets whose rows do not sum to one the short form is wrong
    v_bad = {**values, "Y": rng.uniform(0.1, 1.0, (m, c))}
    assert not np.allclose(h_W.evaluate(v_bad), derivative(loss, "W", v_bad), atol=1e-3)
    '''),
]

# --------------------------------------------------------------------------------------------
NOTEBOOKS["07_frobenius_XW_minus_Y"] = [
    md(r'''
    # 7. $\|XW - Y\|^2$ by $W$: entry by entry, then in matrix form

    The note *向量, 矩阵与张量梯度的理论推导* (“Deriving vector, matrix and tensor gradients”: $\|XW - Y\|^2$ entry by entry, then in matrix form) fits a fully connected layer without bias: $\tilde Y = XW$ with
    $X$: $B\times N$, $W$: $N\times M$, $Y$: $B\times M$, and the loss
    $L = \sum_{b,m}(\tilde y_{bm} - y_{bm})^2$. Following *Vector, Matrix, and Tensor Derivatives*,
    it first derives the scalar $\partial L/\partial w_{nm}$ with indices, then assembles the matrix
    $\partial L/\partial W = X^T\,2(\tilde Y - Y)$.
    '''),
    SETUP,
    code('''
    B, N, M = 5, 3, 2
    dims = {"X": ("B", "N"), "W": ("N", "M")}    # the note's dimension names; Y, Yhat follow (B×M)
    values = {"X": rng.standard_normal((B, N)), "W": rng.standard_normal((N, M)),
              "Y": rng.standard_normal((B, M))}
    X, W, Y = values["X"], values["W"], values["Y"]
    Yhat = X @ W
    '''),
    md(r'''
    ## First term: $\partial L/\partial\tilde Y = 2(\tilde Y - Y)$
    '''),
    code('''
    d_first = matcalc.diff("sum((Yhat - Y) ** 2)", "Yhat", shapes={"Y": ("B", "M")})
    print(d_first.text, d_first.variable_shapes)
    d_first
    '''),
    code('''
    v = {"Yhat": Yhat, "Y": Y}
    check(d_first, v)
    '''),
    md(r'''
    ## Second term: $\partial\tilde Y/\partial w_{nm}$

    $\tilde y_{ij} = \sum_k x_{ik}w_{kj}$, so $\partial\tilde y_{ij}/\partial w_{nm} = x_{in}$ if $j = m$
    and 0 otherwise: a $B\times M$ matrix whose only nonzero column, column $m$, is column $n$ of $X$.
    matcalc's full derivative of $XW$ by $W$ is $I_M\otimes X$; its slice `[:, :, n, m]` is that matrix.
    '''),
    code('''
    d_second = matcalc.diff("X @ W", "W", shapes=dims)
    print(d_second.text, d_second.shape, "   ", d_second.differential_text)
    d_second
    '''),
    code('''
    J = d_second.evaluate(values)             # J[i, j, n, m] = d yhat_ij / d w_nm
    check(d_second, values)
    for n in range(N):
        for m in range(M):
            expected = np.zeros((B, M))
            expected[:, m] = X[:, n]
            assert np.allclose(J[:, :, n, m], expected)
    print("slice n=1, m=0:")
    print(J[:, :, 1, 0].round(3) + 0.0)
    '''),
    md(r'''
    ## Entry by entry: $\partial L/\partial w_{nm} = 2\sum_i x_{in}(\tilde y_{im} - y_{im})$

    Combining the two terms (multiply entry-wise and sum) gives the note's index formula. Below, a
    loop computes each $\partial L/\partial w_{nm}$ by central finite differences of the loss, and
    the index formula is evaluated with explicit sums.
    '''),
    code('''
    loss = "sum((X @ W - Y) ** 2)"
    eps = 1e-6
    dL_fd = np.zeros((N, M))
    dL_index = np.zeros((N, M))
    for n in range(N):
        for m in range(M):
            E = np.zeros((N, M))
            E[n, m] = eps
            dL_fd[n, m] = (matcalc.evaluate(loss, {**values, "W": W + E})
                           - matcalc.evaluate(loss, {**values, "W": W - E})) / (2 * eps)
            dL_index[n, m] = 2 * sum(X[i, n] * (Yhat[i, m] - Y[i, m]) for i in range(B))
    assert np.allclose(dL_fd, dL_index, rtol=1e-6, atol=1e-7)
    print(dL_index.round(4))
    '''),
    md(r'''
    ## Matrix form: $\partial L/\partial W = 2X^T(XW - Y)$

    matcalc derives the matrix form directly; it agrees with the entry-by-entry results above.
    '''),
    code('''
    d = matcalc.diff(loss, "W", shapes=dims)
    print(d.text, d.variable_shapes)
    d
    '''),
    code('''
    check(d, values, shapes=dims, expected=dL_fd)
    assert np.allclose(d.evaluate(values), dL_index)
    '''),
    md(r'''
    ## The note's summary rule

    For $C = AB$ and a scalar $f(C)$: $\partial f/\partial B = A^T\,\partial f/\partial C$. This is the
    backprop rule of $AB$ by $B$, with upstream $G = \partial f/\partial C$ (compare notebook 4).
    '''),
    code('''
    d_rule = matcalc.vjp("A @ B", "B")
    print(d_rule.text, d_rule.variable_shapes)
    d_rule
    '''),
    code('''
    v = {"A": X, "B": W, "G": 2 * (Yhat - Y)}
    check(d_rule, v)
    assert np.allclose(d_rule.evaluate(v), dL_index)     # with G = dL/dYhat it is dL/dW again
    '''),
]


# --------------------------------------------------------------------------------------------
def tour(call: str, what: str) -> list:
    """The closing cells: one derivation step by step, its check, and its generated numpy code."""
    return [
        md(f'''
        ## Step by step, checked, and as code

        {what} `d.steps_latex` writes the derivation out rule by rule (each with its
        dimension check), `d.check()` compares the result with central finite differences (and, for
        a small problem, exactly with sympy), and `d.to_python()` is a standalone numpy function.
        '''),
        code(f'''
        d = {call}
        display(Math(d.steps_latex))
        '''),
        code('''
        result = d.check()
        assert result.ok, result
        print(result)
        print(d.to_python())
        '''),
    ]


TOURS = {
    "01_dot_products_and_Ax": ('matcalc.diff("a.T @ X @ b", "X")', "The bilinear form $a^T X b$ by $X$:"),
    "02_jacobian_layouts": ('matcalc.diff("exp(A @ x)", "x")', "The Jacobian of $\\exp(A x)$:"),
    "03_elementwise_diagonal_jacobians": ('matcalc.diff("sum(exp(u) * v)", "u")',
                                          "An element-wise product inside a sum:"),
    "04_backprop_Y_equals_WX": ('matcalc.vjp("tanh(W @ X)", "W")',
                                "The backprop rule of a layer $\\tanh(WX)$:"),
    "05_linear_regression": ('matcalc.diff("sum((X @ w - y) ** 2)", "w")', "The least-squares gradient:"),
    "06_dense_layer_softmax_cross_entropy": (
        'matcalc.diff("-y.T @ log(softmax(W @ x))", "W", assume="sums_to_one=y")',
        "One sample's cross-entropy, with a target `y` whose entries sum to one (`sums_to_one=y`):"),
    "07_frobenius_XW_minus_Y": ('matcalc.diff("sum((X @ W - Y) ** 2)", "W")', "The note's loss by $W$:"),
}
for _name, (_call, _what) in TOURS.items():
    NOTEBOOKS[_name] = NOTEBOOKS[_name] + tour(_call, _what)

NOTEBOOKS["06_dense_layer_softmax_cross_entropy"] += [
    md(r'''
    ## Every gradient of the layer at once

    `matcalc.grad` gives the gradients by several variables from one reverse sweep: one block in
    which the pieces they share are named once, a dict from `evaluate`, and one generated function
    returning all of them (each shared piece computed once).
    '''),
    code('''
    g = matcalc.grad(loss, "W,b", shapes=dims, assume="rows_sum_to_one=Y")
    display(Math(g.latex))
    v = {**values, "Y": np.eye(c)[rng.integers(0, c, m)]}
    assert g.check().ok
    got = g.evaluate(v)
    assert np.allclose(got["W"], h_W.evaluate(v)) and np.allclose(got["b"], h_b.evaluate(v))
    print(g.to_python())
    '''),
]


def build(name: str, cells: list) -> nbformat.NotebookNode:
    nb = new_notebook(cells=[nbformat.from_dict(dict(c)) for c in cells])
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{name[:2]}-{i:02d}"
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    return nb


def kernel_manager(spec_root: str):
    """A kernel manager whose `python3` kernel is this interpreter (sys.executable), whatever
    other `python3` kernel specs are installed for the user or the system."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    spec_dir = Path(spec_root) / "python3"
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)", "language": "python"}))
    return AsyncKernelManager(kernel_name="python3",
                              kernel_spec_manager=KernelSpecManager(kernel_dirs=[spec_root]))


def _coalesce_streams(outputs: list) -> list:
    """Merge consecutive stdout (stderr) chunks: how the kernel splits a stream varies by run."""
    merged: list = []
    for out in outputs:
        if (out.output_type == "stream" and merged and merged[-1].output_type == "stream"
                and merged[-1].name == out.name):
            merged[-1].text += out.text
        else:
            merged.append(out)
    return merged


def execute(path: Path) -> float:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as spec_root:
        NotebookClient(nb, km=kernel_manager(spec_root), kernel_name="python3", timeout=120,
                       record_timing=False, resources={"metadata": {"path": str(path.parent)}}).execute()
    elapsed = time.perf_counter() - start
    for cell in nb.cells:                                  # one output per stream, as Jupyter shows it
        if cell.cell_type == "code":
            cell.outputs = _coalesce_streams(cell.outputs)
    nb.metadata["language_info"] = {"name": "python"}     # keep the files free of version noise
    nbformat.write(nb, path)
    return elapsed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("only", nargs="*", help="build only notebooks whose names start with these")
    ap.add_argument("--no-execute", action="store_true", help="write the notebooks without outputs")
    args = ap.parse_args(argv)
    for name, cells in NOTEBOOKS.items():
        if args.only and not any(name.startswith(o) for o in args.only):
            continue
        path = NB_DIR / f"{name}.ipynb"
        nb = build(name, cells)
        nbformat.validate(nb)
        nbformat.write(nb, path)
        if args.no_execute:
            print(f"wrote    {path.name}")
        else:
            print(f"executed {path.name} in {execute(path):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
