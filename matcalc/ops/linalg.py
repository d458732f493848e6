"""Linear-algebra operators, one declaration each: trace, determinant, log-determinant, inverse,
norm, diag (vector → matrix and matrix → vector), vec and the Kronecker product."""
from __future__ import annotations

import numpy as np

from ..errors import MatcalcError
from ..render import PREC_ATOM, PREC_MUL, PREC_NEG, PREC_POST
from ..simplify import (T, add, det, diag, div, eye, inv, kron, logdet, matmul, mul, neg, norm, ones,
                        sum_, tr, vec)
from .registry import defop, defsyntax


def _linalg(fn, name):
    def run(x):
        try:
            return fn(x)
        except np.linalg.LinAlgError as e:
            raise MatcalcError(f"{name}: {e}") from None
    return run


def _sp_vec(ctx, n, a):
    m = a[0]
    return ctx.sp.Matrix([m[i, j] for j in range(m.shape[1]) for i in range(m.shape[0])])


def _sp_kron(ctx, n, a):
    x, y = (ctx.mat(z, w.shape, w.shape) for z, w in zip(a, n.args))
    return ctx.sp.kronecker_product(x, y)


def _code_kron(g, n):
    a, b = (g.as2d(y) for y in n.args)
    out = (f"torch.kron(({a}).contiguous(), ({b}).contiguous())" if g.backend == "torch"
           else f"{g.b['ns']}.kron({a}, {b})")
    return out if len(n.shape) == 2 and n.shape[0] != 1 else f"{out}.reshape(-1)"  # a row is 1-D here


def _kron_jvp(n, ds):
    a, b = n.args
    return add(*([kron(ds[0], b)] if ds[0] is not None else []) + ([kron(a, ds[1])] if ds[1] is not None else []))


def _index_tr(p, n, idx):
    k = p.fresh()
    return rf"\sum_{{{k}}} {p.entry(n.args[0], (k, k))}"


SQ = {"A": ("n", "n")}
KRON_NO_VJP = "the adjoint of a Kronecker factor needs a reshape (unvec) the language lacks"

defop("tr", build=lambda n, a: tr(a[0]), linear=True, vjp=lambda g, n, i: mul(g, eye(n.args[0].shape[0])),
      vec_jac=lambda n, J, key: matmul(T(vec(eye(n.args[0].shape[0]))), J(n.args[0])),
      np=lambda n, a, d: np.trace(a[0]), sp=lambda ctx, n, a: a[0].trace(), code="{ns}.trace({0})",
      latex=r"\operatorname{tr}", index=_index_tr, sample=("tr(A)", SQ, ["A"]),
      step=("trace rule", r"\mathrm{d}\operatorname{tr}(A) = \operatorname{tr}(\mathrm{d}A)"))
defop("det", build=lambda n, a: det(a[0]), vjp=lambda g, n, i: mul(g, n, T(inv(n.args[0]))),
      jvp=lambda n, ds: mul(n, tr(matmul(inv(n.args[0]), ds[0]))),
      np=lambda n, a, d: np.linalg.det(a[0]), sp=lambda ctx, n, a: a[0].det(), code="{ns}.linalg.det({0})",
      latex=r"\det", domain="invertible", sample=("det(A)", SQ, ["A"]),
      step=("determinant rule", r"\mathrm{d}\det A = \det A \operatorname{tr}(A^{-1}\mathrm{d}A)"))
defop("logdet", build=lambda n, a: logdet(a[0]), vjp=lambda g, n, i: mul(g, T(inv(n.args[0]))), jvp=lambda n, ds: tr(matmul(inv(n.args[0]), ds[0])),
      np=lambda n, a, d: np.linalg.slogdet(a[0])[1], sp=lambda ctx, n, a: ctx.sp.log(ctx.sp.Abs(a[0].det())),
      code="{ns}.linalg.slogdet({0})[1]", latex=r"\log\det", domain="invertible", sample=("logdet(A)", SQ, ["A"]),
      step=("log-determinant rule", r"\mathrm{d}\log\det A = \operatorname{tr}(A^{-1}\mathrm{d}A)"))
defop("inv", build=lambda n, a: inv(a[0]), vjp=lambda g, n, i: neg(matmul(T(n), g, T(n))),
      jvp=lambda n, ds: neg(matmul(n, ds[0], n)),
      np=lambda n, a, d: _linalg(np.linalg.inv, "inv")(a[0]), sp=lambda ctx, n, a: a[0].inv(),
      code="{ns}.linalg.inv({0})", domain="invertible", sample=("inv(A)", SQ, ["A"]),
      latex=lambda p, n: (f"{p.at(n.args[0], PREC_ATOM)}^{{-1}}", PREC_POST),
      unicode=lambda p, n: (f"{p.at(n.args[0], PREC_ATOM)}⁻¹", PREC_POST),
      step=("inverse rule", r"\mathrm{d}(A^{-1}) = -A^{-1}\,\mathrm{d}A\,A^{-1}"))
defop("norm", build=lambda n, a: norm(a[0]), vjp=lambda g, n, i: mul(g, div(n.args[0], n)), jvp=lambda n, ds: div(sum_(mul(n.args[0], ds[0])), n),
      np=lambda n, a, d: np.linalg.norm(a[0]), sp=lambda ctx, n, a: ctx.sp.sqrt(sum(x ** 2 for x in a[0])),
      code="{ns}.linalg.norm({0})", latex=r"\left\|{0}\right\|", unicode="‖{0}‖", domain="positive",
      sample=("norm(X)", {"X": ("m", "n")}, ["X"]),
      step=("norm rule", r"\mathrm{d}\|A\| = \langle A, \mathrm{d}A\rangle / \|A\|"))
defop("diag", build=lambda n, a: diag(a[0]), vjp=lambda g, n, i: diag(g),
      jvp=lambda n, ds: mul(eye(n.shape[0]), ds[0]),  # diag(dx) = I ⊙ (1 dxᵀ)
      np=lambda n, a, d: np.diag(np.ravel(a[0])), sp=lambda ctx, n, a: ctx.sp.diag(*list(a[0])),
      code="{ns}.diag({0})", latex=r"\operatorname{diag}", sample=("diag(x)", {"x": ("n",)}, ["x"]),
      index=lambda p, n, idx: rf"\delta_{{{''.join(idx)}}} {p.entry(n.args[0], idx[:1])}",
      step=("diag is linear", r"\mathrm{d}\operatorname{diag}(x) = \operatorname{diag}(\mathrm{d}x)"))
defop("diagv", call="diag", build=lambda n, a: diag(a[0]), vjp=lambda g, n, i: diag(g),
      jvp=lambda n, ds: sum_(mul(eye(n.shape[0]), ds[0]), 1),  # the diagonal of dX
      np=lambda n, a, d: np.diag(a[0]).copy(),
      sp=lambda ctx, n, a: ctx.sp.Matrix([a[0][i, i] for i in range(a[0].shape[0])]),
      code="{ns}.diag({0})", latex=r"\operatorname{diag}", sample=("diag(A)", SQ, ["A"]),
      index=lambda p, n, idx: p.entry(n.args[0], (idx[0], idx[0])),
      step=("diag is linear", r"\mathrm{d}\operatorname{diag}(X) = \operatorname{diag}(\mathrm{d}X)"))
defop("vec", build=lambda n, a: vec(a[0]), linear=True, vjp=lambda g, n, i: _unvec(g, n.args[0]),
      vec_jac=lambda n, J, key: J(n.args[0]),
      np=lambda n, a, d: np.asarray(a[0]).reshape(-1, order="F"), sp=_sp_vec,
      code=lambda g, n: g.f("vec", x=g.c(n.args[0])), latex=r"\operatorname{vec}",
      sample=("vec(X)", {"X": ("m", "n")}, ["X"]),
      step=("vec is linear", r"\mathrm{d}\operatorname{vec}(X) = \operatorname{vec}(\mathrm{d}X)"))
defop("kron", arity=2, build=lambda n, a: kron(*a), no_vjp=KRON_NO_VJP, jvp=_kron_jvp,
      np=lambda n, a, d: np.kron(_col(a[0]), _col(a[1])), sp=_sp_kron, code=_code_kron,
      latex=lambda p, n: (" \\otimes ".join(p.at(a, PREC_NEG) for a in n.args), PREC_MUL),
      unicode=lambda p, n: (" ⊗ ".join(p.at(a, PREC_NEG) for a in n.args), PREC_MUL),
      sample=("kron(A, B)", {"A": ("m", "n"), "B": ("p", "q")}, []),
      step=("Kronecker product rule", r"\mathrm{d}(A \otimes B) = \mathrm{d}A \otimes B + A \otimes \mathrm{d}B"))


def _unvec(g, x):
    """The adjoint of vec: g (length m·n) laid back out as x's m×n matrix, column by column:
    unvec(g) = Σⱼ (eⱼᵀ ⊗ I_m) g eⱼᵀ written as (1ᵀ_n ⊗ I_m)(diag(g)) (I_n ⊗ 1_m)."""
    if len(x.shape) < 2:
        return g
    m, n = x.shape
    return matmul(kron(T(ones((n,))), eye(m)), diag(g), kron(eye(n), ones((m,))))


def _col(x):
    x = np.asarray(x, dtype=float)
    return x.reshape(-1, 1) if x.ndim == 1 else x.reshape(1, 1) if x.ndim == 0 else x


def _build_norm(b, r, args):
    if len(args) == 2:
        return sum_(_abs(args[0])) if r.args[1].attr == 1 else norm(args[0])
    return norm(args[0])


def _abs(x):
    from ..simplify import fn
    return fn("abs", x)


defsyntax("tr", op="tr", build=lambda b, r, a: tr(a[0]))
defsyntax("det", op="det", build=lambda b, r, a: det(a[0]))
defsyntax("logdet", op="logdet", build=lambda b, r, a: logdet(a[0]))
defsyntax("inv", op="inv", build=lambda b, r, a: inv(a[0]))
defsyntax("norm", args=(1, 2), op="norm", build=_build_norm, sample=("norm(x, 1)", {"x": ("n",)}, ["x"]))
defsyntax("dot", args=(2, 2), op="matmul", build=lambda b, r, a: matmul(T(a[0]), a[1]),
          sample=("dot(x, y)", {"x": ("n",), "y": ("n",)}, ["x", "y"]))
defsyntax("diag", op="diag", build=lambda b, r, a: diag(a[0]))
defsyntax("vec", op="vec", build=lambda b, r, a: vec(a[0]))
defsyntax("kron", args=(2, 2), op="kron", build=lambda b, r, a: kron(*a))
