"""The algebra's own operators: leaves, sums, products, powers, the matrix product, the transpose
and the element-wise function node.  Their text, LaTeX and unicode belong to the printers' core
(precedence, signs, fractions), so they are declared `core=True` without printer forms."""
from __future__ import annotations

from .lazy_numpy import np

from ..number_text import code_number, latex_number

from ..errors import InternalError
from ..expr import as_2d, make
from ..simplify import (T, _joint, add, bcast, const, diag, eye, fn as F, kron, matmul, mul, ones, pow_, sub,
                        unbroadcast, vec)
from . import registry as R
from .registry import defop

ONE = const(1)
LEAF = "a leaf has no argument"


def _others(n, i):
    return [a for j, a in enumerate(n.args) if j != i]


def _t(x):
    return None if x is None else T(x)


def _sum_terms(n, terms):
    return bcast(add(*terms), n.shape)


def _commutation(m: int, n: int) -> np.ndarray:
    k = np.zeros((m * n, m * n))
    for i in range(m):
        for j in range(n):
            k[i * n + j, j * m + i] = 1.0
    return k


def _col(x):
    x = np.asarray(x, dtype=float)
    return x.reshape(-1, 1) if x.ndim == 1 else x.reshape(1, 1) if x.ndim == 0 else x


def _chain(xs: list):
    """The product of a chain of arrays: numpy's optimal order (cubic in the chain's length) by
    blocks of at most 12 factors, so that a long chain costs time linear in its length."""
    xs = [_col(x) for x in xs]
    while len(xs) > 12:
        xs = [np.linalg.multi_dot(xs[i:i + 12]) if len(xs[i:i + 12]) > 1 else xs[i] for i in range(0, len(xs), 12)]
    return np.linalg.multi_dot(xs) if len(xs) > 2 else xs[0] @ xs[1] if len(xs) == 2 else xs[0]


def _sp_K(ctx, n, a):
    p, q = ctx.size(n.attr[0]), ctx.size(n.attr[1])
    v = ctx.sp.zeros(p * q, p * q)
    for i in range(p):
        for j in range(q):
            v[j + q * i, i + p * j] = 1
    return v


def _sp_const(ctx, n, a):
    r, c = ctx.two_d(n.shape)
    return ctx.sp.eye(r) if n.op == "eye" else ctx.sp.ones(r, c) if n.op == "ones" else ctx.sp.zeros(r, c)


def _sp_addmul(ctx, n, a):
    ms = [ctx.mat(x, y.shape, n.shape) for x, y in zip(a, n.args)]
    v = ms[0]
    for m in ms[1:]:
        v = v + m if n.op == "add" else v.multiply_elementwise(m)
    return ctx.out(v, n.shape)


def _sp_pow(ctx, n, a):
    b, e = (ctx.mat(x, y.shape, n.shape) for x, y in zip(a, n.args))
    return ctx.out(ctx.sp.Matrix(b.shape[0], b.shape[1], lambda i, j: b[i, j] ** e[i, j]), n.shape)


def _sp_matmul(ctx, n, a):
    v = ctx.mat(a[0], n.args[0].shape, n.args[0].shape)
    for x, y in zip(a[1:], n.args[1:]):
        v = v * ctx.mat(x, y.shape, y.shape)
    return ctx.out(v, n.shape)


def _sp_fn(ctx, n, a):
    spec = R.fn(n.attr)
    f = getattr(ctx.sp, spec.sp) if isinstance(spec.sp, str) else (lambda x: spec.sp(ctx.sp, x))
    return a[0].applyfunc(f) if isinstance(a[0], ctx.sp.MatrixBase) else f(a[0])


def _code_shape(shape: tuple) -> tuple:
    """A row (1×n) is 1-D in generated code, like a vector."""
    return shape[1:] if len(shape) == 2 and shape[0] == 1 else shape


def _code_T(g, n):
    a = n.args[0]
    if len(a.shape) == 2 and a.shape[1] == 1 and a.shape[0] != 1:
        return f"{g.c(a)}.reshape(-1)"  # an m×1 column's transpose: a row, 1-D here
    return g.f("T", x=g.c(a)) if len(a.shape) == 2 and a.shape[0] != 1 else g.code[id(a)]


def _code_add(g, n):
    """a + b + …, a term -1 * t written `- t` (one operation instead of two)."""
    out = []
    for i, a in enumerate(n.args):
        if i and _is_negation(a) and not g.code[id(a)].startswith("_t"):
            out.append(f"- {g.c(a.args[1])}")
        else:
            out.append(("+ " if i else "") + g.c(a))
    return " ".join(out)


def _is_negation(a) -> bool:
    return a.op == "mul" and len(a.args) == 2 and a.args[0].op == "const" and float(a.args[0].attr) == -1.0


def _code_pow(g, n):
    base, e = n.args
    if e.op == "const" and e.attr == -1:
        return f"1.0 / {g.c(base)}"
    return f"{g.c(base)} ** {g.c(e)}"


def _code_fn(g, n):
    tmpl = R.fn(n.attr).code_for(g.backend)
    g.helpers_in(tmpl)
    return tmpl.format(g.code[id(n.args[0])], ns=g.b["ns"])


def _pow_vjp(g, n, i):
    a, e = n.args
    if i == 0:
        return unbroadcast(mul(g, e, pow_(a, sub(e, ONE))), a.shape)
    return unbroadcast(mul(g, F("log", a), n), e.shape)


def _pow_jvp(n, ds):
    a, e = n.args
    terms = ([mul(e, pow_(a, sub(e, ONE)), ds[0])] if ds[0] is not None else []) + \
        ([mul(F("log", a), n, ds[1])] if ds[1] is not None else [])
    return add(*terms)


def _lift(j, src: tuple, dst: tuple):
    """The vec-Jacobian of a value of shape `src` broadcast to shape `dst`."""
    if src == dst:
        return j
    if src == ():
        return matmul(vec(ones(dst)), j)
    m, n = dst
    if len(src) == 2 and src[1] == 1:  # an m×1 column over the columns: vec(c 1ᵀ) = (1_n ⊗ I_m) c
        return matmul(kron(ones((n,)), eye(m)), j)
    # a vector (or row) broadcast over the rows of an m×n matrix: vec(1 vᵀ) = (I_n ⊗ 1_m) v
    return matmul(kron(eye(n), ones((m,))), j)


def _linear_arg(e, key):
    idx = [i for i, a in enumerate(e.args) if key in a.vars]
    if len(idx) != 1:
        raise InternalError("internal error: the differential is not linear")
    return idx[0]


def _add_vec_jac(e, J, key):
    return add(*[_lift(J(t), t.shape, e.shape) for t in e.args if key in t.vars])


def _mul_vec_jac(e, J, key):
    """vec(a ⊙ dX) = diag(vec a) vec(dX)."""
    i = _linear_arg(e, key)
    x = e.args[i]
    others = _others(e, i)
    if _joint(others) is None:  # an m×1 column and a vector meet only through dX's shape
        others = [bcast(f, e.shape) for f in others]
    a = mul(*others)
    if a.shape == ():
        return mul(a, _lift(J(x), x.shape, e.shape))
    if x.shape == ():
        return matmul(vec(bcast(a, e.shape)), J(x))
    return matmul(diag(vec(bcast(a, e.shape))), _lift(J(x), x.shape, e.shape))


def _matmul_vec_jac(e, J, key):
    """vec(A dX B) = (Bᵀ ⊗ A) vec(dX)."""
    i = _linear_arg(e, key)
    x = e.args[i]
    r, c = as_2d(x.shape)
    left = matmul(*e.args[:i]) if i else eye(r)
    right = T(matmul(*e.args[i + 1:])) if i + 1 < len(e.args) else eye(c)
    return matmul(kron(right, left), J(x))


def _pow_vec_jac(e, J, key):
    if e.args[1].op == "const" and e.args[1].attr == 1:
        return J(e.args[0])
    raise InternalError("cannot read a Jacobian off a differential through pow")


def _matmul_vjp(g, n, i):
    pre = matmul(*n.args[:i]) if i else None
    post = matmul(*n.args[i + 1:]) if i + 1 < len(n.args) else None
    return matmul(_t(pre), g, _t(post))


# ---- index forms (one entry of the node, with indices and sums)
def _index_mul(p, n, idx):
    coef, num, den = "", [], []
    for a in n.args:
        if a.op == "const":
            coef = "-" if a.attr == -1 else latex_number(a.attr) + " "
        elif a.op == "pow" and a.args[1].op == "const" and a.args[1].attr < 0:
            b, e = a.args[0], -a.args[1].attr
            t = p.entry(b, p.bidx(b, n, idx))
            den.append(t if e == 1 else f"{{{t}}}^{{{latex_number(e)}}}")
        else:
            t = p.entry(a, p.bidx(a, n, idx))
            if t != "1":
                num.append(t)
    body = " ".join(num) or "1"
    if den:
        body = f"\\frac{{{body}}}{{{' '.join(den)}}}"
    return coef + body


def _index_pow(p, n, idx):
    b, e = n.args
    if e.op == "const" and e.attr == -1:
        return rf"\frac{{1}}{{{p.entry(b, p.bidx(b, n, idx))}}}"
    return f"{{{p.entry(b, p.bidx(b, n, idx))}}}^{{{p.entry(e, p.bidx(e, n, idx))}}}"


def _matmul_bounds(p, n, idx):
    """The index of each boundary between factors (None: a vector's side) and the summed ones."""
    fs, sh = n.args, n.shape
    r = idx[0] if len(sh) == 2 and sh[0] != 1 or len(sh) == 1 else None
    c = idx[-1] if len(sh) == 2 else None
    row0 = len(fs[0].shape) == 2 and fs[0].shape[0] == 1
    bounds, sums = [None if row0 else r], []
    for f in fs[:-1]:
        bounds.append(None if len(f.shape) == 1 else p.fresh())
        if bounds[-1] is not None:
            sums.append(bounds[-1])
    bounds.append(None if len(fs[-1].shape) == 1 else c)
    for k, f in enumerate(fs):  # diag(v) keeps the index: δ_ab v_a, summed away
        if f.op == "diag" and bounds[k] is not None and bounds[k + 1] is not None:
            a, b = bounds[k], bounds[k + 1]
            keep, drop = (a, b) if b in sums else (b, a)
            if drop in sums:
                sums.remove(drop)
                bounds = [keep if x == drop else x for x in bounds]
    return bounds, sums


def _index_matmul(p, n, idx):
    bounds, sums = _matmul_bounds(p, n, idx)
    parts = []
    for k, f in enumerate(n.args):
        if f.op == "diag" and bounds[k] == bounds[k + 1]:
            parts.append(p.entry(f.args[0], (bounds[k],)))
            continue
        col, row = len(f.shape) == 1, len(f.shape) == 2 and f.shape[0] == 1
        ix = (bounds[k],) if col else (bounds[k + 1],) if row else (bounds[k], bounds[k + 1])
        parts.append(p.entry(f, ix))
    body = " ".join(q for q in parts if q != "1") or "1"
    return (rf"\sum_{{{','.join(sums)}}} " + body) if sums else body


def _index_fn(p, n, idx):
    spec = R.fn(n.attr)
    name = spec.index or (spec.latex if "{0}" not in spec.latex else rf"\operatorname{{{n.attr}}}")
    return rf"{name}\left({p.entry(n.args[0], idx, paren=False)}\right)"


# ---- leaves (no arguments, so no derivative rules to give)
defop("const", arity=0, core=True, no_vjp=LEAF, no_jvp=LEAF, np=lambda n, a, d: n.attr,
      sp=lambda ctx, n, a: ctx.sp.nsimplify(n.attr), code=lambda g, n: code_number(n.attr))
defop("numel", arity=0, core=True, no_vjp=LEAF, no_jvp=LEAF, np=lambda n, a, d: float(d(n.attr)),
      sp=lambda ctx, n, a: ctx.sp.Integer(ctx.size(n.attr)), code=lambda g, n: f"float({g.dim(n.attr)})")
defop("var", arity=0, core=True, no_vjp=LEAF, no_jvp=LEAF)
defop("dvar", arity=0, core=True, no_vjp="a differential seed", no_jvp="a differential seed")
defop("dof", core=True, build=lambda n, a: make("dof", tuple(a), None, n.shape), no_vjp="an opaque differential of the steps", no_jvp="an opaque differential of the steps")
defop("eye", arity=0, core=True, no_vjp=LEAF, no_jvp=LEAF, np=lambda n, a, d: np.eye(d(n.shape[0])), sp=_sp_const,
      code=lambda g, n: g.f("eye", n=g.dim(n.shape[0])))
defop("ones", arity=0, core=True, no_vjp=LEAF, no_jvp=LEAF, np=lambda n, a, d: np.ones([d(x) for x in n.shape]),
      sp=_sp_const, code=lambda g, n: g.f("ones", dims=g.dims(_code_shape(n.shape))))
defop("zeros", arity=0, core=True, no_vjp=LEAF, no_jvp=LEAF, np=lambda n, a, d: np.zeros([d(x) for x in n.shape]),
      sp=_sp_const, code=lambda g, n: g.f("zeros", dims=g.dims(_code_shape(n.shape))))
defop("tuple", arity=None, core=True, build=lambda n, a: make("tuple", tuple(a), None, ()),
      no_vjp="several results side by side (matcalc.grad) are not differentiated", no_jvp="several results",
      code=lambda g, n: "(" + ", ".join(g._tuple_item(a) for a in n.args) + ("," if len(n.args) == 1 else "") + ")")
defop("K", arity=0, core=True, no_vjp=LEAF, no_jvp=LEAF, np=lambda n, a, d: _commutation(d(n.attr[0]), d(n.attr[1])),
      sp=_sp_K, code=lambda g, n: f"{g.helper('_commutation')}({g.dim(n.attr[0])}, {g.dim(n.attr[1])})")

# ---- the algebra
defop("add", sample=("X + y.T", {"X": ("m", "n"), "y": ("n",)}, ["X", "y"]),
      arity=None, core=True, build=lambda n, a: add(*a),
      vjp=lambda g, n, i: unbroadcast(g, n.args[i].shape),
      jvp=lambda n, ds: _sum_terms(n, [d for d in ds if d is not None]),
      np=lambda n, a, d: sum(a[1:], a[0]), sp=_sp_addmul,
      code=lambda g, n: _code_add(g, n), vec_jac=_add_vec_jac,
      step=("linearity", r"\mathrm{d}(A + B) = \mathrm{d}A + \mathrm{d}B"))
defop("mul", sample=("X * Y", {"X": ("m", "n"), "Y": ("m", "n")}, ["X", "Y"]),
      arity=None, core=True, build=lambda n, a: mul(*a),
      vjp=lambda g, n, i: unbroadcast(mul(g, *_others(n, i)), n.args[i].shape),
      jvp=lambda n, ds: _sum_terms(n, [mul(d, *_others(n, i)) for i, d in enumerate(ds) if d is not None]),
      np=lambda n, a, d: np.prod(np.broadcast_arrays(*a), axis=0) if len(a) > 2 else a[0] * a[1], sp=_sp_addmul,
      code=lambda g, n: " * ".join(g.c(a) for a in n.args), vec_jac=_mul_vec_jac, index=_index_mul,
      step=("product rule (element-wise)", r"\mathrm{d}(A \odot B) = \mathrm{d}A \odot B + A \odot \mathrm{d}B"))
defop("pow", sample=("X ** Y", {"X": ("m", "n"), "Y": ("m", "n")}, ["X", "Y"]),
      arity=2, core=True, build=lambda n, a: pow_(*a), vjp=_pow_vjp, jvp=_pow_jvp,
      np=lambda n, a, d: np.power(a[0], a[1]), sp=_sp_pow, index=_index_pow, code=_code_pow, vec_jac=_pow_vec_jac,
      step=("power rule (element-wise)", r"\mathrm{d}(A^{\circ k}) = k A^{\circ (k-1)} \odot \mathrm{d}A"))
defop("matmul", sample=("A @ B", {"A": ("m", "n"), "B": ("n", "p")}, ["A", "B"]),
      arity=None, core=True, build=lambda n, a: matmul(*a), vjp=_matmul_vjp,
      jvp=lambda n, ds: add(*[matmul(*n.args[:i], d, *n.args[i + 1:]) for i, d in enumerate(ds) if d is not None]),
      np=lambda n, a, d: _chain(a),
      sp=_sp_matmul, code=lambda g, n: g.matmul(n.args), vec_jac=_matmul_vec_jac, index=_index_matmul,
      step=("product rule", r"\mathrm{d}(AB) = \mathrm{d}A\, B + A\, \mathrm{d}B"))
defop("T", sample=("X.T", {"X": ("m", "n")}, ["X"]),
      core=True, build=lambda n, a: T(a[0]), linear=True, vjp=lambda g, n, i: T(g),
      vec_jac=lambda n, J, key: matmul(_commutation_node(n.args[0]), J(n.args[0])),
      np=lambda n, a, d: np.transpose(a[0]) if np.ndim(a[0]) == 2 else a[0],
      sp=lambda ctx, n, a: a[0].T if isinstance(a[0], ctx.sp.MatrixBase) else a[0], code=_code_T,
      index=lambda p, n, idx: p.entry(n.args[0], tuple(reversed(idx)) if len(n.args[0].shape) == 2 else idx),
      step=("transpose", r"\mathrm{d}(A^{T}) = (\mathrm{d}A)^{T}"))
defop("fn", sample=("tanh(X)", {"X": ("m", "n")}, ["X"]),
      core=True, build=lambda n, a: F(n.attr, a[0]),
      vjp=lambda g, n, i: mul(g, R.fn(n.attr).d(n.args[0])),
      jvp=lambda n, ds: mul(R.fn(n.attr).d(n.args[0]), ds[0]),
      np=lambda n, a, d: R.fn(n.attr).np(a[0]), sp=_sp_fn, code=_code_fn, index=_index_fn,
      step=("chain rule, element-wise (a diagonal Jacobian)", r"\mathrm{d}f(A) = f'(A) \odot \mathrm{d}A"))


def _commutation_node(x):
    from ..simplify import commutation
    r, c = as_2d(x.shape)
    return commutation(r, c)
