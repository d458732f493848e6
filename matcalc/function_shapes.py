"""The shape rule of each function of the language: `c_<name>(r, shapes)` checks the argument
shapes of a call (a `Raw` node) and returns the result's shape; every mismatch is a `ShapeError`
naming the function and the operands' shapes.  `Typer` (shapes.py) mixes these in."""
from __future__ import annotations

from .errors import ShapeError


class FunctionShapes:
    """The per-function shape rules of `Typer` (the methods use its unifier and messages)."""

    def c_elementwise(self, r, shapes):
        return shapes[0]

    def _need_square(self, r, s):
        if len(s) != 2 or self.is_one(s[0]):
            raise ShapeError(f"{r.attr}({self.src(r.args[0])}): {r.attr} needs a square matrix, but "
                             f"{self.describe(r.args[0])}")
        if not self.unify(s[0], s[1]):
            raise ShapeError(f"{r.attr}({self.src(r.args[0])}): {r.attr} needs a square matrix, but "
                             f"{self.describe(r.args[0])}")

    def c_sum(self, r, shapes):
        s = shapes[0]
        if r.axis is None or s == ():
            return ()
        if len(s) == 1:
            if r.axis == 1:
                raise ShapeError(f"{self.src(r)}: {self.describe(r.args[0])}; a vector has no axis 1")
            return ()
        if self.is_one(s[1 - r.axis]):  # the column sums of an m×1 column, the row sums of a row
            return ()
        if r.keepdims:
            return (1, s[1]) if r.axis == 0 else (s[0], 1)
        return (s[1],) if r.axis == 0 else (s[0],)

    c_mean = c_sum

    def c_len(self, r, shapes):
        """len(x), rows(X), cols(X): a dimension as a scalar value."""
        s, name = shapes[0], r.attr
        if name == "len" and len(s) == 1:
            r.dims = (s[0],)
        elif name in ("rows", "cols") and len(s) == 2:
            r.dims = (s[0] if name == "rows" else s[1],)
        else:
            raise ShapeError(f"{self.src(r)}: len() takes a vector, rows() and cols() a matrix, but "
                             f"{self.describe(r.args[0])}")
        return ()

    c_rows = c_cols = c_len

    def c_tr(self, r, shapes):
        self._need_square(r, shapes[0])
        return ()

    c_det = c_logdet = c_tr

    def c_inv(self, r, shapes):
        self._need_square(r, shapes[0])
        return shapes[0]

    def c_norm(self, r, shapes):
        if len(r.args) == 2:
            p = r.args[1]
            if p.op != "num" or p.attr not in (1, 2):
                raise ShapeError(f"{self.src(r)}: the order of a norm is 1 or 2")
            if p.attr == 1 and len(shapes[0]) == 2 and not self.is_one(shapes[0][0]):
                raise ShapeError(f"{self.src(r)}: norm(x, 1) takes a vector, but {self.describe(r.args[0])} "
                                 f"(for the sum of absolute entries write sum(abs(...)))")
        return ()

    def c_dot(self, r, shapes):
        sa, sb = shapes
        a, b = r.args
        if len(sa) != 1 or len(sb) != 1:
            bad = a if len(sa) != 1 else b
            raise ShapeError(f"{self.src(r)}: dot takes two vectors, but {self.describe(bad)}")
        if not self.unify(sa[0], sb[0]):
            raise ShapeError(f"{self.src(r)}: {self.describe(a)} but {self.describe(b)}")
        return ()

    def c_diag(self, r, shapes):
        s = shapes[0]
        if len(s) == 1:
            return (s[0], s[0])
        if s == ():
            raise ShapeError(f"{self.src(r)}: diag takes a vector or a square matrix, but {self.describe(r.args[0])}")
        self._need_square(r, s)
        return (s[0],)

    def c_softmax(self, r, shapes):
        s = shapes[0]
        if len(s) == 1 and r.axis in (None, 0):
            r.axis = None
            return s
        if len(s) == 2 and r.axis is not None and not self.is_one(s[0]):
            return s
        raise ShapeError(f"{self.src(r)}: {r.attr} takes a vector, or a matrix with axis=0 or axis=1, "
                         f"but {self.describe(r.args[0])}")

    def c_logsumexp(self, r, shapes):
        s = self.c_softmax(r, shapes)
        if r.axis is None:
            return ()
        return (s[1],) if r.axis == 0 else (s[0],)

    def c_vec(self, r, shapes):
        s = shapes[0]
        if len(s) < 2:
            return s
        if self.is_one(s[0]):
            return (s[1],)
        return (("*", s[0], s[1]),)

    def c_unvec(self, r, env):
        """unvec(v, m, n): the m×n matrix whose column-major vec is v (v has m·n entries)."""
        s = self.type(r.args[0], env)
        m, n = r.dims = tuple(self.dim_arg(a) for a in r.args[1:])
        if len(s) != 1 or not self.unify(s[0], ("*", m, n)):
            raise ShapeError(f"{self.src(r)}: unvec(v, m, n) takes a vector of m·n entries, but "
                             f"{self.describe(r.args[0])}")
        if self.is_one(m):
            return (n,) if self.is_one(n) else (1, n)
        return (m, n)

    def c_kron(self, r, shapes):
        (sa, sb) = shapes
        if sa == () or sb == ():
            return sb if sa == () else sa
        a2 = sa if len(sa) == 2 else (sa[0], 1)
        b2 = sb if len(sb) == 2 else (sb[0], 1)
        rows, cols = ("*", a2[0], b2[0]), ("*", a2[1], b2[1])
        if self.u.resolve(cols) == 1:
            return (rows,)
        if self.u.resolve(rows) == 1:
            return (1, cols)
        return (rows, cols)

    # ---- final dimensions
