"""The derivative rules: one entry per operator, in three tables.

- `DERIV[f](x)`: f'(x) of an element-wise function (its Jacobian is `diag(f'(x))`).
- `VJP[op](g, n, i)`: reverse mode. `g` is the adjoint of node `n` (same shape as `n`); the
  result is the adjoint contribution to its argument `i` — the differential form
  `df = tr(gᵀ dn)` rewritten as `tr(contributionᵀ d argᵢ)`.
- `JVP[op](n, ds)`: forward mode. `ds[i]` is the differential of argument `i` (None: zero);
  the result is `dn`, e.g. `d(AB) = dA B + A dB`.
"""
from __future__ import annotations

from .expr import as_2d
from .simplify import (T, add, bcast, const, det, diag, div, eye, fn, inv, kron, logdet, matmul,
                       mul, neg, norm, ones, pow_, softmax, sub, sum_, tr, unbroadcast, unvec, vec)

ONE, TWO, HALF = const(1), const(2), const(0.5)

DERIV = {
    "exp":      lambda x: fn("exp", x),
    "log":      lambda x: pow_(x, const(-1)),
    "sin":      lambda x: fn("cos", x),
    "cos":      lambda x: neg(fn("sin", x)),
    "tan":      lambda x: add(ONE, pow_(fn("tan", x), TWO)),
    "tanh":     lambda x: sub(ONE, pow_(fn("tanh", x), TWO)),
    "sigmoid":  lambda x: mul(fn("sigmoid", x), sub(ONE, fn("sigmoid", x))),
    "relu":     lambda x: fn("step", x),
    "abs":      lambda x: fn("sign", x),
    "sqrt":     lambda x: div(HALF, fn("sqrt", x)),
    "softplus": lambda x: fn("sigmoid", x),
    "sign":     lambda x: mul(const(0), x),
    "step":     lambda x: mul(const(0), x),
}


def _others(n, i):
    return [a for j, a in enumerate(n.args) if j != i]


def _prefix(n, i):
    return matmul(*n.args[:i]) if i else None


def _suffix(n, i):
    return matmul(*n.args[i + 1:]) if i + 1 < len(n.args) else None


def _t(x):
    return None if x is None else T(x)


def _rows_bcast(v, ncols):
    """v (length m) repeated across ncols columns: v 1ᵀ."""
    return matmul(v, T(ones((ncols,))))


def _sum_axis_vjp(g, x, axis):
    if axis is None:
        return bcast(g, x.shape)
    if axis == 0:
        return bcast(g, x.shape)            # column sums: g repeated down the rows
    return _rows_bcast(g, x.shape[1])       # row sums: g repeated across the columns


def _softmax_vjp(g, s, axis):
    if axis is None:
        return mul(s, sub(g, matmul(T(s), g)))
    if axis == 1:
        return mul(s, sub(g, _rows_bcast(sum_(mul(s, g), 1), s.shape[1])))
    return mul(s, sub(g, sum_(mul(s, g), 0)))


def _logsumexp_vjp(g, n):
    s = softmax(n.args[0], n.attr)
    if n.attr == 1:
        return mul(s, _rows_bcast(g, s.shape[1]))
    return mul(s, g)


def _ones_col(k):
    """1_k as a column (the number 1 when k is 1)."""
    return ONE if k == 1 else ones((k,))


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


VJP = {
    "add":       lambda g, n, i: unbroadcast(g, n.args[i].shape),
    "mul":       lambda g, n, i: unbroadcast(mul(g, *_others(n, i)), n.args[i].shape),
    "pow":       lambda g, n, i: (unbroadcast(mul(g, n.args[1], pow_(n.args[0], sub(n.args[1], ONE))), n.args[0].shape)
                                  if i == 0 else unbroadcast(mul(g, fn("log", n.args[0]), n), n.args[1].shape)),
    "matmul":    lambda g, n, i: matmul(_t(_prefix(n, i)), g, _t(_suffix(n, i))),
    "T":         lambda g, n, i: T(g),
    "fn":        lambda g, n, i: mul(g, DERIV[n.attr](n.args[0])),
    "sum":       lambda g, n, i: _sum_axis_vjp(g, n.args[0], n.attr),
    "tr":        lambda g, n, i: mul(g, eye(n.args[0].shape[0])),
    "det":       lambda g, n, i: mul(g, n, T(inv(n.args[0]))),
    "logdet":    lambda g, n, i: mul(g, T(inv(n.args[0]))),
    "inv":       lambda g, n, i: neg(matmul(T(n), g, T(n))),
    "norm":      lambda g, n, i: mul(g, div(n.args[0], n)),
    "diag":      lambda g, n, i: diag(g),
    "diagv":     lambda g, n, i: diag(g),
    "softmax":   lambda g, n, i: _softmax_vjp(g, n, n.attr),
    "logsumexp": lambda g, n, i: _logsumexp_vjp(g, n),
    "vec":       lambda g, n, i: unvec(g, *as_2d(n.args[0].shape)),
    "unvec":     lambda g, n, i: vec(g),
    "kron":      _kron_vjp,
}


def _softmax_jvp(n, d):
    s, axis = n, n.attr
    if axis is None:  # s ⊙ dx − s (sᵀdx): its Jacobian is diag(s) − s sᵀ
        return sub(mul(s, d), mul(s, matmul(T(s), d)))
    if axis == 1:
        return mul(s, sub(d, _rows_bcast(sum_(mul(s, d), 1), s.shape[1])))
    return mul(s, sub(d, sum_(mul(s, d), 0)))


def _logsumexp_jvp(n, d):
    s = softmax(n.args[0], n.attr)
    return matmul(T(s), d) if n.attr is None else sum_(mul(s, d), n.attr)


def _sum_terms(n, terms):
    return bcast(add(*terms), n.shape)


JVP = {
    "add":       lambda n, ds: _sum_terms(n, [d for d in ds if d is not None]),
    "mul":       lambda n, ds: _sum_terms(n, [mul(d, *_others(n, i)) for i, d in enumerate(ds) if d is not None]),
    "pow":       lambda n, ds: add(*([mul(n.args[1], pow_(n.args[0], sub(n.args[1], ONE)), ds[0])] if ds[0] is not None else [])
                                   + ([mul(fn("log", n.args[0]), n, ds[1])] if ds[1] is not None else [])),
    "matmul":    lambda n, ds: add(*[matmul(*n.args[:i], d, *n.args[i + 1:]) for i, d in enumerate(ds) if d is not None]),
    "T":         lambda n, ds: T(ds[0]),
    "fn":        lambda n, ds: mul(DERIV[n.attr](n.args[0]), ds[0]),
    "sum":       lambda n, ds: sum_(ds[0], n.attr, keepdims=len(n.shape) == 2),
    "tr":        lambda n, ds: tr(ds[0]),
    "det":       lambda n, ds: mul(n, tr(matmul(inv(n.args[0]), ds[0]))),
    "logdet":    lambda n, ds: tr(matmul(inv(n.args[0]), ds[0])),
    "inv":       lambda n, ds: neg(matmul(n, ds[0], n)),
    "norm":      lambda n, ds: div(sum_(mul(n.args[0], ds[0])), n),
    "diag":      lambda n, ds: mul(eye(n.shape[0]), ds[0]),           # diag(dx) = I ⊙ (1 dxᵀ)
    "diagv":     lambda n, ds: sum_(mul(eye(n.shape[0]), ds[0]), 1),  # the diagonal of dX
    "softmax":   lambda n, ds: _softmax_jvp(n, ds[0]),
    "logsumexp": lambda n, ds: _logsumexp_jvp(n, ds[0]),
    "vec":       lambda n, ds: vec(ds[0]),
    "unvec":     lambda n, ds: unvec(ds[0], *n.attr),
    "kron":      lambda n, ds: add(*([kron(ds[0], n.args[1])] if ds[0] is not None else [])
                                   + ([kron(n.args[0], ds[1])] if ds[1] is not None else [])),
}
