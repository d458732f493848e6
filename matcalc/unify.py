"""Dimensions by unification: a small union-find over dimension variables, ints and products."""
from __future__ import annotations

class DimVar:
    """A dimension not known yet; `rigid` ones carry a user's name and never merge with another name."""

    __slots__ = ("name", "rigid")

    def __init__(self, name: str, rigid: bool = False):
        self.name, self.rigid = name, rigid

    def __repr__(self):
        return self.name

class Unifier:
    """Union-find over dimensions (DimVar, int, or ('*', ...) products)."""

    def __init__(self):
        self.parent: dict[DimVar, object] = {}

    def find(self, d):
        root = d
        while isinstance(root, DimVar) and root in self.parent:
            root = self.parent[root]
        while d is not root and isinstance(d, DimVar) and d in self.parent:  # path compression:
            self.parent[d], d = root, self.parent[d]                       # a sum of N terms is linear
        return root

    def resolve(self, d):
        if isinstance(d, tuple):
            fs = []
            for f in d[1:]:  # flat: a factor bound to a product contributes its factors
                f = self.resolve(f)
                fs.extend(f[1:] if isinstance(f, tuple) else (f,))
            if all(isinstance(f, int) for f in fs):
                k = 1
                for f in fs:
                    k *= f
                return k
            return ("*", *sorted((f for f in fs), key=repr))
        return self.find(d)

    def unify(self, a, b) -> bool:
        raw_a, raw_b = a, b
        a, b = self.resolve(a), self.resolve(b)
        if a is b or a == b:
            return True
        if isinstance(a, tuple) or isinstance(b, tuple):
            return self._unify_products(a, b) or self._unify_factorwise(raw_a, raw_b)
        if isinstance(a, DimVar) and not a.rigid:
            self.parent[a] = b
            return True
        if isinstance(b, DimVar) and not b.rigid:
            self.parent[b] = a
            return True
        if isinstance(a, DimVar) and isinstance(b, int):
            self.parent[a] = b
            return True
        if isinstance(b, DimVar) and isinstance(a, int):
            self.parent[b] = a
            return True
        return False

    def _unify_factorwise(self, a, b) -> bool:
        """m·p = n·q with nothing to cancel: the factors in the order written (kron(A, X) square
        when A and X are), if every pair can agree."""
        if not (isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b)):
            return False
        pairs = [(self.resolve(x), self.resolve(y)) for x, y in zip(a[1:], b[1:])]
        if not all(x == y or (isinstance(x, DimVar) and not x.rigid) or (isinstance(y, DimVar) and not y.rigid)
                   for x, y in pairs):
            return False
        return all(self.unify(x, y) for x, y in pairs)

    def _unify_products(self, a, b) -> bool:
        """m·n = n·?: cancel the common factors, then the one factor left on each side must agree."""
        fa = list(a[1:]) if isinstance(a, tuple) else [a]
        fb = list(b[1:]) if isinstance(b, tuple) else [b]
        ka = kb = 1
        for f in list(fa):
            if isinstance(f, int):
                ka *= f
                fa.remove(f)
        for f in list(fb):
            if isinstance(f, int):
                kb *= f
                fb.remove(f)
        for f in list(fa):
            if any(g is f for g in fb):
                fa.remove(f)
                fb.remove(next(g for g in fb if g is f))
        if not fa and not fb:
            return ka == kb
        if len(fa) == 1 and len(fb) == 1 and ka == kb:
            return self.unify(fa[0], fb[0])
        for one, other in ((fa, fb), (fb, fa)):  # an unknown dimension is the product of the others
            if len(one) == 1 and isinstance(one[0], DimVar) and not one[0].rigid and len(other) > 1 \
                    and ka == 1 and kb == 1:
                self.parent[one[0]] = ("*", *other)
                return True
        if len(fa) == 1 and not fb and isinstance(fa[0], DimVar) and kb % ka == 0:
            return self.unify(fa[0], kb // ka)
        if len(fb) == 1 and not fa and isinstance(fb[0], DimVar) and ka % kb == 0:
            return self.unify(fb[0], ka // kb)
        for one, k1, other, k2 in ((fa, ka, fb, kb), (fb, kb, fa, ka)):
            # an unknown dimension is the product of the others: p = m·n (vec(X) against a vector)
            if len(one) == 1 and k1 == 1 and isinstance(one[0], DimVar) and not one[0].rigid and other:
                self.parent[one[0]] = ("*", *([k2] if k2 != 1 else []), *other)
                return True
        return False
