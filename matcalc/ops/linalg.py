"""Linear-algebra operators, one declaration each: trace, determinant, log-determinant, inverse,
norm, diag (vector → matrix and matrix → vector), vec and the Kronecker product."""
from __future__ import annotations

from .lazy_numpy import np

from ..errors import MatcalcError
from ..render import PREC_ATOM, PREC_MUL, PREC_NEG, PREC_POST
from ..errors import InternalError
from ..expr import as_2d, numel as shape_numel
from ..simplify import (T, add, commutation, const, det, diag, div, eye, inv, kron, logdet, matmul, mul, neg,
                        norm, ones, sum_, tr, unvec, vec)
from .registry import defop, defsyntax
from ..adjugate import adjugate as _adjugate
from ..expr import make


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
defop("adj", core=True, build=lambda n, a: make("adj", tuple(a), None, n.shape),
      no_vjp="the numeric form of det(A) A⁻¹ (matcalc.adjugate): evaluated, never differentiated",
      no_jvp="the numeric form of det(A) A⁻¹ (matcalc.adjugate): evaluated, never differentiated",
      np=lambda n, a, d: _adjugate(a[0]), sp=lambda ctx, n, a: a[0].adjugate(), code="_adjugate({0})")
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
defop("vec", build=lambda n, a: vec(a[0]), linear=True, vjp=lambda g, n, i: unvec(g, *as_2d(n.args[0].shape)),
      vec_jac=lambda n, J, key: J(n.args[0]),
      np=lambda n, a, d: np.asarray(a[0]).reshape(-1, order="F"), sp=_sp_vec,
      code=lambda g, n: g.f("vec", x=g.c(n.args[0])), latex=r"\operatorname{vec}",
      sample=("vec(X)", {"X": ("m", "n")}, ["X"]),
      step=("vec is linear", r"\mathrm{d}\operatorname{vec}(X) = \operatorname{vec}(\mathrm{d}X)"))
defop("kron", arity=2, build=lambda n, a: kron(*a), vjp=lambda g, n, i: _kron_vjp(g, n, i), jvp=_kron_jvp,
      vec_jac=lambda n, J, key: _kron_vec_jac(n, J, key),
      np=lambda n, a, d: np.kron(_col(a[0]), _col(a[1])), sp=_sp_kron, code=_code_kron,
      latex=lambda p, n: (" \\otimes ".join(p.at(a, PREC_NEG) for a in n.args), PREC_MUL),
      unicode=lambda p, n: (" ⊗ ".join(p.at(a, PREC_NEG) for a in n.args), PREC_MUL),
      sample=("kron(A, B)", {"A": ("m", "n"), "B": ("p", "q")}, ["A", "B"]),
      step=("Kronecker product rule", r"\mathrm{d}(A \otimes B) = \mathrm{d}A \otimes B + A \otimes \mathrm{d}B"))


def _ones_col(k):
    """1_k as a column (the number 1 when k is 1)."""
    return const(1) if k == 1 else ones((k,))


def _kron_vjp(g, n, i):
    """A (p×q) ⊗ B (r×s) with adjoint G (pr×qs), blocks G_ij (r×s):
    ∂/∂A_ij = ⟨G_ij, B⟩ = [(I_p ⊗ 1_r)ᵀ (G ⊙ (1 1ᵀ ⊗ B)) (I_q ⊗ 1_s)]_ij and
    ∂/∂B = Σ A_ij G_ij = (1_pᵀ ⊗ I_r) (G ⊙ (A ⊗ 1 1ᵀ)) (1_q ⊗ I_s)."""
    a, b = n.args
    (p, q), (r, s) = as_2d(a.shape), as_2d(b.shape)
    if i == 0:
        w = mul(g, kron(ones(a.shape), b))
        return matmul(T(kron(eye(p), _ones_col(r))), w, kron(eye(q), _ones_col(s)))
    w = mul(g, kron(a, ones(b.shape)))
    return matmul(kron(T(_ones_col(p)), eye(r)), w, kron(_ones_col(q), eye(s)))


def _kron_vec_jac(e, J, key):
    """vec(A ⊗ B) = (I_q ⊗ K(s, p) ⊗ I_r)(vec A ⊗ vec B) for A p×q, B r×s, and
    vec A ⊗ vec B = (I_pq ⊗ vec B) vec A = (vec A ⊗ I_rs) vec B."""
    a, b = e.args
    if key in a.vars and key in b.vars:
        raise InternalError("internal error: the differential is not linear")
    (p, q), (r, s) = as_2d(a.shape), as_2d(b.shape)
    perm = kron(kron(eye(q), commutation(s, p)), eye(r))
    if key in a.vars:
        return matmul(perm, kron(eye(shape_numel(a.shape)), vec(b)), J(a))
    return matmul(perm, kron(vec(a), eye(shape_numel(b.shape))), J(b))


def _sp_unvec(ctx, n, a):
    rows, cols = ctx.size(n.attr[0]), ctx.size(n.attr[1])
    v = ctx.sp.Matrix(rows, cols, lambda i, j, x=a[0]: x[j * rows + i])
    v = v.T if rows == 1 and cols != 1 else v
    return ctx.out(v, n.shape)


def _code_unvec(g, n):
    if g.backend == "torch":
        g.helper("_freshape")
    out = g.f("freshape", x=g.c(n.args[0]), dims=g.dims(n.attr))
    return out if len(n.shape) == 2 and n.shape[0] != 1 else f"{out}.reshape(-1)"


defop("unvec", build=lambda n, a: unvec(a[0], *n.attr), linear=True, vjp=lambda g, n, i: vec(g),
      vec_jac=lambda n, J, key: J(n.args[0]),
      np=lambda n, a, d: np.asarray(a[0]).reshape((d(n.attr[0]), d(n.attr[1])), order="F"), sp=_sp_unvec,
      code=_code_unvec, text=lambda p, n: (f"unvec({p.render(n.args[0])[0]}, {p.dim(n.attr[0])}, "
                                           f"{p.dim(n.attr[1])})", PREC_ATOM),
      latex=lambda p, n: p._fcall(f"\\operatorname{{unvec}}_{{{p.dim(n.attr[0])} \\times {p.dim(n.attr[1])}}}",
                                  n.args[0]),
      sample=("unvec(v, 2, 3)", {"v": (6,)}, ["v"]),
      step=("unvec is linear", r"\mathrm{d}\operatorname{unvec}(v) = \operatorname{unvec}(\mathrm{d}v)"))


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
defsyntax("unvec", args=(3, 3), dims=True, op="unvec",
          build=lambda b, r, a: unvec(a[0], *(b.t.final_dim(d) for d in r.dims)))
