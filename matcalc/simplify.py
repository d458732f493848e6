"""Smart constructors: every node is built through these, so every expression is canonical.

Each constructor flattens sums and products, folds constants, collects like terms
(`a + a = 2 a`) and powers (`a * a = a**2`), drops zeros and identities, pulls scalars to the
front, factors a common left or right matrix factor (`XᵀA + XᵀB = Xᵀ(A + B)`) and orders
operands (one policy: `term_key`, `factor_key`, both refining `expr.sort_key`); then it
applies the named identities of its operator (`identities.py`: `(AB)ᵀ = BᵀAᵀ`, ...). None looks
at a whole expression. Re-exported from their modules: the leaves (`leaves.py`), products'
chains (`chains.py`), the matrix functions (`matrix_functions.py`), the transpose (`transpose.py`).
"""
from __future__ import annotations

import math

from .chains import InternalShapeError, _chain, _chain_shape, _fail, _inner_products, _rewrite_chain, _seams_shape  # noqa: F401
from .expr import Node, as_2d, broadcast_shape, dim_mul, make, numel as shape_numel, sort_key
from .leaves import commutation, const, dvar, eye, is_const, is_ones, is_zero, numel, ones, var, zeros  # noqa: F401


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
    c0 = abs(terms[0][0])
    if c0 != 1 and all(abs(c) == c0 for c, _ in terms):  # 2a − 2b = 2 (a − b)
        return mul(const(c0), add(*[_scale(c / c0, b) for c, b in terms]))
    if any(b.shape != shape for _, b in terms):
        return None
    chains = [_chain(b) for _, b in terms]
    # peel the whole common prefix (or suffix) at once: one factor at a time rebuilds every
    # remaining chain once per factor, quadratic in the chains' length
    p = _common_run(chains, lambda ch, i: ch[i])
    if p:
        rest = add(*[_scale(c, matmul(*ch[p:])) for (c, _), ch in zip(terms, chains)])
        return matmul(*chains[0][:p], rest)
    q = _common_run(chains, lambda ch, i: ch[len(ch) - 1 - i])
    if q:
        rest = add(*[_scale(c, matmul(*ch[:len(ch) - q])) for (c, _), ch in zip(terms, chains)])
        return matmul(rest, *chains[0][len(chains[0]) - q:])
    return None


def _common_run(chains: list[list[Node]], at) -> int:
    """How many factors, counted by `at(chain, i)`, all chains share while each keeps one more."""
    k, shortest, ref = 0, min(len(ch) for ch in chains), chains[0]
    while k + 1 < shortest and all(at(ch, k) is at(ref, k) for ch in chains):
        k += 1
    return k


def _merge_sums(pairs: list) -> list:
    """c₁ sum(A, axis) + c₂ sum(B, axis) = sum(c₁A + c₂B, axis) (linearity), for equal shapes."""
    groups: dict = {}
    for c, b in pairs:
        if b.op == "sum":
            groups.setdefault((b.attr, b.args[0].shape), []).append((c, b))
    if all(len(g) < 2 for g in groups.values()):
        return pairs
    out = [(c, b) for c, b in pairs if b.op != "sum"]
    for (axis, _), g in groups.items():
        if len(g) == 1:
            out.extend(g)
        else:
            merged = sum_(add(*[_scale(c, b.args[0]) for c, b in g]), axis)
            out.append(_split_coef(merged))
    return out


def add(*terms: Node) -> Node:
    """Sum with broadcasting; like terms collected, constants folded, zeros dropped."""
    flat: list[Node] = []
    for t in terms:
        flat.extend(t.args if t.op == "add" else (t,))
    shape = ()
    for t in flat:
        s = broadcast_shape(shape, t.shape)
        if s is None:
            _fail("+", *flat)
        shape = s
    total = 0.0
    coefs: dict[int, list] = {}
    for t in flat:
        if is_zero(t):
            continue
        if t.op == "const" or (t.op == "ones" and t.shape != shape):
            total += t.attr if t.op == "const" else 1.0
            continue
        c, b = _split_coef(t)
        slot = coefs.get(id(b))
        if slot is None:
            coefs[id(b)] = [c, b]
        else:
            slot[0] += c
    pairs = _merge_sums([(c, b) for c, b in coefs.values() if c != 0])
    if total != 0:
        pairs.append((total, const(1)))
    if not pairs:
        return zeros(shape)
    if len(pairs) == 1:
        return bcast(_scale(*pairs[0]), shape)
    kept = ()
    for _, b in pairs:
        kept = broadcast_shape(kept, b.shape)
    if kept != shape:  # the terms that carried the shape were zeros: broadcast what is left
        return bcast(add(*[_scale(c, b) for c, b in pairs]), shape)
    factored = _factor(pairs, shape)
    if factored is not None:
        return factored
    out = [_scale(c, b) for c, b in pairs]
    out.sort(key=term_key)
    return make("add", tuple(out), None, shape)


def neg(a: Node) -> Node:
    return mul(const(-1), a)


def sub(a: Node, b: Node) -> Node:
    return add(a, neg(b))


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
    return mul(t, ones(shape))


def unbroadcast(g: Node, shape: tuple) -> Node:
    """Sum g over the axes along which a value of `shape` was broadcast to g's shape."""
    if g.shape == shape:
        return g
    if shape == ():
        return sum_(g)
    if len(shape) == 1 and len(g.shape) == 2:
        return sum_(g, 0)
    if len(shape) == 2 and shape[0] == 1 and len(g.shape) == 2:
        return T(sum_(g, 0))
    _fail("unbroadcast", g)


# ----------------------------------------------------------------------------- products

def _base_exp(f: Node) -> tuple[Node, float]:
    if f.op == "pow" and f.args[1].op == "const":
        return f.args[0], f.args[1].attr
    return f, 1.0


def _row_broadcast(f: Node):
    """v if f is ones(m) @ v.T (v broadcast over m rows), else None."""
    if f.op == "matmul" and len(f.args) == 2 and f.args[0].op == "ones" and len(f.args[0].shape) == 1:
        r = f.args[1]
        if len(r.shape) == 2 and r.shape[0] == 1:
            return T(r)
    return None


def _spanned(others: list[Node], shape: tuple) -> list[Node]:
    """The factors without the broadcasts the other factors make needless: ones(m) @ v.T (v over
    the rows) is v, and ones are dropped, where the other factors already span `shape`."""
    others = list(others)

    def rest_shape(skip):
        s = ()
        for j, g in enumerate(others):
            if j != skip and g is not None:
                s = broadcast_shape(s, g.shape)
        return s

    for i, f in enumerate(others):
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
        flat.extend(f.args if f.op == "mul" else (f,))
    shape = ()
    for f in flat:
        s = broadcast_shape(shape, f.shape)
        if s is None:
            _fail("*", *flat)
        shape = s
    coef = 1.0
    bases: dict[int, list] = {}
    for f in flat:
        if f.op == "const":
            coef *= f.attr
            continue
        if is_zero(f):
            return zeros(shape)
        b, e = _base_exp(f)
        slot = bases.get(id(b))
        if slot is None:
            bases[id(b)] = [b, e]
        else:
            slot[1] += e
    if coef == 0:
        return zeros(shape)
    others = []
    for b, e in bases.values():
        p = pow_(b, const(e)) if e != 1 else b
        if p.op == "const":
            coef *= p.attr
        elif p.op == "mul":
            others.extend(p.args)
        else:
            others.append(p)
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
    if b.op == "const":
        if b.attr == 0:
            return make("mul", (a, make("pow", (b, const(-1)), None, ())), None, a.shape)
        return mul(const(1.0 / b.attr), a)
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
        if a.op == "const":
            try:
                v = a.attr ** e
                if isinstance(v, float) and math.isfinite(v):
                    return const(v)
            except (ZeroDivisionError, OverflowError, ValueError):
                pass
        if is_ones(a):
            return a
        return I.apply("pow", a, b) or make("pow", (a, b), None, shape)
    return make("pow", (a, b), None, shape)


def _chain_factor(f: Node, scalars: list[Node]):
    """The factor f contributes to a product's chain (None: f is a scalar, put in `scalars`)."""
    if f.shape == ():
        scalars.append(f)
        return None
    if f.op == "mul" and any(g.shape == () for g in f.args):
        inner = [g for g in f.args if g.shape != ()]
        s = ()
        for g in inner:
            s = broadcast_shape(s, g.shape)
        if s == f.shape:
            scalars.extend(g for g in f.args if g.shape == ())
            return inner[0] if len(inner) == 1 else make("mul", tuple(inner), None, s)
    return f


def matmul(*factors: Node) -> Node:
    """Matrix product; scalar factors become a coefficient, identities are dropped.

    The factors of an argument that is itself a product are already canonical among themselves:
    only the seams between arguments are checked and rewritten, so that extending a long chain
    costs little more than copying it."""
    scalars: list[Node] = []
    chain: list[Node] = []
    seams: list[int] = []
    special = False  # a zero or an identity among the new factors
    for f in factors:
        if f is None:
            continue
        if f.op == "matmul":
            seams.append(len(chain))
            chain.extend(f.args)
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
        return zeros(shape)
    if special and len(chain) > 1:
        kept = [f for f in chain if f.op != "eye"]
        if len(kept) != len(chain):
            chain, seams = kept or chain[:1], list(range(len(kept) + 1))
    chain, inner = _inner_products(chain)
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

_FOLD = {
    "exp": math.exp, "log": math.log, "sin": math.sin, "cos": math.cos, "tan": math.tan,
    "tanh": math.tanh, "sqrt": math.sqrt, "abs": abs,
    "sigmoid": lambda x: 1 / (1 + math.exp(-x)), "relu": lambda x: max(x, 0.0),
    "softplus": lambda x: math.log1p(math.exp(x)), "sign": lambda x: float((x > 0) - (x < 0)),
    "step": lambda x: float(x > 0),
}

ELEMENTWISE = tuple(_FOLD)


def fn(name: str, a: Node) -> Node:
    """An element-wise function."""
    if a.op == "const":
        try:
            v = _FOLD[name](a.attr)
            if math.isfinite(v):
                return const(v)
        except (ValueError, OverflowError, ZeroDivisionError):
            pass
    if is_zero(a) and name in ("sin", "tan", "tanh", "sqrt", "abs", "relu", "sign", "step"):
        return a
    return I.apply("fn", name, a) or make("fn", (a,), name, a.shape)


def sum_(a: Node, axis: int | None = None) -> Node:
    """Sum of all entries (axis None), column sums (axis 0) or row sums (axis 1)."""
    if a.shape == ():
        return a
    if len(a.shape) == 1 or (len(a.shape) == 2 and a.shape[0] == 1 and axis == 0):
        if axis == 1:
            _fail("sum axis=1", a)
        if len(a.shape) == 2:  # column sums of a row are the row itself
            return T(a)
        axis = None
    if axis is None:
        if is_zero(a):
            return const(0)
        if a.op == "ones":
            return numel(shape_numel(a.shape))
        if a.op == "T":
            return sum_(a.args[0])
        if a.op == "mul" and a.args[0].shape == () and len(a.args) > 1:
            scal = [f for f in a.args if f.shape == ()]
            rest = [f for f in a.args if f.shape != ()]
            s = ()
            for g in rest:
                s = broadcast_shape(s, g.shape)
            if s == a.shape:
                return mul(*scal, sum_(rest[0] if len(rest) == 1 else make("mul", tuple(rest), None, s)))
        return make("sum", (a,), None, ())
    m, n = a.shape
    out_shape = (n,) if axis == 0 else (m,)
    if is_zero(a):
        return zeros(out_shape)
    if a.op == "T":
        return sum_(a.args[0], 1 - axis)
    if a.op == "mul" and a.args[0].op == "const":
        return mul(a.args[0], sum_(make("mul", a.args[1:], None, a.shape) if len(a.args) > 2 else a.args[1], axis))
    if a.op == "ones":
        return mul(numel(m if axis == 0 else n), ones(out_shape))
    if axis == 0 and _row_broadcast(a) is not None:
        return mul(numel(m), _row_broadcast(a))  # a vector repeated down m rows, summed over them
    return make("sum", (a,), axis, out_shape)


def vec(a: Node) -> Node:
    """The column-major vectorisation of a matrix (a vector or scalar unchanged)."""
    if a.shape == () or len(a.shape) == 1:
        return a
    if a.shape[0] == 1:
        return T(a)
    return I.apply("vec", a) or make("vec", (a,), None, (shape_numel(a.shape),))


def kron(a: Node, b: Node) -> Node:
    """The Kronecker product; vectors count as one-column matrices."""
    if a.shape == () or b.shape == ():
        return mul(a, b)
    if a.op == "eye" and b.op == "eye":
        return eye(dim_mul(a.shape[0], b.shape[0]))
    (p, q), (r, s) = as_2d(a.shape), as_2d(b.shape)
    rows, cols = dim_mul(p, r), dim_mul(q, s)
    if cols == 1:
        shape = (rows,)
    elif rows == 1:
        shape = (1, cols)
    else:
        shape = (rows, cols)
    return make("kron", (a, b), None, shape)


# ----------------------------------------------------------------------------- rebuilding

_REBUILD = {
    "add": lambda n, a: add(*a), "mul": lambda n, a: mul(*a), "matmul": lambda n, a: matmul(*a),
    "pow": lambda n, a: pow_(*a), "T": lambda n, a: T(a[0]), "fn": lambda n, a: fn(n.attr, a[0]),
    "sum": lambda n, a: sum_(a[0], n.attr), "tr": lambda n, a: tr(a[0]), "det": lambda n, a: det(a[0]),
    "logdet": lambda n, a: logdet(a[0]), "inv": lambda n, a: inv(a[0]), "norm": lambda n, a: norm(a[0]),
    "diag": lambda n, a: diag(a[0]), "diagv": lambda n, a: diag(a[0]),
    "softmax": lambda n, a: softmax(a[0], n.attr), "logsumexp": lambda n, a: logsumexp(a[0], n.attr),
    "vec": lambda n, a: vec(a[0]), "kron": lambda n, a: kron(*a),
}


def rebuild(root: Node, rewrite) -> Node:
    """`root` with every node n replaced by rewrite(n) (None: keep), rebuilt bottom-up through
    the smart constructors so that the result is canonical again."""
    from .expr import postorder
    new: dict[int, Node] = {}
    for n in postorder(root):
        args = [new[id(a)] for a in n.args]
        m = n if all(x is y for x, y in zip(args, n.args)) else _REBUILD[n.op](n, args)
        r = rewrite(m)
        new[id(n)] = m if r is None else r
    return new[id(root)]


from . import identities as I  # noqa: E402  (the table calls back into these constructors)
from .matrix_functions import det, diag, inv, logdet, logsumexp, norm, softmax, tr  # noqa: E402,F401
from .transpose import T, is_symmetric  # noqa: E402,F401
