"""Reductions and their kin, one declaration each: sums, softmax, log-sum-exp, the largest and
smallest entry, and the element-wise maximum and minimum of two arrays."""
from __future__ import annotations

import math

from .lazy_numpy import np

from ..expr import broadcast_shape, make
from ..render import PREC_ATOM
from ..simplify import (T, _fail, add, bcast, const, constant_value, div, filled, fn as F, kron, logsumexp, matmul,
                        mul, numel, ones, softmax, sub, sum_, unbroadcast, vec, eye)
from ..expr import numel as shape_numel
from .registry import defop, defsyntax

ONE = const(1)
V, M = {"x": ("n",)}, {"X": ("m", "n")}


def _rows_bcast(v, ncols):
    """v (length m) repeated across ncols columns: v 1ᵀ."""
    return matmul(v, T(ones((ncols,))))


# ---- sum
def _sum_vjp(g, n, i):
    x, axis = n.args[0], n.attr
    if axis == 1:
        return _rows_bcast(g, x.shape[1])   # row sums: g repeated across the columns
    return bcast(g, x.shape)                # all entries, or column sums: g repeated down the rows


def _sum_vec_jac(e, J, key):
    x = e.args[0]
    if e.attr is None:
        return matmul(T(vec(ones(x.shape))), J(x))
    m, n = x.shape
    if e.attr == 0:
        return matmul(kron(eye(n), T(ones((m,)))), J(x))
    return matmul(kron(T(ones((n,))), eye(m)), J(x))


def _sum_latex(p, n):
    from ..render import PREC_MUL, PREC_NEG
    a = n.args[0]
    if n.attr is None:
        return f"\\sum {p.at(a, PREC_ATOM)}", PREC_MUL
    m, k = a.shape
    if n.attr == 0:
        return f"{p.at(a, PREC_ATOM)}^{{T}} \\mathbf{{1}}_{{{p.dim(m)}}}", PREC_MUL
    return f"{p.at(a, PREC_NEG)} \\mathbf{{1}}_{{{p.dim(k)}}}", PREC_MUL


def _sum_index(p, n, idx):
    a = n.args[0]
    if len(a.shape) == 1:
        k = p.fresh()
        return rf"\sum_{{{k}}} {p.entry(a, (k,))}"
    if n.attr is None:
        k, q = p.fresh(), p.fresh()
        return rf"\sum_{{{k},{q}}} {p.entry(a, (k, q))}"
    k = p.fresh()
    return rf"\sum_{{{k}}} {p.entry(a, (k, idx[0]) if n.attr == 0 else (idx[0], k))}"


def _sp_sum(ctx, n, a):
    m = ctx.mat(a[0], n.args[0].shape, n.args[0].shape)
    if n.attr is None:
        return sum(m)
    if n.attr == 0:
        sums = [sum(m[:, j]) for j in range(m.shape[1])]
        return ctx.sp.Matrix([sums]) if _keeps(n) else ctx.sp.Matrix(sums)  # keepdims: a 1×n row
    return ctx.sp.Matrix([sum(m[i, :]) for i in range(m.shape[0])])


def _sum_code(g, n):
    x = g.code[id(n.args[0])]
    if len(n.shape) == 2:  # the sums kept as an m×1 column (1×n rows are 1-D in generated code)
        return g.f("sum_keep", x=x, axis=n.attr)
    return g.f("sum", x=x) if n.attr is None else g.f("sum_axis", x=x, axis=n.attr)


def _sum_text(p, n):
    keep = ", keepdims=True" if len(n.shape) == 2 else ""
    axis = "" if n.attr is None else f", axis={n.attr}"
    return f"sum({p.render(n.args[0])[0]}{axis}{keep})", PREC_ATOM


def _keeps(n) -> bool:
    """A sum with keepdims=True: its result is m×1 (or 1×n)."""
    return len(n.shape) == 2


defop("sum", build=lambda n, a: sum_(a[0], n.attr, keepdims=_keeps(n)), linear=True, vjp=_sum_vjp,
      vec_jac=_sum_vec_jac, np=lambda n, a, d: np.sum(a[0], axis=n.attr, keepdims=_keeps(n)), sp=_sp_sum,
      code=_sum_code, text=_sum_text, latex=_sum_latex, index=_sum_index, sample=("sum(X, axis=1)", M, ["X"]),
      step=("linearity of the sum", r"\mathrm{d}\,\mathrm{sum}(A) = \mathrm{sum}(\mathrm{d}A)"))


# ---- softmax and log-sum-exp
def _softmax_vjp(g, n, i):
    s, axis = n, n.attr
    if axis is None:
        return mul(s, sub(g, matmul(T(s), g)))
    if axis == 1:
        return mul(s, sub(g, _rows_bcast(sum_(mul(s, g), 1), s.shape[1])))
    return mul(s, sub(g, sum_(mul(s, g), 0)))


def _softmax_jvp(n, ds):
    s, axis, d = n, n.attr, ds[0]
    if axis is None:  # s ⊙ dx − s (sᵀdx): its Jacobian is diag(s) − s sᵀ
        return sub(mul(s, d), mul(s, matmul(T(s), d)))
    return _softmax_vjp(d, n, 0)  # the Jacobian of a softmax per row or column is symmetric


def _logsumexp_vjp(g, n, i):
    s = softmax(n.args[0], n.attr)
    return mul(s, _rows_bcast(g, s.shape[1])) if n.attr == 1 else mul(s, g)


def _logsumexp_jvp(n, ds):
    s = softmax(n.args[0], n.attr)
    return matmul(T(s), ds[0]) if n.attr is None else sum_(mul(s, ds[0]), n.attr)


def _np_softmax(x, axis=None):
    z = x - (x.max() if axis is None else x.max(axis=axis, keepdims=True))
    e = np.exp(z)
    return e / (e.sum() if axis is None else e.sum(axis=axis, keepdims=True))


def _np_logsumexp(x, axis=None):
    m = x.max() if axis is None else x.max(axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=axis is not None)) + m
    return out if axis is None else out.reshape(-1)


def _sp_softmax(ctx, n, a):
    e, sp = a[0].applyfunc(ctx.sp.exp), ctx.sp
    if n.attr is None:
        return e / sum(e) if n.op == "softmax" else sp.log(sum(e))
    if n.attr == 1:
        rows = [e[i, :] for i in range(e.shape[0])]
        return sp.Matrix.vstack(*[r / sum(r) for r in rows]) if n.op == "softmax" else sp.Matrix([sp.log(sum(r)) for r in rows])
    cols = [e[:, j] for j in range(e.shape[1])]
    return sp.Matrix.hstack(*[c / sum(c) for c in cols]) if n.op == "softmax" else sp.Matrix([sp.log(sum(c)) for c in cols])


def _axis_latex(name):
    return lambda p, n: p._fcall(name + ("" if n.attr is None else f"_{{{n.attr}}}"), n.args[0])


defop("softmax", bounds=(0.0, 1.0), build=lambda n, a: softmax(a[0], n.attr), vjp=_softmax_vjp, jvp=_softmax_jvp,
      np=lambda n, a, d: _np_softmax(a[0], n.attr), sp=_sp_softmax,
      code=lambda g, n: f"{g.helper('_softmax')}({g.code[id(n.args[0])]}, axis={n.attr})",
      latex=_axis_latex(r"\operatorname{softmax}"), sample=("softmax(X, axis=1)", M, ["X"]),
      step=("softmax rule", r"\mathrm{d}s = s \odot \mathrm{d}z - s\,(s^{T}\mathrm{d}z)"))
defop("logsumexp", build=lambda n, a: logsumexp(a[0], n.attr), vjp=_logsumexp_vjp, jvp=_logsumexp_jvp,
      np=lambda n, a, d: _np_logsumexp(a[0], n.attr), sp=_sp_softmax,
      code=lambda g, n: f"{g.helper('_logsumexp')}({g.code[id(n.args[0])]}, axis={n.attr})",
      latex=_axis_latex(r"\operatorname{logsumexp}"), sample=("logsumexp(X, axis=0)", M, ["X"]),
      step=("log-sum-exp rule", r"\mathrm{d}\operatorname{lse}(z) = \operatorname{softmax}(z)^{T}\mathrm{d}z"))


def log_softmax(z, axis=None):
    """log softmax(z) in its one canonical form z − logsumexp(z) (per row or column with an axis)."""
    lse = logsumexp(z, axis)
    if axis == 1:
        return sub(z, matmul(lse, T(ones((z.shape[1],)))))
    return sub(z, lse)


# ---- the largest and smallest entry: the gradient is the mask of the arg-max, shared at ties
def _extreme(kind: str, x):
    if x.shape == ():
        return x
    if x.op == kind:
        return x
    return make(kind, (x,), None, ())


def _mask(n):
    """1 where an entry of X attains max(X) (min(X)), else 0; divided by the count of such entries."""
    x = n.args[0]
    gap = sub(n, x) if n.op == "max" else sub(x, n)   # ≥ 0, zero exactly at the extreme entries
    hit = sub(ONE, F("step", gap))
    return div(hit, sum_(hit))


def _sp_extreme(ctx, n, a):
    ents = list(a[0]) if isinstance(a[0], ctx.sp.MatrixBase) else [a[0]]
    return ctx.sp.Max(*ents) if n.op == "max" else ctx.sp.Min(*ents)


for _k, _np in (("max", np.max), ("min", np.min)):
    defop(_k, build=lambda n, a, k=_k: _extreme(k, a[0]), vjp=lambda g, n, i: mul(g, _mask(n)),
          jvp=lambda n, ds: sum_(mul(_mask(n), ds[0])), np=lambda n, a, d, f=_np: f(a[0]), sp=_sp_extreme,
          code="{ns}." + _k + "({0})", latex="\\" + _k,
          sample=(f"{_k}(X)", M, ["X"]),
          step=(f"{_k} rule (the mask of the arg-{_k}, shared at ties)",
                rf"\mathrm{{d}}\{_k}(X) = \langle M, \mathrm{{d}}X\rangle,\ M = 1[X = \{_k} X] / \#"))


# ---- element-wise maximum and minimum: at a tie the derivative goes to the first argument
def _pair(kind: str, a, b):
    shape = broadcast_shape(a.shape, b.shape)
    if shape is None:
        _fail(kind, a, b)
    u, v = constant_value(a), constant_value(b)
    if u is not None and v is not None:  # numpy's maximum and minimum keep a nan
        return filled(math.nan if u != u or v != v else max(u, v) if kind == "maximum" else min(u, v), shape)
    if a is b:
        return a
    return make(kind, (a, b), None, shape)


def _masks(n):
    """(where the first argument is the result, ties included; where the second is), as 0/1
    arrays of n's shape: 1 − step(b − a) and step(b − a) for maximum."""
    a, b = n.args
    behind = sub(b, a) if n.op == "maximum" else sub(a, b)   # > 0 exactly where b wins
    second = bcast(F("step", behind), n.shape)
    return bcast(sub(ONE, F("step", behind)), n.shape), second


def _pair_vjp(g, n, i):
    return unbroadcast(mul(g, _masks(n)[i]), n.args[i].shape)


def _pair_jvp(n, ds):
    m = _masks(n)
    return bcast(add(*[mul(m[i], d) for i, d in enumerate(ds) if d is not None]), n.shape)


def _sp_pair(ctx, n, a):
    x, y = (ctx.mat(v, w.shape, n.shape) for v, w in zip(a, n.args))
    f = ctx.sp.Max if n.op == "maximum" else ctx.sp.Min
    return ctx.out(ctx.sp.Matrix(x.shape[0], x.shape[1], lambda i, j: f(x[i, j], y[i, j])), n.shape)


def _torch_pair(name):
    t = "torch.as_tensor({}, dtype=torch.float64)"
    return f"torch.{name}({t.format('{0}')}, {t.format('{1}')})"


for _k in ("maximum", "minimum"):
    defop(_k, arity=2, build=lambda n, a, k=_k: _pair(k, *a), vjp=_pair_vjp, jvp=_pair_jvp,
          np=lambda n, a, d, f=getattr(np, _k): f(a[0], a[1]), sp=_sp_pair,
          code={"numpy": "np." + _k + "({0}, {1})", "jax": "jnp." + _k + "({0}, {1})", "torch": _torch_pair(_k)},
          latex="\\" + _k[:3], step=(
              f"{_k} rule (a mask; at a tie the first argument)",
              r"\mathrm{d}\max(A, B) = 1[A \ge B] \odot \mathrm{d}A + 1[A < B] \odot \mathrm{d}B"),
          sample=(f"{_k}(X, Y)", {"X": ("m", "n"), "Y": ("m", "n")}, ["X", "Y"]))


def _mean(b, r, a):
    x = a[0]
    count = shape_numel(x.shape) if r.axis is None or len(x.shape) < 2 else x.shape[r.axis]
    return div(sum_(x, r.axis, r.keepdims), numel(count))


defsyntax("sum", axis=True, keepdims=True, op="sum", build=lambda b, r, a: sum_(a[0], r.axis, r.keepdims),
          sample=("sum(X, axis=1, keepdims=True)", M, ["X"]))
defsyntax("mean", axis=True, keepdims=True, op="sum", build=_mean, sample=("mean(X, axis=1, keepdims=True)", M, ["X"]))
for _k in ("len", "rows", "cols"):  # a dimension as a scalar value; the typer's c_len reads it off
    defsyntax(_k, op="numel", build=lambda b, r, a: numel(b.t.final_dim(r.dims[0])),
              sample=(f"{_k}(X) * sum(X)" if _k != "len" else "len(x) * sum(x)", V if _k == "len" else M,
                      ["x" if _k == "len" else "X"]))
defsyntax("softmax", axis=True, op="softmax", build=lambda b, r, a: softmax(a[0], r.axis))
defsyntax("logsumexp", axis=True, op="logsumexp", build=lambda b, r, a: logsumexp(a[0], r.axis))
defsyntax("log_softmax", axis=True, op="logsumexp", build=lambda b, r, a: log_softmax(a[0], r.axis),
          shape=lambda t, r, s: t.c_softmax(r, s), sample=("log_softmax(X, axis=1)", M, ["X"]))
defsyntax("max", op="max", build=lambda b, r, a: _extreme("max", a[0]), shape=lambda t, r, s: ())
defsyntax("min", op="min", build=lambda b, r, a: _extreme("min", a[0]), shape=lambda t, r, s: ())
defsyntax("maximum", args=(2, 2), op="maximum", build=lambda b, r, a: _pair("maximum", *a),
          shape=lambda t, r, s: t.broadcast(r, s, "maximum"), sample=("sum(maximum(0.3, 1 - x))", V, ["x"]))
defsyntax("minimum", args=(2, 2), op="minimum", build=lambda b, r, a: _pair("minimum", *a),
          shape=lambda t, r, s: t.broadcast(r, s, "minimum"), sample=("minimum(x, 0.5)", V, ["x"]))
