"""The simplifier's identities: a table of named local rewrites, each with the equation it
implements, dispatched by the operator whose smart constructor applies it.

A constructor (in `simplify`) first flattens, folds constants and drops zeros and identity
matrices; then it asks `apply(op, ...)` for the first identity of its operator that rewrites
its arguments; only if none does it builds the node. The arguments an identity receives:

    "T", "det", "logdet", "inv", "tr", "norm", "diag", "vec":  (a,)      the operand
    "fn":      (name, a)        an element-wise function and its operand
    "pow":     (a, b)           base and exponent (b a constant)
    "add":     (pairs,)         a sum's terms as (number, base) pairs (a list; returns a new list)
    "mul":     (factors,)       the factors of a Hadamard product (a list; returns a new list)
    "matmul":  (a, b, last)     two adjacent factors of a matrix product (`last`: b ends it);
                                returns the node that replaces `a @ b`
    "kron":    (a, b)

Each identity carries an `example`: an expression in the input language on which it fires; a
test generated from this table (tests/test_identities.py) builds each example with and without
the identity and checks that both evaluate to the same numbers at random values.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Callable, Iterator

from . import simplify as S
from .expr import Node, as_2d, make
from .records import Record


class Identity(Record):
    """One rewrite: `rewrite(*args)` is the replacement, or None where it does not apply."""

    name: str
    op: str
    equation: str
    rewrite: Callable
    example: str = ""
    shapes: dict | None = None
    #: names whose sample values must be positive / invertible matrices
    domain: dict
    _factories = {"domain": dict}
    _hidden = frozenset({"rewrite"})


TABLE: dict[str, list[Identity]] = {}
_OFF: contextvars.ContextVar[frozenset] = contextvars.ContextVar("matcalc_identities_off", default=frozenset())


def identity(op: str, equation: str, *, example: str, shapes: dict | None = None, domain: dict | None = None):
    """Register the decorated function as the identity `equation` of operator `op`."""
    def deco(fn: Callable) -> Callable:
        TABLE.setdefault(op, []).append(Identity(fn.__name__, op, equation, fn, example, shapes, domain or {}))
        return fn
    return deco


def apply(op: str, *args):
    """The result of the first identity of `op` that applies to `args`, else None."""
    for rule in TABLE.get(op, ()):
        out = rule.rewrite(*args)
        if out is not None and rule.name not in _OFF.get():
            return out
    return None


def all_identities() -> list[Identity]:
    return [r for rules in TABLE.values() for r in rules]


@contextlib.contextmanager
def disabled(*names: str) -> Iterator[None]:
    """Build without the named identities (in this thread; for the table's own test). Per-node
    caches of the constructors are bypassed meanwhile, so nothing built here is remembered."""
    token = _OFF.set(_OFF.get() | frozenset(names))
    try:
        yield
    finally:
        _OFF.reset(token)


def active() -> bool:
    """True unless some identity is disabled (then per-node caches must not be used)."""
    return not _OFF.get()


def _is_row(f: Node) -> bool:
    return len(f.shape) == 2 and f.shape[0] == 1


# ----------------------------------------------------------------------------- transpose

@identity("T", "Aᵀ = A for a structurally symmetric A (XᵀX, A + Aᵀ, inv of a symmetric matrix)",
          example="inv(X.T @ X).T", shapes={"X": ("n", "n")}, domain={"X": "invertible"})
def symmetric_transpose(a):
    return a if a.op in ("inv", "add", "matmul") and S.is_symmetric(a) else None


@identity("T", "(Aᵀ)ᵀ = A", example="X.T.T")
def transpose_involution(a):
    return a.args[0] if a.op == "T" else None


@identity("T", "(AB)ᵀ = BᵀAᵀ", example="(A @ B).T")
def transpose_product(a):
    return S.matmul(*[S.T(f) for f in reversed(a.args)]) if a.op == "matmul" else None


@identity("T", "(A + B)ᵀ = Aᵀ + Bᵀ", example="(A + B).T", shapes={"A": ("m", "n"), "B": ("m", "n")})
def transpose_sum(a):
    if a.op == "add" and all(t.shape == a.shape for t in a.args):
        return S.add(*[S.T(t) for t in a.args])
    return None


@identity("T", "(A ⊙ B)ᵀ = Aᵀ ⊙ Bᵀ", example="(A * B).T", shapes={"A": ("m", "n"), "B": ("m", "n")})
def transpose_hadamard(a):
    if a.op == "mul" and all(f.shape in (a.shape, ()) for f in a.args):
        return S.mul(*[S.T(f) for f in a.args])
    return None


@identity("T", "K(m, n)ᵀ = K(n, m)", example="commutation(2, 3).T")
def transpose_commutation(a):
    return S.commutation(a.attr[1], a.attr[0]) if a.op == "K" else None


@identity("T", "(A ⊗ B)ᵀ = Aᵀ ⊗ Bᵀ", example="kron(A, B).T", shapes={"A": ("m", "n"), "B": ("p", "q")})
def transpose_kron(a):
    return S.kron(S.T(a.args[0]), S.T(a.args[1])) if a.op == "kron" else None


# ----------------------------------------------------------------------------- element-wise functions

@identity("fn", "log(exp x) = x, exp(log x) = x (the registry's inverse=)", example="log(exp(x)) + exp(log(y))",
          shapes={"x": ("n",), "y": ("n",)}, domain={"y": "positive"})
def inverse_functions(name, a):
    from .ops import registry
    return a.args[0] if a.op == "fn" and registry.fn(name).inverse == a.attr else None


@identity("fn", "f(f(x)) = f(x) for f in abs, relu, sign, step (the registry's idempotent=)",
          example="abs(abs(x)) + relu(relu(x))")
def idempotent_function(name, a):
    from .ops import registry
    return a if a.op == "fn" and name == a.attr and registry.fn(name).idempotent else None


def one_plus_exp(a: Node):
    """u if a is 1 + exp(u), else None."""
    if a.op == "add" and len(a.args) == 2:
        c = [t for t in a.args if S.is_const(t, 1) or t.op == "ones"]
        e = [t for t in a.args if t.op == "fn" and t.attr == "exp"]
        if c and e:
            return e[0].args[0]
    return None


@identity("fn", "log(1 + eᵘ) = softplus(u)", example="log(1 + exp(x))")
def log_one_plus_exp(name, a):
    u = one_plus_exp(a) if name == "log" else None
    return None if u is None else S.fn("softplus", u)


@identity("fn", "log softmax(z) = z − logsumexp(z) (by rows: z − logsumexp(z, axis=1) 1ᵀ)",
          example="log(softmax(x)) + log(softmax(X, axis=1)) @ y + log(softmax(X, axis=0)) @ y",
          shapes={"x": ("m",), "X": ("m", "n"), "y": ("n",)})
def log_softmax(name, a):
    if name != "log" or a.op != "softmax":
        return None
    z, axis = a.args[0], a.attr
    lse = S.logsumexp(z, axis)
    return S.sub(z, S.matmul(lse, S.T(S.ones((z.shape[1],)))) if axis == 1 else lse)


# ----------------------------------------------------------------------------- sums (linearity)

def _merge(pairs: list, op: str, rebuild) -> list | None:
    """c₁ f(A) + c₂ f(B) + … = f(c₁A + c₂B + …) for the terms f(·) = `op` with equal operand
    shapes (and equal attr: the axis of a sum); None if no two terms merge."""
    groups: dict = {}
    for c, b in pairs:
        if b.op == op:
            groups.setdefault((b.attr, b.args[0].shape, b.shape), []).append((c, b))
    if all(len(g) < 2 for g in groups.values()):
        return None
    out = [(c, b) for c, b in pairs if b.op != op]
    for g in groups.values():
        if len(g) == 1:
            out.extend(g)
        else:
            out.append(S._split_coef(rebuild(S.add(*[S._scale(c, b.args[0]) for c, b in g]), g[0][1])))
    return out


@identity("add", "c₁ sum(A, axis) + c₂ sum(B, axis) = sum(c₁A + c₂B, axis)",
          example="sum(X, axis=0) - 2 * sum(Y, axis=0) + x", shapes={"X": ("m", "n"), "Y": ("m", "n"), "x": ("n",)})
def sum_linearity(pairs):
    return _merge(pairs, "sum", lambda a, b: S.sum_(a, b.attr, keepdims=len(b.shape) == 2))


@identity("add", "c₁ diag(a) + c₂ diag(b) = diag(c₁a + c₂b)", example="diag(x) - 2 * diag(y) + A",
          shapes={"x": ("n",), "y": ("n",), "A": ("n", "n")})
def diag_linearity(pairs):
    return _merge(pairs, "diag", lambda a, b: S.diag(a))


# ----------------------------------------------------------------------------- powers and products

@identity("pow", "1 / (1 + eᵘ) = σ(−u)", example="1 / (1 + exp(x))")
def sigmoid_of_minus(a, b):
    if b.op == "const" and b.attr == -1:
        u = one_plus_exp(a)
        if u is not None:
            return S.fn("sigmoid", S.neg(u))
    return None


@identity("pow", "(aᵖ)^q = a^(pq) for an integer q", example="(x ** 3) ** 2 + (y ** 0.5) ** 4",
          shapes={"x": ("n",), "y": ("n",)}, domain={"y": "positive"})
def power_of_power(a, b):
    if b.op == "const" and a.op == "pow" and a.args[1].op == "const" and float(b.attr).is_integer():
        return S.pow_(a.args[0], S.const(S.times(a.args[1].attr, b.attr)))
    return None


@identity("pow", "(c A)^q = c^q A^q for a number c and an integer q", example="(3 * x) ** 2")
def power_of_scaled(a, b):
    if b.op == "const" and a.op == "mul" and float(b.attr).is_integer() and a.args[0].op == "const":
        rest = make("mul", a.args[1:], None, a.shape) if len(a.args) > 2 else a.args[1]
        return S.mul(S.pow_(a.args[0], b), S.pow_(rest, b))
    return None


@identity("mul", "eᶻ ⊙ σ(−z) = σ(z)", example="exp(x) * sigmoid(-x) * y")
def exp_times_sigmoid(factors):
    exps = {id(g.args[0]): j for j, g in enumerate(factors) if g.op == "fn" and g.attr == "exp"}
    if not exps:
        return None
    out, changed = list(factors), False
    for i, f in enumerate(out):
        if f is not None and f.op == "fn" and f.attr == "sigmoid":
            j = exps.get(id(S.neg(f.args[0])))
            if j is not None and out[j] is not None:
                out[i], out[j], changed = S.fn("sigmoid", out[j].args[0]), None, True
    return [f for f in out if f is not None] if changed else None


# ----------------------------------------------------------------------------- matrix products (adjacent pairs)

@identity("matmul", "diag(a) diag(b) = diag(a ⊙ b)", example="diag(x) @ diag(y) @ A",
          shapes={"x": ("n",), "y": ("n",), "A": ("n", "n")})
def diag_diag(a, b, last):
    return S.diag(S.mul(a.args[0], b.args[0])) if a.op == "diag" and b.op == "diag" else None


@identity("matmul", "(A ⊗ B)(C ⊗ D) = AC ⊗ BD", example="kron(A, B) @ kron(C, D)",
          shapes={"A": ("m", "n"), "B": ("p", "q"), "C": ("n", "r"), "D": ("q", "s")})
def kron_kron(a, b, last):
    if a.op == "kron" and b.op == "kron":
        (p, q), (r, s) = a.args, b.args
        if as_2d(p.shape)[1] == as_2d(r.shape)[0] and as_2d(q.shape)[1] == as_2d(s.shape)[0]:
            return S.kron(S.matmul(p, r), S.matmul(q, s))
    return None


@identity("matmul", "(A ⊗ B) K(p, q) = B ⊗ A when A or B is a row", example="kron(x.T, A) @ commutation(n, m)",
          shapes={"x": ("n",), "A": ("p", "m")})
def kron_commutation(a, b, last):
    if a.op == "kron" and b.op == "K" and (_is_row(a.args[0]) or _is_row(a.args[1])) \
            and as_2d(a.args[0].shape)[1] == b.attr[0] and as_2d(a.args[1].shape)[1] == b.attr[1]:
        return S.kron(a.args[1], a.args[0])
    return None


@identity("matmul", "K(p, q) (C ⊗ D) = D ⊗ C when C or D is a column", example="commutation(m, n) @ kron(x, A)",
          shapes={"x": ("n",), "A": ("m", "p")})
def commutation_kron(a, b, last):
    if a.op == "K" and b.op == "kron" and (len(b.args[0].shape) == 1 or len(b.args[1].shape) == 1) \
            and as_2d(b.args[1].shape)[0] == a.attr[0] and as_2d(b.args[0].shape)[0] == a.attr[1]:
        return S.kron(b.args[1], b.args[0])
    return None


@identity("matmul", "diag(a) v = a ⊙ v", example="A @ diag(x) @ y", shapes={"x": ("n",), "y": ("n",), "A": ("m", "n")})
def diag_vector(a, b, last):
    return S.mul(a.args[0], b) if a.op == "diag" and len(b.shape) == 1 else None


@identity("matmul", "rowᵀ diag(v) = row ⊙ vᵀ", example="y.T @ diag(x) @ A", shapes={"x": ("n",), "y": ("n",), "A": ("n", "m")})
def row_diag(a, b, last):
    return S.mul(a, S.T(b.args[0])) if b.op == "diag" and _is_row(a) else None


@identity("matmul", "A 1 = sum(A, axis=1) (a product ending in ones)", example="B @ A @ ones(n)",
          shapes={"A": ("m", "n"), "B": ("p", "m")})
def trailing_ones(a, b, last):
    if last and b.op == "ones" and len(b.shape) == 1 and len(a.shape) == 2 and a.shape[0] != 1:
        return S.sum_(a.args[0], 0) if a.op == "T" and len(a.args[0].shape) == 2 else S.sum_(a, 1)
    return None


@identity("matmul", "1ₘ 1ₙᵀ = ones(m, n)", example="ones(n) @ ones(n).T + A @ A.T", shapes={"A": ("n", "p")})
def outer_ones(a, b, last):
    if a.op == "ones" and len(a.shape) == 1 and b.op == "T" and b.args[0].op == "ones":
        return S.ones((a.shape[0], b.shape[1]))
    return None


# ----------------------------------------------------------------------------- matrix functions

@identity("det", "det(Xᵀ) = det(X)", example="det(X.T)")
def det_transpose(a):
    return S.det(a.args[0]) if a.op == "T" else None


@identity("det", "det(cX) = cⁿ det(X) for a number c and an n×n X", example="det(3 * X) + det(-X)")
def det_scaled(a):
    if a.op == "mul" and len(a.args) == 2 and a.args[0].op == "const" and a.args[1].shape == a.shape:
        return S.mul(S.pow_(a.args[0], S.numel(a.shape[0])), S.det(a.args[1]))
    return None


@identity("det", "det(X⁻¹) = 1 / det(X)", example="det(inv(X))", domain={"X": "invertible"})
def det_inverse(a):
    return S.pow_(S.det(a.args[0]), S.const(-1)) if a.op == "inv" else None


@identity("logdet", "logdet(Xᵀ) = logdet(X)", example="logdet(X.T)", domain={"X": "positive definite"})
def logdet_transpose(a):
    return S.logdet(a.args[0]) if a.op == "T" else None


@identity("logdet", "logdet(X⁻¹) = −logdet(X)", example="logdet(inv(X))", domain={"X": "positive definite"})
def logdet_inverse(a):
    return S.neg(S.logdet(a.args[0])) if a.op == "inv" else None


@identity("inv", "(X⁻¹)⁻¹ = X", example="inv(inv(X))", domain={"X": "invertible"})
def inverse_involution(a):
    return a.args[0] if a.op == "inv" else None


@identity("inv", "(Xᵀ)⁻¹ = (X⁻¹)ᵀ", example="inv(X.T)", domain={"X": "invertible"})
def inverse_transpose(a):
    return S.T(S.inv(a.args[0])) if a.op == "T" else None


@identity("inv", "(c X)⁻¹ = X⁻¹ / c", example="inv(3 * X)", domain={"X": "invertible"})
def inverse_scaled(a):
    if a.op == "mul" and len(a.args) == 2 and a.args[0].op == "const" and a.args[0].attr != 0 \
            and S.is_finite(a.args[0]):
        return S.mul(S.const(S.over(1.0, a.args[0].attr)), S.inv(a.args[1]))
    return None


@identity("inv", "diag(v)⁻¹ = diag(v⁻¹)", example="inv(diag(x))", domain={"x": "positive"})
def inverse_diag(a):
    return S.diag(S.pow_(a.args[0], S.const(-1))) if a.op == "diag" else None


@identity("tr", "tr(Xᵀ) = tr(X)", example="tr(X.T)")
def trace_transpose(a):
    return S.tr(a.args[0]) if a.op == "T" else None


@identity("tr", "tr(c A) = c tr(A) for scalars c", example="tr(a * X)", shapes={"a": (), "X": ("n", "n")})
def trace_of_scaled(a):
    if a.op == "mul" and a.args[0].shape == () and all(f.shape in ((), a.shape) for f in a.args):
        scal = [f for f in a.args if f.shape == ()]
        rest = [f for f in a.args if f.shape != ()]
        if rest:
            return S.mul(*scal, S.tr(rest[0] if len(rest) == 1 else make("mul", tuple(rest), None, a.shape)))
    return None


@identity("norm", "‖xᵀ‖ = ‖x‖", example="norm(x.T) + norm(X.T)")
def norm_transpose(a):
    return S.norm(a.args[0]) if a.op == "T" else None


@identity("diag", "diag(diag(v)) = v (the diagonal of a diagonal matrix)", example="diag(diag(x))")
def diag_of_diag(a):
    return a.args[0] if len(a.shape) == 2 and a.op == "diag" else None


@identity("diag", "diag(Xᵀ) = diag(X)", example="diag(X.T)")
def diag_transpose(a):
    return S.diag(a.args[0]) if len(a.shape) == 2 and a.op == "T" else None
