"""Smart constructors: every node is built through these, so every expression is canonical.

Each constructor flattens sums and products, folds constants, collects like terms
(`a + a = 2 a`) and powers (`a * a = a**2`), drops zeros and identities, pulls scalars to the
front, factors a common left or right matrix factor (`XᵀA + XᵀB = Xᵀ(A + B)`) and orders
operands (one policy: `term_key`, `factor_key`, both refining `expr.sort_key`); then it
applies the named identities of its operator (`identities.py`: `(AB)ᵀ = BᵀAᵀ`, `diag(a) + diag(b)
= diag(a + b)`, ...). None looks
at a whole expression. Re-exported from their modules: the leaves (`leaves.py`), products'
chains (`chains.py`), the matrix functions (`matrix_functions.py`), the transpose (`transpose.py`),
sums over axes (`sums.py`), vec / unvec / kron (`vectorize.py`).
"""
from __future__ import annotations

import math

from .chains import FLAT_MAX, InternalShapeError, _chain, _chain_shape, _common_end, _fail, _inner_products, _rewrite_chain, _seams_shape, interior_rv  # noqa: F401
from .expr import Node, as_2d, broadcast_shape, dim_mul, make, numel as shape_numel, size, sort_key
from .leaves import commutation, const, dvar, eye, is_const, is_finite, is_ones, is_zero, numel, ones, var, zeros  # noqa: F401
from .leaves import constant_value, over, plus, power, times
from .ops import registry


# ----------------------------------------------------------------------------- ordering

_TERM_RANK = {"matmul": 0, "mul": 0, "var": 2, "T": 2, "const": 3}


def term_key(t: Node) -> tuple:
    """The order of a sum's terms: positive before negative, products before leaves (X W + b),
    then `expr.sort_key` (variables by name, X just before Xᵀ, the rest by a stable hash)."""
    c, b = _split_coef(t)
    return (c < 0, _TERM_RANK.get(b.op, 1), sort_key(b))


def factor_key(f: Node) -> tuple:
    """The order of a Hadamard product's factors: scalars first, then `expr.sort_key`."""
    return (f.shape != (), sort_key(f))


#: FLAT_MAX (chains.py) for Hadamard products, shorter: each factor's derivative repeats all the
#: others, so a flattened product of k factors costs k² in its gradient (nested x ⊙ σ(x): 8 levels)
MUL_FLAT_MAX = 8


# ----------------------------------------------------------------------------- sums

def _split_coef(t: Node) -> tuple[float, Node]:
    """t = c * base with c a number."""
    if t.op == "mul" and t.args[0].op == "const":
        rest = t.args[1:]
        if len(rest) == 1 and rest[0].shape == t.shape:
            return t.args[0].attr, rest[0]
        return t.args[0].attr, make("mul", rest, None, t.shape)
    return 1.0, t


def _scale(c: float, base: Node) -> Node:
    return base if c == 1 else mul(const(c), base)


def _factor(terms: list[tuple[float, Node]], shape: tuple):
    """Factor a common scalar, or a common leftmost/rightmost matrix factor; None if none."""
    if len(terms) < 2:
        return None
    c0 = _common_coef([c for c, _ in terms])
    if c0 != 1:  # 2a − 2b = 2 (a − b), 4a − 2b = 2 (2a − b)
        return mul(const(c0), add(*[_scale(c / c0, b) for c, b in terms]))
    if any(b.shape != shape for _, b in terms):
        return None
    chains = [_chain(b) for _, b in terms]
    # peel the whole common prefix (or suffix) at once: one factor at a time rebuilds every
    # remaining chain once per factor, quadratic in the chains' length
    for left in (True, False):
        run = _common_end(chains, left)
        if run is not None:
            common, rests = run
            rest = add(*[_scale(c, matmul(*ch)) for (c, _), ch in zip(terms, rests)])
            return matmul(*common, rest) if left else matmul(rest, *common)
    return None


def _common_coef(cs: list[float]) -> float:
    """The number every coefficient is a multiple of: their common absolute value, else the
    greatest common divisor of integers; 1 if none (or if one is inf or nan: inf / inf is nan)."""
    if not all(math.isfinite(c) for c in cs):
        return 1.0
    c0 = abs(cs[0])
    if all(abs(c) == c0 for c in cs):
        return c0
    if all(float(c).is_integer() and abs(c) < 2 ** 53 for c in cs):
        return float(math.gcd(*(int(c) for c in cs)))
    return 1.0


def add(*terms: Node) -> Node:
    """Sum with broadcasting; like terms collected, constants folded, zeros dropped."""
    flat: list[Node] = []
    for t in terms:
        if t.op == "add" and len(t.args) <= FLAT_MAX:
            flat.extend(t.args)
        elif t.op == "mul" and len(t.args) == 2 and t.args[0].op == "const" and t.args[1].op == "add" \
                and len(t.args[1].args) <= FLAT_MAX and len(terms) > 1:  # c (a + b) among terms: c a + c b
            flat.extend(mul(t.args[0], u) for u in t.args[1].args)
        else:
            flat.append(t)
    shape = _joint(flat)
    if shape is None:
        _fail("+", *flat)
    total = 0.0
    coefs: dict[int, list] = {}
    spanned = any(t.shape == shape for t in flat)
    for t in flat:
        if is_zero(t):
            continue
        c = _col_broadcast(t) if spanned and t.shape == shape else None
        if c is not None and any(u is not t and u.shape == shape for u in flat):
            t = c  # c 1ᵀ beside a term of the full shape: the m×1 column c broadcasts as it is
        if t.op == "const" or (t.op == "ones" and t.shape != shape):
            total = plus(total, t.attr if t.op == "const" else 1.0)
            continue
        c, b = _split_coef(t)
        slot = coefs.get(id(b))
        if slot is None:
            coefs[id(b)] = [c, b]
        else:
            slot[0] = plus(slot[0], c)
    pairs = [(c, b) for c, b in coefs.values() if c != 0]
    while (merged := I.apply("add", pairs)) is not None:  # each rewrite leaves fewer terms
        pairs = merged
    if total != 0:
        pairs.append((total, const(1)))
    if not pairs:
        return zeros(shape)
    if len(pairs) == 1:
        return bcast(_scale(*pairs[0]), shape)
    kept = _joint([b for _, b in pairs])
    if kept is None:  # an m×1 column and a vector are left: each broadcast to the sum's shape
        return add(*[bcast(_scale(c, b), shape) for c, b in pairs])
    if kept != shape:  # the terms that carried the shape were zeros: broadcast what is left
        return bcast(add(*[_scale(c, b) for c, b in pairs]), shape)
    factored = _factor(pairs, shape)
    if factored is not None:
        return factored
    out = [_scale(c, b) for c, b in pairs]
    out.sort(key=term_key)
    return make("add", tuple(out), None, shape)


def _joint(nodes) -> tuple | None:
    """The broadcast shape of several operands, whatever their order (full matrices first, so
    that an m×1 column and a vector meet only through the matrix they both fit); None if none."""
    shape = ()
    for t in sorted(nodes, key=lambda t: (-len(t.shape), 1 in t.shape)):
        shape = broadcast_shape(shape, t.shape)
        if shape is None:
            return None
    return shape


def neg(a: Node) -> Node:
    return mul(const(-1), a)


def sub(a: Node, b: Node) -> Node:
    return add(a, neg(b))


def filled(v: float, shape: tuple) -> Node:
    """The array of `shape` whose entries are all the number v."""
    return zeros(shape) if v == 0 else bcast(const(v), shape)


def bcast(t: Node, shape: tuple) -> Node:
    """t broadcast to `shape` (numpy's rule)."""
    if t.shape == shape:
        return t
    if t.op == "const":
        return const(t.attr) if shape == () else (ones(shape) if t.attr == 1 else make("mul", (t, ones(shape)), None, shape))
    if len(t.shape) == 1 and len(shape) == 2:  # v over the rows of an m×n matrix: 1_m vᵀ
        return matmul(ones((shape[0],)), T(t))
    if len(t.shape) == 2 and t.shape[0] == 1 and len(shape) == 2:
        return matmul(ones((shape[0],)), t)
    if len(t.shape) == 2 and t.shape[1] == 1 and len(shape) == 2:  # an m×1 column over n columns: c 1ᵀ
        return matmul(t, T(ones((shape[1],))))
    return mul(t, ones(shape))


def unbroadcast(g: Node, shape: tuple) -> Node:
    """Sum g over the axes along which a value of `shape` was broadcast to g's shape."""
    if g.shape == shape:
        return g
    if shape == ():
        return sum_(g)
    if len(shape) == 1 and len(g.shape) == 2:
        out = sum_(g, 0)  # of an m×1 g (a one-entry vector broadcast down a column): one number
        return out if out.shape == shape else bcast(out, shape)
    if len(shape) == 2 and shape[0] == 1 and len(g.shape) == 2:
        return T(sum_(g, 0))
    if len(shape) == 2 and shape[1] == 1 and len(g.shape) == 2:
        return sum_(g, 1, keepdims=True)
    _fail("unbroadcast", g)


# ----------------------------------------------------------------------------- products

def _base_exp(f: Node) -> tuple[Node, float]:
    if f.op == "pow" and f.args[1].op == "const":
        return f.args[0], f.args[1].attr
    return f, 1.0


def _col_broadcast(t: Node):
    """a c if t is a (c 1ᵀ) with a a scalar factor and c an m×1 column, else None."""
    scal = [f for f in t.args if f.shape == ()] if t.op == "mul" else []
    rest = [f for f in t.args if f.shape != ()] if t.op == "mul" else [t]
    c = _row_broadcast(rest[0]) if len(rest) == 1 else None
    if c is None or len(c.shape) != 2:
        return None
    return mul(*scal, c)


def _row_broadcast(f: Node):
    """v if f is ones(m) @ v.T (v broadcast over m rows), else None."""
    if f.op == "matmul" and len(f.args) == 2 and f.args[0].op == "ones" and len(f.args[0].shape) == 1:
        r = f.args[1]
        if len(r.shape) == 2 and r.shape[0] == 1:
            return vec(r)  # the row's entries as a vector (r may be the transpose of an m×1 column)
    if f.op == "matmul" and len(f.args) == 2 and is_ones(f.args[1]) and len(f.args[1].shape) == 2 \
            and len(f.args[0].shape) == 2 and f.args[0].shape[1] == 1:
        return f.args[0]  # c 1ᵀ: an m×1 column repeated over the columns broadcasts as it is
    return None


def _spanned(others: list[Node], shape: tuple) -> list[Node]:
    """The factors without the broadcasts the other factors make needless: ones(m) @ v.T (v over
    the rows) is v, and ones are dropped, where the other factors already span `shape`."""
    others = list(others)

    def rest_shape(skip):
        return _joint([g for j, g in enumerate(others) if j != skip and g is not None])

    for i, f in enumerate(others):  # ones(m) @ v.T (v over rows), c @ ones(n).T: v, c
        v = _row_broadcast(f)
        if v is not None and rest_shape(i) == shape:
            others[i] = v
    for i, f in enumerate(others):
        if is_ones(f) and rest_shape(i) == shape:
            others[i] = None
    return [f for f in others if f is not None]


def mul(*factors: Node) -> Node:
    """Element-wise (Hadamard) product with broadcasting; a scalar factor is a scalar multiple."""
    flat: list[Node] = []
    for f in factors:
        if f.op != "mul":
            flat.append(f)
        elif len(f.args) <= MUL_FLAT_MAX or f.args[0].op == "const" and len(f.args) == 2:
            flat.extend(f.args)
        else:  # a long product stays one factor, its coefficient taken out (MUL_FLAT_MAX)
            if f.args[0].op == "const":
                flat.append(f.args[0])
                f = make("mul", f.args[1:], None, _joint(f.args[1:]))
            flat.append(f)
    shape = _joint(flat)
    if shape is None:
        _fail("*", *flat)
    coef, zero = 1.0, False
    bases: dict[int, list] = {}
    for f in flat:
        if f.op == "const":
            coef = times(coef, f.attr)
            continue
        if is_zero(f):
            zero = True
            continue
        b, e = _base_exp(f)
        slot = bases.get(id(b))
        if slot is None:
            bases[id(b)] = [b, e]
        else:
            slot[1] = plus(slot[1], e)
    if zero or coef == 0:  # 0 x = 0 for an expression x, but 0 · inf and 0 · nan are nan
        return zeros(shape) if math.isfinite(coef) else bcast(const(math.nan), shape)
    others = []
    for b, e in bases.values():
        p = pow_(b, const(e)) if e != 1 else b
        # (c A)^q = c^q A^q: its number joins coef; a long product kept whole stays so (FLAT_MAX)
        for g in (p.args if p.op == "mul" and p is not b else (p,)):
            if g.op == "const":
                coef = times(coef, g.attr)
            else:
                others.append(g)
    others = _spanned(I.apply("mul", others) or others, shape)
    if not others:
        return bcast(const(coef), shape)
    others.sort(key=factor_key)
    if coef != 1:
        others.insert(0, const(coef))
    if len(others) == 1:
        return others[0]
    return make("mul", tuple(others), None, shape)


def div(a: Node, b: Node) -> Node:
    """a / b; over a constant, a times its reciprocal (1/0 is inf, so x / 0 is inf · x)."""
    if b.op == "const":
        return mul(const(over(1.0, b.attr)), a)
    return mul(a, pow_(b, const(-1)))


def pow_(a: Node, b: Node) -> Node:
    shape = broadcast_shape(a.shape, b.shape)
    if shape is None:
        _fail("**", a, b)
    if b.op == "const":
        e = b.attr
        if e == 0:
            return bcast(const(1), shape)
        if e == 1:
            return a
        c = constant_value(a)
        if c is not None:  # a constant array's power is one: zeros(n) ** -1 is inf everywhere
            v = power(c, e)
            if v is not None:
                return filled(v, shape)
        return I.apply("pow", a, b) or make("pow", (a, b), None, shape)
    return make("pow", (a, b), None, shape)


def _chain_factor(f: Node, scalars: list[Node]):
    """The factor f contributes to a product's chain (None: f is a scalar, put in `scalars`)."""
    if f.shape == ():
        scalars.append(f)
        return None
    if f.op == "mul" and any(g.shape == () for g in f.args):
        inner = [g for g in f.args if g.shape != ()]
        s = _joint(inner)
        if s == f.shape:
            scalars.extend(g for g in f.args if g.shape == ())
            return inner[0] if len(inner) == 1 else make("mul", tuple(inner), None, s)
    return f


def _seam_rv(chain: list[Node], seams: list[int]) -> bool:
    """A row factor just after a seam or a vector factor just before one (inside the chain)."""
    n = len(chain)
    return any(0 < p < n and (len(chain[p - 1].shape) == 1 or (len(chain[p].shape) == 2 and chain[p].shape[0] == 1))
               for p in seams)


def matmul(*factors: Node) -> Node:
    """Matrix product; scalar factors become a coefficient, identities are dropped.

    The factors of an argument that is itself a product are already canonical among themselves:
    only the seams between arguments are checked and rewritten, so that extending a long chain
    costs little more than copying it."""
    scalars: list[Node] = []
    chain: list[Node] = []
    seams: list[int] = []
    special = False  # a zero or an identity among the new factors
    inside = False  # an argument product with a row or vector inside it (see _inner_products)
    for f in factors:
        if f is None:
            continue
        if f.op == "matmul" and len(f.args) <= FLAT_MAX:
            seams.append(len(chain))
            chain.extend(f.args)
            inside = inside or interior_rv(f)
        else:
            g = _chain_factor(f, scalars)
            if g is None:
                continue
            special = special or g.op == "eye" or is_zero(g)
            seams.append(len(chain))
            chain.append(g)
        seams.append(len(chain))
    if not chain:
        return mul(*scalars) if scalars else const(1)
    shape = _seams_shape(chain, seams)
    if (special and any(is_zero(f) for f in chain)) or any(is_zero(s) for s in scalars):
        return mul(*[s for s in scalars if not is_finite(s)], zeros(shape))  # nan · 0 stays nan
    if special and len(chain) > 1:
        kept = [f for f in chain if f.op != "eye"]
        if len(kept) != len(chain):
            chain, seams = kept or chain[:1], list(range(len(kept) + 1))
    chain, inner = _inner_products(chain, inside or _seam_rv(chain, seams))
    if inner:
        scalars.extend(inner)
        seams = list(range(len(chain) + 1))
    chain = _rewrite_chain(chain, seams)
    if len(chain) == 1:
        out = chain[0]
        if out.shape != shape:
            out = bcast(out, shape) if out.shape == () else out
    else:
        out = make("matmul", tuple(chain), None, shape)
    return mul(*scalars, out) if scalars else out


# ----------------------------------------------------------------------------- functions

def fn(name: str, a: Node) -> Node:
    """An element-wise function (declared in `ops/elementwise.py`)."""
    spec = registry.fn(name)
    c = constant_value(a)
    if c is not None:  # of a constant array too: log(zeros(n)) is −inf everywhere
        v = spec.fold_value(c)
        if math.isfinite(v) or not spec.overflows(c):  # exp(1000) stays: it is a finite number
            return filled(v, a.shape)
    return I.apply("fn", name, a) or make("fn", (a,), name, a.shape)


# ----------------------------------------------------------------------------- rebuilding

def rebuild(root: Node, rewrite) -> Node:
    """`root` with every node n replaced by rewrite(n) (None: keep), rebuilt bottom-up through
    the smart constructors so that the result is canonical again."""
    from .expr import postorder
    new: dict[int, Node] = {}
    for n in postorder(root):
        args = [new[id(a)] for a in n.args]
        m = n if all(x is y for x, y in zip(args, n.args)) else registry.op(n.op).build(n, args)
        r = rewrite(m)
        new[id(n)] = m if r is None else r
    return new[id(root)]


from . import identities as I  # noqa: E402  (the table calls back into these constructors)
from .matrix_functions import det, diag, inv, logdet, logsumexp, norm, softmax, tr  # noqa: E402,F401
from .transpose import T, is_symmetric  # noqa: E402,F401
from .sums import sum_  # noqa: E402,F401
from .vectorize import kron, unvec, vec  # noqa: E402,F401
