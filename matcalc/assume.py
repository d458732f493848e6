"""Facts a user can declare about variables, applied as rewrites of the expression and result.

- `symmetric`: A = Aᵀ (a square matrix), so `x.T @ A @ x` by x gives `2 A x`.
- `rows_sum_to_one`: every row of Y sums to one (one-hot or probability targets), so
  `sum(Y, axis=1)` is `ones(m)` — softmax cross-entropy then gives `softmax(Z) − Y`.
- `sums_to_one`: the entries of a vector y sum to one (one sample's target), so `sum(y)` is 1 —
  `-y.T @ log(softmax(W @ x))` by W then gives `(softmax(W @ x) - y) @ x.T`.
"""
from __future__ import annotations

from . import simplify as S
from .errors import MatcalcError
from .expr import Node, fmt_shape

FACTS = ("symmetric", "rows_sum_to_one", "sums_to_one")


def parse_facts(assume=None, symmetric=None) -> list[tuple[str, str]]:
    """Normalise `assume` (\"fact=Name\", a list of those, or {fact: names}) and `symmetric`."""
    facts: list[tuple[str, str]] = []

    def names(v):
        if isinstance(v, str):
            return [x.strip() for x in v.split(",") if x.strip()]
        try:
            return [str(x) for x in v]
        except TypeError:
            raise MatcalcError(f"assume: {v!r} is not a variable name or a list of names") from None

    if assume:
        items = assume.items() if isinstance(assume, dict) else None
        if items is None:
            items = []
            for a in ([assume] if isinstance(assume, str) else assume):
                if not isinstance(a, str) or "=" not in a:
                    raise MatcalcError(f"assume: write FACT=NAME (e.g. rows_sum_to_one=Y), not {a!r}")
                k, v = a.split("=", 1)
                items.append((k.strip(), v))
        for k, v in items:
            if k not in FACTS:
                raise MatcalcError(f"assume: unknown fact {k!r}; known facts: {', '.join(FACTS)}")
            facts += [(k, n) for n in names(v)]
    if symmetric:
        facts += [("symmetric", n) for n in names(symmetric)]
    return facts


def make_rewrite(facts: list[tuple[str, str]], var_shapes: dict):
    """A rewrite function for `simplify.rebuild`, or None when there are no facts."""
    if not facts:
        return None
    sym, rows, total = set(), {}, set()
    for fact, name in facts:
        shape = var_shapes.get(name)
        if shape is None:
            raise MatcalcError(f"assume: {name} is not a variable of the expression")
        if fact == "symmetric":
            if len(shape) != 2 or shape[0] != shape[1]:
                raise MatcalcError(f"assume: {name} is {fmt_shape(shape)}; only a square matrix can be symmetric")
            sym.add(name)
        elif fact == "sums_to_one":
            if len(shape) != 1:
                hint = "; use rows_sum_to_one for a matrix" if len(shape) == 2 else ""
                raise MatcalcError(f"assume: {name} is {fmt_shape(shape)}; sums_to_one needs a vector{hint}")
            total.add(name)
        else:
            if len(shape) != 2:
                hint = "; use sums_to_one for a vector" if len(shape) == 1 else ""
                raise MatcalcError(f"assume: {name} is {fmt_shape(shape)}; rows_sum_to_one needs a matrix{hint}")
            rows[name] = shape

    sym_vars = frozenset(sym)

    def rewrite(n: Node):
        if n.op == "T" and S.is_symmetric(n.args[0], sym_vars):
            return n.args[0]
        if n.op == "sum" and n.attr is None and n.args[0].op == "var" and n.args[0].attr in total:
            return S.const(1)
        if n.op == "sum" and n.args[0].op == "var" and n.args[0].attr in rows:
            m, _ = rows[n.args[0].attr]
            if n.attr == 1:
                return S.ones((m,))
            if n.attr is None:
                return S.numel(m)
        return None

    return rewrite
