"""Smart constructors: every node is built through these, so every expression is canonical.

Each constructor applies the local rewrites a careful person applies by hand: flatten sums and
products, fold constants, collect like terms (`a + a = 2 a`) and powers (`a * a = a**2`),
push transposes to the leaves (`(AB)ᵀ = BᵀAᵀ`), drop zeros and identities, pull scalars to the
front, factor a common left or right matrix factor (`XᵀA + XᵀB = Xᵀ(A + B)`).
All rewrites are identities; none looks at a whole expression.
"""
from __future__ import annotations

import math

from .errors import InternalError
from .expr import (Node, as_2d, broadcast_shape, dim_mul, fmt_shape, make, numel as shape_numel,
                   sort_key, transpose_shape)


class InternalShapeError(InternalError):
    """A rule built an ill-shaped node: a bug in matcalc, never the user's input."""


def _fail(op: str, *nodes: Node):
    shapes = ", ".join(fmt_shape(n.shape) for n in nodes)
    raise InternalShapeError(f"internal error: {op} of shapes {shapes}")


# ----------------------------------------------------------------------------- leaves

def const(v: float) -> Node:
    v = float(v)
    if not math.isfinite(v):
        from .errors import MatcalcError
        raise MatcalcError(f"a constant overflows to {v} (numbers must stay below about 1.8e308)")
    if v == 0:
        v = 0.0  # no negative zero
    return make("const", (), v, ())


ONE = None  # set below


def var(name: str, shape: tuple) -> Node:
    return make("var", (), name, tuple(shape))


def dvar(name: str, shape: tuple) -> Node:
    """The differential `d name`, the seed of forward mode."""
    return make("dvar", (), name, tuple(shape))


def eye(d) -> Node:
    if d == 1:
        return const(1)
    return make("eye", (), None, (d, d))


def ones(shape: tuple) -> Node:
    if shape == ():
        return const(1)
    if len(shape) == 2 and shape[0] == 1:
        return T(ones((shape[1],)))
    return make("ones", (), None, tuple(shape))


def zeros(shape: tuple) -> Node:
    if shape == ():
        return const(0)
    return make("zeros", (), None, tuple(shape))


def numel(d) -> Node:
    """The number d (a dimension or a product of dimensions) as a scalar."""
    if isinstance(d, int):
        return const(d)
    return make("numel", (), d, ())


def commutation(m, n) -> Node:
    """K with K vec(A) = vec(Aᵀ) for an m×n matrix A."""
    if m == 1 or n == 1:
        return eye(dim_mul(m, n))
    d = dim_mul(m, n)
    return make("K", (), (m, n), (d, d))


def is_zero(n: Node) -> bool:
    return n.op == "zeros" or (n.op == "const" and n.attr == 0)


def is_const(n: Node, v: float | None = None) -> bool:
    return n.op == "const" and (v is None or n.attr == v)


def is_ones(n: Node) -> bool:
    return n.op == "ones" or (n.op == "const" and n.attr == 1) or (n.op == "T" and n.args[0].op == "ones")


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


def _chain(t: Node) -> list[Node]:
    return list(t.args) if t.op == "matmul" else [t]


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
    if all(len(ch) >= 2 for ch in chains):
        first = chains[0][0]
        if all(ch[0] is first for ch in chains):
            return matmul(first, add(*[_scale(c, matmul(*ch[1:])) for (c, _), ch in zip(terms, chains)]))
        last = chains[0][-1]
        if all(ch[-1] is last for ch in chains):
            return matmul(add(*[_scale(c, matmul(*ch[:-1])) for (c, _), ch in zip(terms, chains)]), last)
    return None


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
    out.sort(key=_term_key)
    return make("add", tuple(out), None, shape)


_TERM_RANK = {"matmul": 0, "mul": 0, "var": 2, "T": 2, "const": 3}


def _term_key(t: Node) -> tuple:
    """Order of a sum's terms: positive before negative, products before leaves (X W + b)."""
    c, b = _split_coef(t)
    return (c < 0, _TERM_RANK.get(b.op, 1), sort_key(b))


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

    def rest_shape(skip):
        s = ()
        for j, g in enumerate(others):
            if j != skip and g is not None:
                s = broadcast_shape(s, g.shape)
        return s

    for i, f in enumerate(others):  # exp(z) * sigmoid(-z) = sigmoid(z)
        if f.op == "fn" and f.attr == "sigmoid":
            for j, g in enumerate(others):
                if g is not None and g.op == "fn" and g.attr == "exp" and g.args[0] is neg(f.args[0]):
                    others[i], others[j] = fn("sigmoid", g.args[0]), None
                    break
    others = [f for f in others if f is not None]
    for i, f in enumerate(others):  # ones(m) @ v.T (v over rows) is v where another factor spans the shape
        v = _row_broadcast(f)
        if v is not None and rest_shape(i) == shape:
            others[i] = v
    for i, f in enumerate(others):  # drop ones where the other factors already span the shape
        if is_ones(f) and rest_shape(i) == shape:
            others[i] = None
    others = [f for f in others if f is not None]
    if not others:
        return bcast(const(coef), shape)
    others.sort(key=lambda f: (f.shape != (), sort_key(f)))
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
        if e == -1 and _one_plus_exp(a) is not None:  # 1 / (1 + exp(u)) = sigmoid(-u)
            return fn("sigmoid", neg(_one_plus_exp(a)))
        if a.op == "pow" and a.args[1].op == "const" and float(e).is_integer():
            return pow_(a.args[0], const(a.args[1].attr * e))
        if a.op == "mul" and float(e).is_integer() and a.args[0].op == "const":
            return mul(pow_(a.args[0], b), pow_(make("mul", a.args[1:], None, a.shape)
                                                 if len(a.args) > 2 else a.args[1], b))
    return make("pow", (a, b), None, shape)


def _chain_shape(fs: list[Node]) -> tuple:
    r, c = as_2d(fs[0].shape)
    for f in fs[1:]:
        fr, fc = as_2d(f.shape)
        if fr != c:
            _fail("@", *fs)
        c = fc
    first, last = fs[0].shape, fs[-1].shape
    if len(last) == 1:
        return () if r == 1 and len(first) == 2 else (r,)
    if len(first) == 1 and r != 1:
        return (r, c)
    if r == 1 and c == 1:
        return ()
    return (r, c)


def _is_row(f: Node) -> bool:
    return len(f.shape) == 2 and f.shape[0] == 1


def _kron_parts(f: Node):
    return f.args if f.op == "kron" else None


def matmul(*factors: Node) -> Node:
    """Matrix product; scalar factors become a coefficient, identities are dropped."""
    flat: list[Node] = []
    for f in factors:
        if f is None:
            continue
        flat.extend(f.args if f.op == "matmul" else (f,))
    scalars: list[Node] = []
    chain: list[Node] = []
    for f in flat:
        if f.shape == ():
            scalars.append(f)
        elif f.op == "mul" and any(g.shape == () for g in f.args):
            inner = [g for g in f.args if g.shape != ()]
            s = ()
            for g in inner:
                s = broadcast_shape(s, g.shape)
            if s == f.shape:
                scalars.extend(g for g in f.args if g.shape == ())
                chain.append(inner[0] if len(inner) == 1 else make("mul", tuple(inner), None, s))
            else:
                chain.append(f)
        else:
            chain.append(f)
    if not chain:
        return mul(*scalars) if scalars else const(1)
    shape = _chain_shape(chain)
    if any(is_zero(f) for f in chain) or any(is_zero(s) for s in scalars):
        return zeros(shape)
    if len(chain) > 1:
        kept = [f for f in chain if f.op != "eye"]
        chain = kept or chain[:1]
    chain, inner = _inner_products(chain)
    scalars.extend(inner)
    chain = _rewrite_chain(chain)
    if len(chain) == 1:
        out = chain[0]
        if out.shape != shape:
            out = bcast(out, shape) if out.shape == () else out
    else:
        out = make("matmul", tuple(chain), None, shape)
    return mul(*scalars, out) if scalars else out


def _inner_products(chain: list[Node]) -> tuple[list[Node], list[Node]]:
    """Take the scalars out of a product: in b uᵀ A v cᵀ the factor uᵀ A v is a number, so the
    product is (uᵀ A v) b cᵀ (and its text parses: a number is no operand of @)."""
    inner = []
    changed = True
    while changed and len(chain) > 2:
        changed = False
        for i, f in enumerate(chain):
            if len(f.shape) == 2 and f.shape[0] == 1:
                j = next((k for k in range(i + 1, len(chain)) if len(chain[k].shape) == 1), None)
                if j is not None and (i, j) != (0, len(chain) - 1):
                    inner.append(make("matmul", tuple(chain[i:j + 1]), None, ()))
                    chain = chain[:i] + chain[j + 1:]
                    changed = True
                    break
    return chain, inner


def _rewrite_chain(chain: list[Node]) -> list[Node]:
    """Local rewrites of adjacent factors: diag·diag, kron·kron, a trailing ones vector."""
    changed = True
    while changed and len(chain) > 1:
        changed = False
        for i in range(len(chain) - 1):
            a, b = chain[i], chain[i + 1]
            new = None
            if a.op == "diag" and b.op == "diag":
                new = diag(mul(a.args[0], b.args[0]))
            elif a.op == "kron" and b.op == "kron":
                (p, q), (r, s) = a.args, b.args
                if as_2d(p.shape)[1] == as_2d(r.shape)[0] and as_2d(q.shape)[1] == as_2d(s.shape)[0]:
                    new = kron(matmul(p, r), matmul(q, s))
            elif a.op == "kron" and b.op == "K" and (_is_row(a.args[0]) or _is_row(a.args[1])) \
                    and as_2d(a.args[0].shape)[1] == b.attr[0] and as_2d(a.args[1].shape)[1] == b.attr[1]:
                new = kron(a.args[1], a.args[0])  # (A ⊗ B) K(p, q) = B ⊗ A when A or B is a row
            elif a.op == "K" and b.op == "kron" and (len(b.args[0].shape) == 1 or len(b.args[1].shape) == 1) \
                    and as_2d(b.args[1].shape)[0] == a.attr[0] and as_2d(b.args[0].shape)[0] == a.attr[1]:
                new = kron(b.args[1], b.args[0])  # K(p, q) (C ⊗ D) = D ⊗ C when C or D is a column
            elif a.op == "diag" and len(b.shape) == 1:
                new = mul(a.args[0], b)
            elif b.op == "diag" and len(a.shape) == 2 and a.shape[0] == 1:
                new = mul(a, T(b.args[0]))  # rowᵀ diag(v) = (row ⊙ vᵀ)
            elif i + 1 == len(chain) - 1 and b.op == "ones" and len(b.shape) == 1 and len(a.shape) == 2 and a.shape[0] != 1:
                new = sum_(a.args[0], 0) if a.op == "T" and len(a.args[0].shape) == 2 else sum_(a, 1)
            elif a.op == "ones" and len(a.shape) == 1 and b.op == "T" and b.args[0].op == "ones":
                new = ones((a.shape[0], b.shape[1]))
            if new is not None:
                chain = chain[:i] + _chain(new) + chain[i + 2:]
                changed = True
                break
    return chain


def is_symmetric(n: Node, sym_vars: frozenset = frozenset()) -> bool:
    """True when n equals its transpose by its structure (XᵀX, A + Aᵀ, inv of a symmetric
    matrix, ...); variables named in `sym_vars` are declared symmetric."""
    if len(n.shape) != 2 or n.shape[0] != n.shape[1] or n.shape[0] == 1:
        return False
    if not sym_vars and n._sym is not None:
        return n._sym
    op = n.op
    if op in ("eye", "diag", "ones", "zeros"):
        out = True
    elif op == "var":
        out = n.attr in sym_vars
    elif op in ("inv", "fn", "pow") or (op == "T" and n.args[0].shape == n.shape):
        out = is_symmetric(n.args[0], sym_vars) and (op != "pow" or n.args[1].shape == ())
    elif op == "mul":
        out = all(f.shape == () or is_symmetric(f, sym_vars) for f in n.args)
    elif op == "add":
        ts = list(n.args)
        out = all(is_symmetric(t, sym_vars) or T(t) in ts for t in ts)
    elif op == "matmul":
        fs = n.args
        k = len(fs)
        out = all(T(fs[i]) is fs[k - 1 - i] for i in range(k // 2)) and \
            (k % 2 == 0 or is_symmetric(fs[k // 2], sym_vars))
    else:
        out = False
    if not sym_vars:
        n._sym = out
    return out


def T(a: Node) -> Node:
    """Transpose, pushed through sums, products and inverses down to the leaves."""
    op = a.op
    if a.shape == () or op in ("eye", "diag"):
        return a
    if op in ("inv", "add", "matmul") and is_symmetric(a):
        return a
    if op == "T":
        return a.args[0]
    if op == "zeros":
        return zeros(transpose_shape(a.shape))
    if op == "ones" and len(a.shape) == 2:
        return ones(transpose_shape(a.shape))
    if op == "matmul":
        return matmul(*[T(f) for f in reversed(a.args)])
    if op == "add" and all(t.shape == a.shape for t in a.args):
        return add(*[T(t) for t in a.args])
    if op == "mul" and all(f.shape in (a.shape, ()) for f in a.args):
        return mul(*[T(f) for f in a.args])
    if op == "K":
        m, n = a.attr
        return commutation(n, m)
    if op == "kron":
        return kron(T(a.args[0]), T(a.args[1]))
    return make("T", (a,), None, transpose_shape(a.shape))


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
    if a.op == "fn":
        inner = a.attr
        if (name, inner) in (("log", "exp"), ("exp", "log")):
            return a.args[0]
        if name == inner and name in ("abs", "relu", "sign", "step"):
            return a
    u = _one_plus_exp(a)
    if name == "log" and u is not None:  # log(1 + exp(u)) = softplus(u)
        return fn("softplus", u)
    if name == "log" and a.op == "softmax":  # log softmax(z) = z − logsumexp(z)
        z, axis = a.args[0], a.attr
        lse = logsumexp(z, axis)
        return sub(z, matmul(lse, T(ones((z.shape[1],)))) if axis == 1 else lse)
    if is_zero(a) and name in ("sin", "tan", "tanh", "sqrt", "abs", "relu", "sign", "step"):
        return a
    return make("fn", (a,), name, a.shape)


def _one_plus_exp(a: Node):
    """u if a is 1 + exp(u), else None."""
    if a.op == "add" and len(a.args) == 2:
        c = [t for t in a.args if is_const(t, 1) or t.op == "ones"]
        e = [t for t in a.args if t.op == "fn" and t.attr == "exp"]
        if c and e:
            return e[0].args[0]
    return None


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


def tr(a: Node) -> Node:
    if a.op == "eye":
        return numel(a.shape[0])
    if a.op == "T":
        return tr(a.args[0])
    if is_zero(a):
        return const(0)
    if a.op == "mul" and a.args[0].shape == () and all(f.shape in ((), a.shape) for f in a.args):
        scal = [f for f in a.args if f.shape == ()]
        rest = [f for f in a.args if f.shape != ()]
        if rest:
            return mul(*scal, tr(rest[0] if len(rest) == 1 else make("mul", tuple(rest), None, a.shape)))
    return make("tr", (a,), None, ())


def det(a: Node) -> Node:
    if a.op == "eye":
        return const(1)
    if a.op == "T":
        return det(a.args[0])
    if a.op == "inv":
        return pow_(det(a.args[0]), const(-1))
    return make("det", (a,), None, ())


def logdet(a: Node) -> Node:
    if a.op == "eye":
        return const(0)
    if a.op == "T":
        return logdet(a.args[0])
    if a.op == "inv":
        return neg(logdet(a.args[0]))
    return make("logdet", (a,), None, ())


def inv(a: Node) -> Node:
    if a.op in ("eye",):
        return a
    if a.op == "inv":
        return a.args[0]
    if a.op == "T":
        return T(inv(a.args[0]))
    if a.op == "mul" and len(a.args) == 2 and a.args[0].op == "const" and a.args[0].attr != 0:
        return mul(const(1 / a.args[0].attr), inv(a.args[1]))
    if a.op == "diag":
        return diag(pow_(a.args[0], const(-1)))
    return make("inv", (a,), None, a.shape)


def norm(a: Node) -> Node:
    if a.op == "T":
        return norm(a.args[0])
    return make("norm", (a,), None, ())


def diag(a: Node) -> Node:
    """diag(vector) is a diagonal matrix; diag(square matrix) the vector of its diagonal."""
    if len(a.shape) == 1:
        if a.op == "ones":
            return eye(a.shape[0])
        if a.op == "vec" and a.args[0].op == "ones":
            return eye(a.shape[0])
        return make("diag", (a,), None, (a.shape[0], a.shape[0]))
    if a.shape == ():
        return a
    if a.op == "eye":
        return ones((a.shape[0],))
    if a.op == "diag":
        return a.args[0]
    if a.op == "T":
        return diag(a.args[0])
    return make("diagv", (a,), None, (a.shape[0],))


def softmax(a: Node, axis: int | None = None) -> Node:
    return make("softmax", (a,), axis, a.shape)


def logsumexp(a: Node, axis: int | None = None) -> Node:
    if axis is None:
        return make("logsumexp", (a,), None, ())
    m, n = a.shape
    return make("logsumexp", (a,), axis, (n,) if axis == 0 else (m,))


def vec(a: Node) -> Node:
    """The column-major vectorisation of a matrix (a vector or scalar unchanged)."""
    if a.shape == () or len(a.shape) == 1:
        return a
    if a.shape[0] == 1:
        return T(a)
    if a.op == "T" and len(a.args[0].shape) == 1:
        return a.args[0]
    return make("vec", (a,), None, (shape_numel(a.shape),))


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
