"""Code generation: a derivative as the source of a standalone numpy / torch / jax function.

Each distinct subexpression used more than once is computed once (the graph is interned);
`diag(v) @ A` becomes `v[:, None] * A`, and a Kronecker or commutation matrix that multiplies
something is applied by reshaping, never built.
"""
from __future__ import annotations

import builtins
import keyword
import re

from .backends import _HELPER_DEPS, _HELPERS, BACKENDS
from .chain import best_order, product_shape
from .expr import Node, dim_factors, postorder

_RESERVED = set(keyword.kwlist) | set(dir(builtins)) | {"np", "torch", "jnp", "jax", "derivative"}


class CodeGen:
    """Emits straight-line code for one expression graph, one temporary per shared node."""

    def __init__(self, backend: str = "numpy"):
        if backend not in BACKENDS:
            from .errors import MatcalcError
            raise MatcalcError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        self.backend = backend
        self.b = BACKENDS[backend]
        self.helpers: set[str] = set()
        self.lines: list[str] = []
        self.code: dict[int, str] = {}
        self.ntemp = 0
        self.names: dict[str, str] = {}      # variable -> identifier in the generated code
        self.dim_names: dict[str, str] = {}  # dimension -> identifier
        self.pieces: list = []

    def set_names(self, variables, dims):
        """Identifiers for variables and dimensions that clash with nothing in the generated code."""
        taken = set(_RESERVED) | set(variables) | {f"_t{i}" for i in range(1, 10000)}
        for v in variables:
            name = v
            while name in _RESERVED or name.startswith("_") or (name != v and name in taken):
                name += "_"
            self.names[v] = name
            taken.add(name)
        for d in dims:
            name = d
            while name in taken:
                name = "dim_" + name
            self.dim_names[d] = name
            taken.add(name)

    def f(self, key: str, **kw) -> str:
        return self.b[key].format(ns=self.b["ns"], **kw)

    def dim(self, d) -> str:
        parts = [self.dim_names.get(x, x) if isinstance(x, str) else str(x) for x in dim_factors(d)]
        return parts[0] if len(parts) == 1 else "(" + " * ".join(parts) + ")"

    def dims(self, shape) -> str:
        return ", ".join(self.dim(d) for d in shape) + ("," if len(shape) == 1 else "")

    def helper(self, name: str) -> str:
        self.helpers.add(name)
        for dep in _HELPER_DEPS.get(name, ()):
            self.helpers.add(dep)
        return name

    def emit(self, root: Node) -> str:
        order = postorder(root)
        uses: dict[int, int] = {}
        for n in order:
            for a in n.args:
                uses[id(a)] = uses.get(id(a), 0) + 1
        for n in reversed(order):  # products read through T and diag (x @ A for Aᵀx, v * M for
            if n.op in ("T", "diag") and uses.get(id(n), 0) > 1:  # diag(v) M): share the argument too
                uses[id(n.args[0])] = uses.get(id(n.args[0]), 0) + uses[id(n)]
        for n in order:
            if n.op == "var":
                self.code[id(n)] = self.names.get(n.attr, n.attr)
                continue
            c = self.node(n)
            if n is not root and n.args and (uses.get(id(n), 0) > 1 or len(c) > 120):
                self.ntemp += 1
                name = f"_t{self.ntemp}"
                self.lines.append(f"{name} = {c}")
                c = name
            self.code[id(n)] = c
        return self.code[id(root)]

    def c(self, n: Node) -> str:
        """The node's code as an operand: parenthesised unless it is an atom, a call or a postfix."""
        s = self.code[id(n)]
        return s if _is_operand(s) else f"({s})"

    def helpers_in(self, template: str) -> None:
        """Mark the helpers a code template calls."""
        for h in _HELPERS:
            if h + "(" in template:
                self.helper(h)

    # ---- operators
    def node(self, n: Node) -> str:
        """The code of one node: its declaration's `code=` (ops/), a template over the arguments'
        code ({0}, {1}; {ns} the backend's namespace), per backend, or a callable."""
        from .ops import registry
        form = registry.op(n.op).code
        if isinstance(form, dict):
            form = form.get(self.backend, form.get("numpy"))
        if form is None:
            from .errors import InternalError
            raise InternalError(f"no generated code for {n.op}")
        if callable(form):
            return form(self, n)
        self.helpers_in(form)
        return form.format(*[self.code[id(a)] for a in n.args], ns=self.b["ns"])

    def _tuple_item(self, n: Node) -> str:
        if n.op != "var" and not n.args:  # a constant (zeros, eye, ...) is a fresh array
            return self.code[id(n)]
        return self.code[id(n)] if len(n.shape) != 2 or n.shape[0] != 1 else f"{self.c(n)}.reshape(1, -1)"

    def as2d(self, n: Node) -> str:
        """The node's value as a 2-D array (vectors are 1-D in generated code)."""
        if len(n.shape) == 1:
            return f"{self.c(n)}.reshape(-1, 1)"
        if len(n.shape) == 2 and n.shape[0] == 1:
            return f"{self.c(n)}.reshape(1, -1)"
        return self.c(n)  # an operand: callers apply .T to it

    def matmul(self, fs) -> str:
        """A product: runs of ordinary factors in their cheapest association (matcalc.chain);
        diag / kron / commutation factors applied, never built, folding left to right."""
        split = self.distributed(fs)
        if split is not None:
            return split
        pieces, run = [], []
        for f in list(fs) + [None]:
            if f is None or f.op in ("diag", "kron", "K"):
                pieces.extend([self.chain(run)] if len(run) > 1 else run)
                pieces, run = pieces + ([f] if f is not None else []), []
            else:
                run.append(f)
        if len(pieces) == 1:
            return self.code[id(pieces[0])]
        acc, acc_node, acc_shape = self.c(pieces[0]), pieces[0], pieces[0].shape
        for f in pieces[1:]:
            acc = self.apply(acc, acc_node, acc_shape, f)
            acc_node, acc_shape = None, product_shape(acc_shape, f.shape)
        return acc

    def outer(self, a: str, b: str) -> str:
        """outer(a, b); a vector used twice (outer(u, u)) is computed once."""
        if a.strip("()") == b.strip("()") and not _is_name(a.strip("()")):
            self.ntemp += 1
            self.lines.append(f"_t{self.ntemp} = {a.strip('()') if _is_operand(a.strip('()')) else a}")
            a = b = f"_t{self.ntemp}"
        return self.f("outer", a=a, b=b)

    def distributed(self, fs) -> str | None:
        """L @ (T1 + T2 + …) @ R as L @ T1 @ R + L @ T2 @ R when that is cheaper: every term is
        diagonal or rank one (A.T @ (diag(s) - s @ s.T) @ A: one matrix product and an outer
        product of two matrix-vector products, instead of two matrix products), or the product
        is a matrix sum times a vector. Scalar factors of a term stay in front of its product."""
        for i, f in enumerate(fs):
            if f.op != "add" or len(f.shape) != 2 or _is_row(f.shape) or any(t.shape != f.shape for t in f.args):
                continue  # (a term broadcast over the sum is no factor of the product)
            terms = [_scalar_and_factor(t) for t in f.args]
            structured = all(t.op == "diag" or (t.op == "matmul" and any(len(a.shape) == 1 for a in t.args[:-1]))
                             for _, t in terms)
            mat_vec = len(fs) == 2 and i == 0 and len(fs[1].shape) == 1
            if not (structured or mat_vec):
                continue
            parts = []
            for c, t in terms:
                inner = self.matmul([*fs[:i], *(t.args if t.op == "matmul" else [t]), *fs[i + 1:]])
                parts.append(f"({inner})" if c is None else f"{self.c(c)} * ({inner})")
            return " + ".join(parts)
        return None

    def apply(self, acc: str, acc_node, acc_shape: tuple, f) -> str:
        """acc @ f where acc or f may be a diag / kron / commutation factor (never built)."""
        one_d = _is_row(acc_shape)  # a row times a matrix: a vector-matrix product
        if len(acc_shape) == 1:  # a column times a row (f is 1×k, Kronecker or not): an outer product
            return self.outer(acc, self.code[id(f)])
        if acc_node is not None and acc_node.op == "diag":
            v = self.c(acc_node.args[0])
            return f"{v}[:, None] * {self.c(f)}" if len(f.shape) == 2 and f.shape[0] != 1 else f"{v} * {self.c(f)}"
        if f.op == "diag":
            return f"{acc} * {self.c(f.args[0])}"
        if acc_node is not None and acc_node.op == "kron" and f.op not in ("K", "kron"):
            a, b = acc_node.args
            return f"{self.helper('_kron_apply')}({self.as2d(a)}, {self.as2d(b)}, {self.code[id(f)]})"
        if acc_node is not None and acc_node.op == "K" and f.op not in ("K", "kron"):
            p, q = acc_node.attr
            return f"{self.helper('_comm_apply')}({self.dim(p)}, {self.dim(q)}, {self.code[id(f)]})"
        if f.op == "K":  # M K(p, q) = (K(q, p) Mᵀ)ᵀ: permute, never build K
            p, q = f.attr
            return (f"{self.helper('_comm_apply')}({self.dim(q)}, {self.dim(p)}, {acc})" if one_d else
                    f"{self.helper('_comm_apply')}({self.dim(q)}, {self.dim(p)}, ({acc}).T).T")
        if f.op == "kron":  # M (A ⊗ B) = ((Aᵀ ⊗ Bᵀ) Mᵀ)ᵀ
            a, b = f.args
            at, bt = f"{self.as2d(a)}.T", f"{self.as2d(b)}.T"
            return (f"{self.helper('_kron_apply')}({at}, {bt}, {acc})" if one_d else
                    f"{self.helper('_kron_apply')}({at}, {bt}, ({acc}).T).T")
        return self.pair(acc, acc_shape, acc_node, self.c(f), f.shape, f)

    def pair(self, left: str, ls: tuple, ln, right: str, rs: tuple, rn) -> str:
        """left @ right for ordinary factors; `left` is a product-level code (no parentheses
        needed on the left of @), `right` an operand; ln / rn the nodes when they are factors."""
        if ls == () or rs == ():
            return f"{left} * {right}"
        if len(ls) == 1:  # a column times a row: the operands are 1-D in generated code
            return self.outer(left, right)
        if _is_column(ls) and _is_row(rs):  # an m×1 matrix times a row (1-D here): an outer product
            return self.outer(f"({left}).reshape(-1)", right)
        if _is_row(ls) and _is_column(rs):  # a row (1-D here) times an m×1 matrix: a number
            return f"({left}) @ {right}.reshape(-1)"
        if ln is not None and ln.op == "T" and len(ln.args[0].shape) == 2 and ln.args[0].shape[0] != 1:
            if len(rs) == 1:
                return f"{right} @ {self.c(ln.args[0])}"   # Aᵀ x as x @ A: no transpose
            if not _is_row(rs):
                return self.f("tmatmul", a=self.c(ln.args[0]), b=right)
        return f"{left} @ {right}"

    def chain(self, run: list) -> "_Piece":
        """A run of ordinary factors multiplied in the cheapest order, as one factor."""
        tree = best_order([f.shape for f in run])
        if tree is None:
            code, shape, node = self.c(run[0]), run[0].shape, run[0]
            for f in run[1:]:
                code, shape, node = self.pair(code, shape, node, self.c(f), f.shape, f), \
                    product_shape(shape, f.shape), None
        else:
            code, shape, _ = self.emit_tree(tree, run)
        piece = _Piece(shape)
        self.pieces.append(piece)  # kept alive: its id keys self.code
        self.code[id(piece)] = code
        return piece

    def emit_tree(self, t, run: list) -> tuple:
        """(code, shape, node or None) of a subtree of best_order's tree (depth ≤ chain.MAX_DP)."""
        if isinstance(t, int):
            return self.c(run[t]), run[t].shape, run[t]
        lc, ls, ln = self.emit_tree(t[0], run)
        rc, rs, rn = self.emit_tree(t[1], run)
        right = rc if rn is not None else f"({rc})"
        return self.pair(lc, ls, ln, right, rs, rn), product_shape(ls, rs), None


class _Piece:
    """A product computed as one factor of a longer product (a run between special factors)."""

    op = "chain"
    args = ()

    def __init__(self, shape: tuple):
        self.shape = shape


def generate(d, backend: str = "numpy", name: str = "derivative") -> str:
    """The source of a standalone function computing the derivative `d` (as d.evaluate does)."""
    _check_function_name(name)
    g = CodeGen(backend)
    from .adjugate import numeric_form
    root = numeric_form(d.result)  # det(A) A⁻¹ computed as the adjugate, as d.evaluate does
    var_shapes = dict(d.parsed.var_shapes)
    if d.upstream is not None:
        var_shapes[d.upstream] = d.out_shape
    used = _params(d, var_shapes)
    g.set_names(used, sorted(_dims_in(root) | {x for v in used for s in var_shapes[v] for x in dim_factors(s)
                                              if isinstance(x, str)}))
    body_expr = g.emit(root)
    what = re.sub(r"[^ -~]|[\\\"]", "?", d.parsed.source.strip())[:200]
    lines = [f"def {name}({', '.join(g.names[v] for v in used)}):",
             f'    """{d.kind} of {what} by {d.wrt} (generated by matcalc)."""']
    bound = set()
    for v in used:
        conv = g.f('asarray', x=g.names[v])
        if len(var_shapes[v]) == 1 or (len(var_shapes[v]) == 2 and var_shapes[v][0] == 1):
            conv += ".reshape(-1)"  # a vector (or a row) is 1-D in the generated code
        lines.append(f"    {g.names[v]} = {conv}")
    for v in used:
        for axis, dimv in enumerate(var_shapes[v]):
            if isinstance(dimv, str) and dimv not in bound:  # a row's value is 1-D: its size is shape[-1]
                lines.append(f"    {g.dim_names[dimv]} = {g.names[v]}.shape[{-1 if _is_row(var_shapes[v]) else axis}]")
                bound.add(dimv)
    needed = _dims_in(root) - bound
    if needed:
        raise_line = f"    raise ValueError('cannot tell the size of {', '.join(sorted(needed))} from the arguments')"
        lines.append(raise_line)
    lines += [f"    {ln}" for ln in g.lines]
    out_dims = tuple(d.dims)  # the array d.evaluate gives (a row output is 1-D there)
    if _is_row(root.shape) and _is_row(out_dims) and not d.vec_form:
        body_expr = f"({body_expr}).reshape(1, -1)"
    if d.vec_form:
        shape = ", ".join(g.dim(x) for x in out_dims)
        body_expr = g.f("freshape", x=f"({body_expr})", dims=shape + ("," if "," not in shape else ""))
        if backend == "torch":
            g.helper("_freshape")
    lines.append(f"    return {body_expr}")
    fmt = dict(ns=g.b["ns"], max_axis_z=g.f("max_axis", x="z", axis="axis"),
               sum_keep=g.f("sum_keep", x="e", axis="axis"),
               sum_keep_c=g.f("sum_keep", x=f"{g.b['ns']}.exp(z - c)", axis="axis"),
               perm=g.b["perm"],
               eye_pq=g.f("eye", n="p * q"))
    body = "\n".join(lines)
    needed = {h for h in g.helpers if f"{h}(" in body}  # a node consumed by a product emits no call
    for h in list(needed):
        needed.update(_HELPER_DEPS.get(h, ()))
    helpers = [_HELPERS[h].format(**fmt) for h in sorted(needed, key=lambda h: (h != "_comm_apply", h))]
    return "\n".join([g.b["imports"], "", ""] + ([*helpers, ""] if helpers else []) + lines) + "\n"


def _scalar_and_factor(t: Node) -> tuple:
    """(scalar factor or None, the rest) of a term: c * M with c a scalar node."""
    if t.op == "mul" and len(t.args) == 2:
        a, b = t.args
        if a.shape == () and b.shape != ():
            return a, b
        if b.shape == () and a.shape != ():
            return b, a
    return None, t


def _check_function_name(name) -> None:
    """The generated function's name: an identifier that shadows nothing the source uses."""
    from .errors import MatcalcError
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,99}", name):
        raise MatcalcError(f"the function's name must be a Python identifier like grad_w, not {name!r:.60}")
    if (name in _RESERVED and name != "derivative") or name in _HELPERS:
        raise MatcalcError(f"the function's name {name} is taken (a Python keyword or builtin, a module "
                           f"or a helper of the generated code); choose another")


def _is_name(s: str) -> bool:
    return re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", s) is not None


def _is_operand(s: str) -> bool:
    """Whether generated code `s` binds tighter than any binary operator: a name, a number, a
    call, an attribute or a subscript (binary operators are always written between spaces)."""
    if s.startswith("-") or not s:
        return False
    depth = 0
    for ch in s:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == " " and depth == 0:
            return False
    return True


def _is_row(shape: tuple) -> bool:
    return len(shape) == 2 and shape[0] == 1


def _is_column(shape: tuple) -> bool:
    """An m×1 matrix (keepdims): 2-D in generated code, unlike a vector."""
    return len(shape) == 2 and shape[1] == 1 and shape[0] != 1


def _params(d, var_shapes: dict) -> list[str]:
    """The generated function's parameters: the variables the expression is written with (even
    those its simplified form drops: their sizes may be the derivative's), the variable(s), the upstream."""
    written = set(getattr(d.parsed.typer, "order", ())) | d.parsed.expr.vars
    names = (written | d.result.vars | set(getattr(d, "wrts", (d.wrt,)))
             | ({d.upstream} if d.upstream else set()))
    return sorted(names & set(var_shapes))


def _dims_in(root: Node) -> set[str]:
    out = set()
    for n in postorder(root):
        for d in list(n.shape) + ([n.attr] if n.op in ("numel",) else list(n.attr) if n.op in ("K", "unvec") else []):
            for f in dim_factors(d):
                if isinstance(f, str):
                    out.add(f)
    return out


def compile_function(d, backend: str = "numpy"):
    """A callable computing the derivative. Call it like the printed source: with the values in
    its parameters' order (`f(A, x)`, alphabetical), by keyword (`f(A=A, x=x)`), or with one dict
    of values (`f({"A": A, "x": x})`, other names ignored)."""
    import importlib.util
    import inspect
    from collections.abc import Mapping
    from .errors import MatcalcError
    module = {"numpy": "numpy", "torch": "torch", "jax": "jax"}.get(backend)
    if module is not None and importlib.util.find_spec(module) is None:
        raise MatcalcError(f"install {module} to use this backend (pip install {module})")
    src = generate(d, backend)
    namespace: dict = {}
    # The source is matcalc's own output: identifiers are validated names (renamed away from
    # keywords and builtins) and numbers; no text of the input is executed.
    exec(compile(src, f"<matcalc {backend}>", "exec"), namespace)
    fn = namespace["derivative"]
    var_shapes = dict(d.parsed.var_shapes)
    if d.upstream is not None:
        var_shapes[d.upstream] = d.out_shape
    used = _params(d, var_shapes)
    renamed = dict(zip(inspect.signature(fn).parameters, used))  # lambda_ -> lambda

    def call(*args, **kw):
        if len(args) == 1 and isinstance(args[0], Mapping):
            vals = dict(args[0], **kw)
        else:
            if len(args) > len(used):
                raise MatcalcError(f"the function takes {len(used)} values ({', '.join(used)}), "
                                   f"{len(args)} given")
            vals = dict(zip(used, args))
            kw = {renamed.get(k, k): v for k, v in kw.items()}
            twice = sorted(set(vals) & set(kw))
            if twice:
                raise MatcalcError(f"{', '.join(twice)} given both by position and by keyword")
            vals.update(kw)
        missing = [v for v in used if v not in vals]
        if missing:
            raise MatcalcError(f"no value given for {', '.join(missing)}")
        return fn(*[vals[v] for v in used])

    call.source = src
    call.__doc__ = fn.__doc__
    call.__signature__ = inspect.signature(fn)  # the printed def's (a keyword's name gets a _)
    return call
