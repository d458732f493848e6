"""Shape inference: every `Raw` node gets a symbolic shape by unification of dimensions.

Dimensions are ints, rigid names (from `shapes=` or `eye(n)`: two different names never
unify) or fresh variables (from naming defaults), joined by a small union-find.
A vector added to a matrix broadcasts over its rows (numpy's rule).  Every mismatch is a
`ShapeError` naming the operator and both operands' shapes.
"""
from __future__ import annotations

import itertools
import re

from .errors import MatcalcError, ParseError, ShapeError, caret
from .expr import dim_mul
from .function_shapes import FunctionShapes
from .grammar import STAGE, Raw, check_name_length, staged, suggest
from .ops import registry
from .unify import DimVar, Unifier

GREEK = frozenset("alpha beta gamma delta epsilon eta theta kappa lambda mu nu rho sigma tau phi omega".split())
NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
DIM_POOL = ["m", "n", "p", "q", "r", "s", "t", "u", "v", "k", "l", "a", "b", "c", "d", "e", "f", "g", "h"]

#: name -> (min args, max args, takes axis): the registry's functions (ops/) and the constants
FUNCTIONS = {name: (*f.args, f.axis) for name, f in registry.functions().items()}
FUNCTIONS.update({"eye": (1, 1, False), "zeros": (1, 2, False), "ones": (1, 2, False),
                  "commutation": (2, 2, False)})
MAX_DIM = 10**18  # the largest literal dimension (and product of literals printed as one number)
DIM_FUNCTIONS = frozenset({"eye", "zeros", "ones", "commutation"})
#: matrixcalculus.org's functions that matcalc spells differently
MC_FUNCTIONS = {"norm2": (1, 1, False), "norm1": (1, 1, False), "vector": (1, 1, False),
                "matrix": (1, 1, False), "trace": (1, 1, False)}


class Typer(FunctionShapes):
    """Types a Raw tree in place (`raw.shape`), collecting variables and their shapes."""

    def __init__(self, text: str, shapes: dict | None, syntax: str = "matcalc"):
        self.text = text
        self.syntax = syntax
        self.u = Unifier()
        self.rigid: dict[str, DimVar] = {}
        self.declared: dict[str, tuple] = {}
        self.var_shapes: dict[str, tuple] = {}
        self.order: list[str] = []
        self.fresh_count = 0
        for name, dims in (shapes or {}).items():
            if not isinstance(name, str) or not NAME_RE.match(name):
                raise MatcalcError(f"shapes: {name!r} is not a variable name")
            check_name_length(name, "shapes: the variable")
            self.declared[name] = self._declared_shape(name, dims)

    # ---- dimensions
    def _dim(self, d, who: str):
        if isinstance(d, bool):
            raise ShapeError(f"shapes: {who} has a dimension {d!r}; use a name or a positive integer")
        if isinstance(d, int) or (hasattr(d, "__index__") and not isinstance(d, str)):
            d = int(d)
            if d < 1:
                raise ShapeError(f"shapes: {who} has a dimension {d}; dimensions are positive")
            if d > MAX_DIM:
                raise ShapeError(f"shapes: {who} has a dimension over 10**18; use a name for a dimension that large")
            return d
        if isinstance(d, tuple) and len(d) > 1:  # a product of dimensions (the size of vec(X))
            return ("*", *(self._dim(f, who) for f in d))
        if isinstance(d, str) and "*" in d:
            return self._dim(tuple(d.split("*")), who)
        if isinstance(d, str):
            d = d.strip()
            if d.isascii() and (d.isdigit() or (d[:1] in "+-" and d[1:].isdigit())):
                return self._dim(int(d), who)
            if not NAME_RE.match(d):
                raise ShapeError(f"shapes: {who} has a dimension {d!r} that is not a name or an integer")
            check_name_length(d, f"shapes: the dimension of {who}")
            return self.named(d)
        raise ShapeError(f"shapes: {who} has a dimension {d!r}; use a name or a positive integer")

    def named(self, name: str) -> DimVar:
        v = self.rigid.get(name)
        if v is None:
            v = self.rigid[name] = DimVar(name, rigid=True)
        return v

    def _declared_shape(self, name, dims) -> tuple:
        if dims is None or (isinstance(dims, str) and not dims.strip()):
            return ()
        if isinstance(dims, (str, int)):
            dims = tuple(x for x in str(dims).split(",")) if isinstance(dims, str) else (dims,)
        try:
            dims = tuple(dims)
        except TypeError:
            raise ShapeError(f"shapes: {name} has shape {dims!r}; give a tuple of dimensions") from None
        if len(dims) > 2:
            raise ShapeError(f"shapes: {name} has {len(dims)} axes; matcalc handles scalars, vectors and matrices")
        return tuple(self._dim(d, name) for d in dims)

    def fresh(self) -> DimVar:
        """A new unknown dimension; its name (m, n, p, … avoiding the declared names) is what
        messages show; the final names are given again in order of appearance by `finish`."""
        self.fresh_count += 1
        taken = set(self.rigid)
        names = [d for d in DIM_POOL if d not in taken]
        k = self.fresh_count - 1
        name = names[k] if k < len(names) else f"d{k}"
        return DimVar(name)

    #: matrices declared square (symmetric) whose shape is not given: n×n, n inferred
    square: frozenset = frozenset()

    def default_shape(self, name: str) -> tuple:
        if name in self.declared:
            return self.declared[name]
        if name in self.square and name[0].isupper():  # a matrix by its name: square
            d = self.fresh()
            return (d, d)
        if self.syntax == "matrixcalculus":  # its defaults: a–g scalars, h–z vectors, A–Z matrices
            if name[0].isupper():
                return (self.fresh(), self.fresh())
            return () if name[0] in "abcdefg" else (self.fresh(),)
        if name[0].isupper():
            return (self.fresh(), self.fresh())
        if name in GREEK:
            return ()
        return (self.fresh(),)

    # ---- formatting for messages
    def fdim(self, d) -> str:
        d = self.u.resolve(d)
        if isinstance(d, tuple):
            return "·".join(self.fdim(f) for f in d[1:])
        if isinstance(d, DimVar):
            return self.display.get(d, d.name) if hasattr(self, "display") else d.name
        return str(d)

    def fshape(self, s: tuple) -> str:
        if s == ():
            return "a scalar"
        if len(s) == 1:
            return f"has {self.fdim(s[0])} entries"
        if self.u.resolve(s[0]) == 1:
            return f"is a 1×{self.fdim(s[1])} row vector"
        return f"is {self.fdim(s[0])}×{self.fdim(s[1])}"

    def src(self, r: Raw) -> str:
        s = self.text[r.span[0]:r.span[1]].strip()
        return s if len(s) <= 40 else s[:37] + "..."

    def describe(self, r: Raw) -> str:
        s = self.fshape(r.shape)
        return f"{self.src(r)} is {s}" if r.shape == () else f"{self.src(r)} {s}"

    def shape_error(self, what: str, r: Raw, detail: str):
        raise ShapeError(f"{what}: {detail}")

    # ---- helpers
    def is_one(self, d) -> bool:
        return self.u.resolve(d) == 1

    def unify(self, a, b) -> bool:
        return self.u.unify(a, b)

    # ---- typing
    def type(self, r: Raw, env: dict) -> tuple:
        if getattr(r, "typed", False):
            return r.shape
        if r.op != "where" and r.height > STAGE and not self._staging:
            self._staging = True  # type deep subtrees first: the recursion below stays shallow
            try:
                staged(r, lambda n: self.type(n, env), self._kids)
                return self.type(r, env)
            finally:
                self._staging = False
        method = getattr(self, "t_" + r.op)
        r.shape = method(r, env)
        r.typed = True
        return r.shape

    _staging = False

    @staticmethod
    def _kids(r: Raw):
        """The children `type` recurses into (not the dimensions of eye/zeros/ones, nor keywords)."""
        if r.op == "call" and (r.attr in DIM_FUNCTIONS or r.attr in ("vector", "matrix")):
            return ()
        return ((a, 1) for a in r.args)

    def t_num(self, r, env):
        return ()

    def t_var(self, r, env):
        name = r.attr
        if name in env:
            return env[name].shape
        if name not in self.var_shapes:
            if name == "axis":
                raise ParseError(f"axis= is a keyword of sum, softmax and logsumexp\n{caret(self.text, *r.span)}")
            self.var_shapes[name] = self.default_shape(name)
            self.order.append(name)
        return self.var_shapes[name]

    def t_where(self, r, env):
        env = dict(env)
        for name, expr, span in r.attr:
            if name in env:
                raise ParseError(f"where: {name} is bound twice\n{caret(self.text, *span)}")
            self.type(expr, env)
            env[name] = expr
        return self.type(r.args[0], env)

    def _elementwise(self, r, env, sym):
        a, b = r.args
        return self.broadcast(r, [self.type(a, env), self.type(b, env)], sym)

    def broadcast(self, r, shapes, sym):
        """The shape of an element-wise operation of r's two arguments (numpy broadcasting)."""
        a, b = r.args
        sa, sb = shapes
        if sa == ():
            return sb
        if sb == ():
            return sa
        if len(sa) == len(sb) == 2:  # numpy's rule per axis: a 1×n row or an m×1 column broadcasts
            out = []
            for x, y in zip(sa, sb):
                if self.is_one(x) != self.is_one(y):
                    out.append(y if self.is_one(x) else x)
                elif self.unify(x, y):
                    out.append(x)
                else:
                    break
            else:
                return tuple(out)
        elif len(sa) == len(sb):
            if all(self.unify(x, y) for x, y in zip(sa, sb)):
                return sa
        elif len(sa) == 1 and len(sb) == 2 and not self.is_one(sb[0]) and not self.is_one(sb[1]):
            if self.unify(sa[0], sb[1]):
                return sb
        elif len(sb) == 1 and len(sa) == 2 and not self.is_one(sa[0]) and not self.is_one(sa[1]):
            if self.unify(sb[0], sa[1]):
                return sa
        hint = ""
        if {len(sa), len(sb)} == {1, 2} and (self.is_one(sa[-1]) or self.is_one(sb[-1])):
            hint = (" (a vector is a column in matcalc: it does not broadcast against an m×1 column; "
                    "write it as a row with .T for numpy's outer broadcast)")
        elif {len(sa), len(sb)} == {1, 2}:
            hint = " (a vector broadcasts over the rows of a matrix: its length must match the number of columns)"
        elif sym == "*" and len(sa) == len(sb) == 2 and self.u.resolve(sa[1]) == self.u.resolve(sb[0]):
            hint = f"; did you mean {self.src(a)} @ {self.src(b)} (the matrix product)?"
        raise ShapeError(f"{self.src(r)}: {self.describe(a)} but {self.describe(b)}; "
                         f"they do not fit for {sym if sym.isalpha() else repr(sym)}{hint}")

    def t_add(self, r, env):
        return self._elementwise(r, env, "+")

    def t_sub(self, r, env):
        return self._elementwise(r, env, "-")

    def t_mul(self, r, env):
        return self._elementwise(r, env, "*")

    def t_div(self, r, env):
        return self._elementwise(r, env, "/")

    def t_pow(self, r, env):
        return self._elementwise(r, env, "**")

    def t_neg(self, r, env):
        return self.type(r.args[0], env)

    def t_T(self, r, env):
        s = self.type(r.args[0], env)
        if s == ():
            return s
        if len(s) == 1:
            return (1, s[0])
        if self.is_one(s[0]):
            return (s[1],)
        return (s[1], s[0])

    def t_matmul(self, r, env):
        a, b = r.args
        sa, sb = self.type(a, env), self.type(b, env)
        where = self.src(r)
        if sa == () or sb == ():
            s = a if sa == () else b
            raise ShapeError(f"{where}: {self.src(s)} is a scalar; use * to multiply by a scalar")
        if len(sa) == 1:
            if len(sb) == 2 and self.is_one(sb[0]):
                return (sa[0], sb[1])
            if len(sb) == 1:
                raise ShapeError(f"{where}: {self.describe(a)} and {self.describe(b)}: both are column "
                                 f"vectors; did you mean {self.src(a)}.T @ {self.src(b)} (inner product) "
                                 f"or {self.src(a)} @ {self.src(b)}.T (outer product)?")
            raise ShapeError(f"{where}: {self.describe(a)} but {self.describe(b)}: a column vector "
                             f"times a matrix is undefined; did you mean {self.src(a)}.T @ {self.src(b)}?")
        if not self.unify(sa[1], sb[0]):
            raise ShapeError(f"{where}: {self.describe(a)} but {self.describe(b)}")
        if len(sb) == 1:
            return () if self.is_one(sa[0]) else (sa[0],)
        if self.is_one(sa[0]) and self.is_one(sb[1]):
            return ()
        return (sa[0], sb[1])

    def t_mcmul(self, r, env):
        """matrixcalculus.org's `*`: a scalar scales, otherwise the matrix product."""
        sa, sb = self.type(r.args[0], env), self.type(r.args[1], env)
        if sa == () or sb == ():
            return sb if sa == () else sa
        return self.t_matmul(r, env)

    def t_mcpow(self, r, env):
        """`^`: a power of a scalar, or an integer power (or -1: the inverse) of a square matrix."""
        a, e = r.args
        sa, se = self.type(a, env), self.type(e, env)
        if sa == ():
            return self._elementwise(r, env, "^")
        k = e.attr if e.op == "num" else -e.args[0].attr if e.op == "neg" and e.args[0].op == "num" else None
        if se != () or k is None or not float(k).is_integer() or not (k == -1 or k >= 1):
            raise ShapeError(f"{self.src(r)}: a matrix power needs a positive integer exponent or -1 "
                             f"(use .^ for an element-wise power)")
        r.power = int(k)
        if len(sa) != 2 or not self.unify(sa[0], sa[1]):
            raise ShapeError(f"{self.src(r)}: a matrix power needs a square matrix, but {self.describe(a)}")
        return sa

    # ---- calls
    def t_call(self, r, env):
        name = r.attr
        if self.syntax == "matrixcalculus" and name in MC_FUNCTIONS:
            return self.mc_call(r, env)
        spec = FUNCTIONS.get(name)
        if spec is None:
            raise ParseError(f"unknown function '{name}'{suggest(name, FUNCTIONS)}\n"
                             f"{caret(self.text, *r.name_span)}")
        lo, hi, takes_axis = spec
        bare = next((a for a in r.args if takes_axis and a.op == "var" and a.attr == "axis"), None)
        if bare is not None:
            raise ParseError(f"{name}(): write axis=0 or axis=1\n{caret(self.text, *bare.span)}")
        if not lo <= len(r.args) <= hi:
            want = str(lo) if lo == hi else f"{lo} or {hi}"
            raise ParseError(f"{name}() takes {want} argument{'s' if hi > 1 else ''}, "
                             f"{len(r.args)} given\n{caret(self.text, *r.span)}")
        for k in r.kwargs:
            if not (k == "axis" and takes_axis) and not (k == "keepdims" and name in ("sum", "mean")):
                raise ParseError(f"{name}() has no keyword '{k}'\n"
                                 f"{caret(self.text, *getattr(r, 'kwarg_spans', {}).get(k, r.span))}")
        r.keepdims = self.keepdims_arg(r, name)
        r.axis = None
        if "axis" in r.kwargs:
            ax = r.kwargs["axis"]
            val = ax.attr if ax.op == "num" else -ax.args[0].attr if ax.op == "neg" and ax.args[0].op == "num" else None
            if val not in (0, 1, -1):
                raise ParseError(f"{name}(): axis must be 0 or 1\n{caret(self.text, *ax.span)}")
            r.axis = int(val) % 2
        if name == "unvec":
            return self.c_unvec(r, env)
        if name in DIM_FUNCTIONS:
            dims = tuple(self.dim_arg(a) for a in r.args)
            r.dims = dims
            if name == "eye":
                return (dims[0], dims[0])
            if name == "commutation":
                d = ("*", dims[0], dims[1])
                return (d, d)
            return dims
        shapes = [self.type(a, env) for a in r.args]
        hook = registry.functions()[name].shape
        if hook is not None:
            return hook(self, r, shapes)
        return getattr(self, "c_" + name, self.c_elementwise)(r, shapes)

    def mc_call(self, r, env):
        name = r.attr
        if len(r.args) != 1 or r.kwargs:
            raise ParseError(f"{name}() takes 1 argument\n{caret(self.text, *r.span)}")
        if name in ("vector", "matrix"):
            a = r.args[0]
            if a.op != "num":
                raise ParseError(f"{name}(c) takes a number\n{caret(self.text, *r.span)}")
            return (self.fresh(),) if name == "vector" else (self.fresh(), self.fresh())
        s = self.type(r.args[0], env)
        if name == "trace":
            r.attr = "tr"
            return self.c_tr(r, [s])
        return ()

    def keepdims_arg(self, r: Raw, name: str) -> bool:
        kd = r.kwargs.get("keepdims")
        if kd is None:
            return False
        val = {"True": True, "False": False}.get(kd.attr) if kd.op == "var" else \
            {1: True, 0: False}.get(kd.attr) if kd.op == "num" else None
        if val is None:
            raise ParseError(f"{name}(): keepdims must be True or False\n{caret(self.text, *kd.span)}")
        if val and "axis" not in r.kwargs:
            raise ParseError(f"{name}(): keepdims=True needs an axis (the sum of all entries is a "
                             f"scalar)\n{caret(self.text, *kd.span)}")
        return val

    def dim_arg(self, a: Raw):
        if a.op == "num":
            lit = self.text[a.span[0]:a.span[1]].strip()  # digits read exactly, not through a float
            if not (lit.isascii() and lit.isdigit()) or not 1 <= int(lit) <= MAX_DIM:
                raise ShapeError(f"{self.src(a)}: a dimension must be a positive integer (at most 10**18)")
            return int(lit)
        if a.op == "var":
            return self.named(a.attr)
        if a.op == "mul":
            return ("*", self.dim_arg(a.args[0]), self.dim_arg(a.args[1]))
        if a.op == "call" and a.attr in ("len", "rows", "cols") and len(a.args) == 1 and a.args[0].op == "var":
            s = self.type(a.args[0], {})
            if a.attr == "len" and len(s) == 1:
                return s[0]
            if a.attr in ("rows", "cols") and len(s) == 2:
                return s[0] if a.attr == "rows" else s[1]
            raise ShapeError(f"{self.src(a)}: len() takes a vector, rows() and cols() a matrix, but "
                             f"{self.describe(a.args[0])}")
        raise ShapeError(f"{self.src(a)}: a dimension must be a name, a positive integer, len(x), rows(X), "
                         f"cols(X) or a product of those")

    def finish(self, root: Raw):
        """Name the remaining unknown dimensions (m, n, p, ... in order of appearance)."""
        used = {n for n in self.rigid}
        pool = (d for d in itertools.chain(DIM_POOL, (f"d{i}" for i in itertools.count(1))) if d not in used)
        self.display = {}
        for name in self.order:
            for d in self.var_shapes[name]:
                for f in self._factors(self.u.resolve(d)):
                    if isinstance(f, DimVar) and not f.rigid and f not in self.display:
                        self.display[f] = next(pool)
        # anything else left (e.g. a variable's dims never reached): name it too
        self._pool = pool

    def _factors(self, d):
        return d[1:] if isinstance(d, tuple) else (d,)

    def final_dim(self, d):
        d = self.u.resolve(d)
        if isinstance(d, tuple):
            return dim_mul(*(self.final_dim(f) for f in d[1:]))
        if isinstance(d, DimVar):
            if d.rigid:
                return d.name
            if d not in self.display:
                self.display[d] = next(self._pool)
            return self.display[d]
        return d

    def final_shape(self, s: tuple) -> tuple:
        return tuple(self.final_dim(d) for d in s)
