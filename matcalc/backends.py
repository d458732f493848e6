"""The backends of generated code: the namespace and generic templates of numpy / torch / jax (each
operator's own code is its declaration's `code=`, ops/) and the helper
functions a generated source may need (softmax, logsumexp, Kronecker and commutation application)."""
from __future__ import annotations

BACKENDS = {
    "numpy": dict(ns="np", imports="import numpy as np", asarray="np.asarray({x}, dtype=float)", outer="np.outer({a}, {b})",
                  eye="np.eye({n})", ones="np.ones(({dims}))", zeros="np.zeros(({dims}))",
                  sum="np.sum({x})", sum_axis="np.sum({x}, axis={axis})", max_axis="np.max({x}, axis={axis}, keepdims=True)",
                  freshape="{x}.reshape(({dims}), order='F')", vec="{x}.reshape(-1, order='F')", T="{x}.T",
                  tmatmul="{a}.T @ {b}", sum_keep="np.sum({x}, axis={axis}, keepdims=True)", perm="transpose"),
    "torch": dict(ns="torch", imports="import torch", asarray="torch.as_tensor({x}, dtype=torch.float64)",
                  outer="torch.outer({a}, {b})", eye="torch.eye({n}, dtype=torch.float64)",
                  ones="torch.ones(({dims}), dtype=torch.float64)", zeros="torch.zeros(({dims}), dtype=torch.float64)",
                  sum="torch.sum({x})", sum_axis="torch.sum({x}, dim={axis})",
                  max_axis="torch.amax({x}, dim={axis}, keepdim=True)",
                  freshape="_freshape({x}, ({dims}))", vec="{x}.T.reshape(-1)", T="{x}.T",
                  tmatmul="{a}.T @ {b}", sum_keep="torch.sum({x}, dim={axis}, keepdim=True)", perm="permute"),
    "jax": dict(ns="jnp", imports="import jax\nimport jax.numpy as jnp", asarray="jnp.asarray({x})",
                outer="jnp.outer({a}, {b})",
                eye="jnp.eye({n})", ones="jnp.ones(({dims}))", zeros="jnp.zeros(({dims}))",
                sum="jnp.sum({x})", sum_axis="jnp.sum({x}, axis={axis})",
                max_axis="jnp.max({x}, axis={axis}, keepdims=True)",
                freshape="{x}.reshape(({dims}), order='F')", vec="{x}.T.reshape(-1)", T="{x}.T",
                tmatmul="jnp.einsum('ji,jk->ik', {a}, {b})",  # XLA on CPU copies a transposed operand
                sum_keep="jnp.sum({x}, axis={axis}, keepdims=True)", perm="transpose"),
}

_HELPERS = {
    "_sigmoid": "def _sigmoid(z):\n    return 0.5 * (1.0 + {ns}.tanh(0.5 * z))\n",
    "_softmax": ("def _softmax(z, axis=None):\n"
                 "    if axis is None:\n        e = {ns}.exp(z - z.max())\n        return e / e.sum()\n"
                 "    e = {ns}.exp(z - {max_axis_z})\n    return e / {sum_keep}\n"),
    "_logsumexp": ("def _logsumexp(z, axis=None):\n"
                   "    if axis is None:\n        c = z.max()\n        return {ns}.log({ns}.exp(z - c).sum()) + c\n"
                   "    c = {max_axis_z}\n    return ({ns}.log({sum_keep_c}) + c).reshape(-1)\n"),
    "_kron_apply": ("def _kron_apply(a, b, m):\n"
                    "    # (a ⊗ b) @ m without building a ⊗ b: vec(B M Aᵀ) for every column of m\n"
                    "    # a and b come 2-D (a column vector n×1, a row 1×n)\n"
                    "    vec = m.ndim == 1\n    m = m.reshape(m.shape[0], -1)\n    k = m.shape[1]\n"
                    "    t = (a @ m.reshape(a.shape[1], -1)).reshape(a.shape[0], b.shape[1], k)\n"
                    "    out = (b @ t).reshape(a.shape[0] * b.shape[0], k)\n"
                    "    return out.reshape(-1) if vec else out\n"),
    "_gram": ("def _gram(b, v):\n"
              "    # b.T @ diag(v) @ b for v >= 0, as c.T @ c with c = sqrt(v) b: numpy computes a product\n"
              "    # of an array with its own transpose as a symmetric rank-k update (half the work)\n"
              "    c = {ns}.sqrt(v)[:, None] * b\n"
              "    return c.T @ c\n"),
    "_kron_comm": ("def _kron_comm(a, b, p, q):\n"
                   "    # (a ⊗ b) @ K(p, q) built at its size: the Kronecker product's columns permuted\n"
                   "    r = a.shape[0] * b.shape[0]\n"
                   "    t = (a[:, None, :, None] * b[None, :, None, :]).reshape(r, p, q)\n"
                   "    return t.{perm}(0, 2, 1).reshape(r, p * q)\n"),
    "_comm_kron": ("def _comm_kron(p, q, a, b):\n"
                   "    # K(p, q) @ (a ⊗ b) built at its size: the Kronecker product's rows permuted\n"
                   "    c = a.shape[1] * b.shape[1]\n"
                   "    t = (a[:, None, :, None] * b[None, :, None, :]).reshape(q, p, c)\n"
                   "    return t.{perm}(1, 0, 2).reshape(p * q, c)\n"),
    "_kron_diag_kron": ("def _kron_diag_kron(a, b, v, c, d):\n"
                        "    # (a ⊗ b) @ diag(v) @ (c ⊗ d) without building a Kronecker product:\n"
                        "    # entry ((i, k), (m, n)) is the sum over j, l of a[i, j] b[k, l] v[j, l] c[j, m] d[l, n]\n"
                        "    s = v.reshape(a.shape[1], b.shape[1])\n"
                        "    g = (b[None, :, :] * s[:, None, :]) @ d\n"
                        "    ac = (a[:, :, None] * c[None, :, :]).{perm}(0, 2, 1).reshape(-1, a.shape[1])\n"
                        "    out = (ac @ g.reshape(a.shape[1], -1)).reshape(a.shape[0], c.shape[1], b.shape[0], d.shape[1])\n"
                        "    return out.{perm}(0, 2, 1, 3).reshape(a.shape[0] * b.shape[0], c.shape[1] * d.shape[1])\n"),
    "_comm_apply": ("def _comm_apply(p, q, m):\n"
                    "    # K(p, q) @ m without building K: rows of vec(X) become rows of vec(X.T)\n"
                    "    vec = m.ndim == 1\n    m = m.reshape(m.shape[0], -1)\n"
                    "    out = m.reshape(q, p, m.shape[1]).{perm}(1, 0, 2).reshape(p * q, m.shape[1])\n"
                    "    return out.reshape(-1) if vec else out\n"),
    "_commutation": ("def _commutation(p, q):\n"
                     "    return _comm_apply(p, q, {eye_pq})\n"),
    "_freshape": ("def _freshape(x, shape):\n"
                  "    # column-major reshape\n"
                  "    return x.T.reshape(tuple(reversed(shape))).permute(*reversed(range(len(shape))))\n"),
    "_adjugate": ("def _adjugate(a):\n"
                  "    # det(a) * inv(a) through the SVD: defined where a is singular\n"
                  "    bad = ~{ns}.isfinite(a).all()\n"
                  "    u, s, vt = {ns}.linalg.svd({ns}.where({ns}.isfinite(a), a, 0.0))\n"
                  "    others = {ns}.prod({ns}.where({ns}.eye(s.shape[0]) > 0, 1.0, s[None, :]), 1)\n"
                  "    out = {ns}.linalg.det(u) * {ns}.linalg.det(vt) * (vt.T * others[None, :]) @ u.T\n"
                  "    return {ns}.where(bad, {ns}.nan, out)\n"),
}
_HELPER_DEPS = {"_commutation": ["_comm_apply"]}
