"""Code generation: a derivative as the source of a standalone numpy / torch / jax function.

Each distinct subexpression used more than once is computed once (the graph is interned);
`diag(v) @ A` becomes `v[:, None] * A`, and a Kronecker or commutation matrix that multiplies
something is applied by reshaping, never built.
"""
from __future__ import annotations

import builtins
import keyword
import re

from .expr import Node, dim_factors, postorder

_RESERVED = set(keyword.kwlist) | set(dir(builtins)) | {"np", "torch", "jnp", "jax", "derivative"}

BACKENDS = {
    "numpy": dict(ns="np", imports="import numpy as np", asarray="np.asarray({x}, dtype=float)",
                  outer="np.outer({a}, {b})", eye="np.eye({n})", ones="np.ones(({dims}))", zeros="np.zeros(({dims}))",
                  sum="np.sum({x})", sum_axis="np.sum({x}, axis={axis})", max_axis="np.max({x}, axis={axis}, keepdims=True)",
                  freshape="{x}.reshape(({dims}), order='F')", vec="{x}.reshape(-1, order='F')", T="{x}.T",
                  tmatmul="{a}.T @ {b}", sum_keep="np.sum({x}, axis={axis}, keepdims=True)", perm="transpose"),
    "torch": dict(ns="torch", imports="import torch", asarray="torch.as_tensor({x}, dtype=torch.float64)",
                  outer="torch.outer({a}, {b})", eye="torch.eye({n}, dtype=torch.float64)",
                  ones="torch.ones(({dims}), dtype=torch.float64)", zeros="torch.zeros(({dims}), dtype=torch.float64)",
                  sum="torch.sum({x})", sum_axis="torch.sum({x}, dim={axis})",
                  max_axis="torch.amax({x}, dim={axis}, keepdim=True)",
                  freshape="_freshape({x}, ({dims}))", vec="{x}.T.reshape(-1)", T="{x}.T",
                  tmatmul="{a}.T @ {b}", sum_keep="torch.sum({x}, dim={axis}, keepdim=True)", perm="permute"),
    "jax": dict(ns="jnp", imports="import jax\nimport jax.numpy as jnp", asarray="jnp.asarray({x})",
                outer="jnp.outer({a}, {b})", eye="jnp.eye({n})", ones="jnp.ones(({dims}))", zeros="jnp.zeros(({dims}))",
                sum="jnp.sum({x})", sum_axis="jnp.sum({x}, axis={axis})",
                max_axis="jnp.max({x}, axis={axis}, keepdims=True)",
                freshape="{x}.reshape(({dims}), order='F')", vec="{x}.T.reshape(-1)", T="{x}.T",
                tmatmul="jnp.einsum('ji,jk->ik', {a}, {b})",  # XLA on CPU copies a transposed operand
                sum_keep="jnp.sum({x}, axis={axis}, keepdims=True)", perm="transpose"),
}

_HELPERS = {
    "_sigmoid": "def _sigmoid(z):\n    return 0.5 * (1.0 + {ns}.tanh(0.5 * z))\n",
    "_softmax": ("def _softmax(z, axis=None):\n"
                 "    if axis is None:\n        e = {ns}.exp(z - z.max())\n        return e / e.sum()\n"
                 "    e = {ns}.exp(z - {max_axis_z})\n    return e / {sum_keep}\n"),
    "_logsumexp": ("def _logsumexp(z, axis=None):\n"
                   "    if axis is None:\n        c = z.max()\n        return {ns}.log({ns}.exp(z - c).sum()) + c\n"
                   "    c = {max_axis_z}\n    return ({ns}.log({sum_keep_c}) + c).reshape(-1)\n"),
    "_kron_apply": ("def _kron_apply(a, b, m):\n"
                    "    # (a ⊗ b) @ m without building a ⊗ b\n"
                    "    # a and b come 2-D (a column vector n×1, a row 1×n)\n"
                    "    vec = m.ndim == 1\n    m = m.reshape(m.shape[0], -1)\n"
                    "    m3 = m.reshape(a.shape[1], b.shape[1], m.shape[1])\n"
                    "    out = {ns}.einsum('aj,bi,jik->abk', a, b, m3).reshape(a.shape[0] * b.shape[0], m.shape[1])\n"
                    "    return out.reshape(-1) if vec else out\n"),
    "_comm_apply": ("def _comm_apply(p, q, m):\n"
                    "    # K(p, q) @ m without building K: rows of vec(X) become rows of vec(X.T)\n"
                    "    vec = m.ndim == 1\n    m = m.reshape(m.shape[0], -1)\n"
                    "    out = m.reshape(q, p, m.shape[1]).{perm}(1, 0, 2).reshape(p * q, m.shape[1])\n"
                    "    return out.reshape(-1) if vec else out\n"),
    "_commutation": ("def _commutation(p, q):\n"
                     "    return _comm_apply(p, q, {eye_pq})\n"),
    "_freshape": ("def _freshape(x, shape):\n"
                  "    # column-major reshape\n"
                  "    return x.T.reshape(tuple(reversed(shape))).permute(*reversed(range(len(shape))))\n"),
}
_HELPER_DEPS = {"_commutation": ["_comm_apply"]}


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
        s = self.code[id(n)]
        return s if s.replace("_", "").replace(".", "").isalnum() else f"({s})"

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

    def as2d(self, n: Node) -> str:
        """The node's value as a 2-D array (vectors are 1-D in generated code)."""
        if len(n.shape) == 1:
            return f"{self.c(n)}.reshape(-1, 1)"
        if len(n.shape) == 2 and n.shape[0] == 1:
            return f"{self.c(n)}.reshape(1, -1)"
        return self.code[id(n)]

    def matmul(self, fs) -> str:
        """A product folded left to right, applying diag / kron / commutation factors."""
        from .simplify import _chain_shape
        if len(fs) == 2 and fs[0].op == "add" and len(fs[1].shape) == 1 and \
                all(len(t.shape) == 2 and t.shape == fs[0].shape for t in fs[0].args):
            # (A + B) @ x as A @ x + B @ x: two matrix-vector products, no matrix sum
            return " + ".join(f"({self.matmul([t, fs[1]])})" for t in fs[0].args)
        acc, acc_node = None, None
        for i, f in enumerate(fs):
            acc_shape = _chain_shape(list(fs[:i])) if i else None
            if acc is None:
                acc, acc_node = self.code[id(f)], f
                continue
            one_d = len(acc_shape) == 1 or (len(acc_shape) == 2 and acc_shape[0] == 1)
            if acc_node is not None and acc_node.op == "diag":
                v = self.c(acc_node.args[0])
                acc = f"{v}[:, None] * {self.c(f)}" if len(f.shape) == 2 and f.shape[0] != 1 else f"{v} * {self.c(f)}"
            elif f.op == "diag":
                acc = f"({acc}) * {self.c(f.args[0])}"
            elif acc_node is not None and acc_node.op == "kron" and f.op not in ("K", "kron"):
                a, b = acc_node.args
                acc = f"{self.helper('_kron_apply')}({self.as2d(a)}, {self.as2d(b)}, {self.code[id(f)]})"
            elif acc_node is not None and acc_node.op == "K" and f.op not in ("K", "kron"):
                p, q = acc_node.attr
                acc = f"{self.helper('_comm_apply')}({self.dim(p)}, {self.dim(q)}, {self.code[id(f)]})"
            elif f.op == "K":  # M K(p, q) = (K(q, p) Mᵀ)ᵀ: permute, never build K
                p, q = f.attr
                m = acc if acc_node is None else self.c(acc_node)
                acc = (f"{self.helper('_comm_apply')}({self.dim(q)}, {self.dim(p)}, {m})" if one_d else
                       f"{self.helper('_comm_apply')}({self.dim(q)}, {self.dim(p)}, ({m}).T).T")
            elif f.op == "kron":  # M (A ⊗ B) = ((Aᵀ ⊗ Bᵀ) Mᵀ)ᵀ
                a, b = f.args
                m = acc if acc_node is None else self.c(acc_node)
                at, bt = f"{self.as2d(a)}.T", f"{self.as2d(b)}.T"
                acc = (f"{self.helper('_kron_apply')}({at}, {bt}, {m})" if one_d else
                       f"{self.helper('_kron_apply')}({at}, {bt}, ({m}).T).T")
            elif acc_node is not None and acc_node.op == "T" and len(acc_node.args[0].shape) == 2 \
                    and acc_node.args[0].shape[0] != 1 and len(f.shape) == 1:
                acc = f"{self.c(f)} @ {self.c(acc_node.args[0])}"   # Aᵀ x as x @ A: no transpose
            elif acc_node is not None and acc_node.op == "T" and len(acc_node.args[0].shape) == 2 \
                    and acc_node.args[0].shape[0] != 1 and len(f.shape) == 2 and f.shape[0] != 1:
                acc = self.f("tmatmul", a=self.c(acc_node.args[0]), b=self.c(f))
            elif len(acc_shape) == 1 and len(f.shape) == 2 and f.shape[0] == 1:
                acc = self.f("outer", a=acc, b=self.code[id(f)])
            else:
                acc = f"({acc}) @ {self.c(f)}" if acc_node is None else f"{self.c(acc_node)} @ {self.c(f)}"
            acc_node = None
        return acc


def generate(d, backend: str = "numpy", name: str = "derivative") -> str:
    """The source of a standalone function computing the derivative `d` (as d.evaluate does)."""
    g = CodeGen(backend)
    root = d.result
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
            if isinstance(dimv, str) and dimv not in bound:
                lines.append(f"    {g.dim_names[dimv]} = {g.names[v]}.shape[{axis}]")
                bound.add(dimv)
    needed = _dims_in(root) - bound
    if needed:
        raise_line = f"    raise ValueError('cannot tell the size of {', '.join(sorted(needed))} from the arguments')"
        lines.append(raise_line)
    lines += [f"    {ln}" for ln in g.lines]
    if len(root.shape) == 2 and root.shape[0] == 1 and not d.vec_form:
        body_expr = f"({body_expr}).reshape(1, -1)"
    if d.vec_form:
        shape = ", ".join(g.dim(x) for x in tuple(d.out_shape) + tuple(d.wrt_shape))
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


def _params(d, var_shapes: dict) -> list[str]:
    """The generated function's parameters: the expression's variables, the variable, the upstream."""
    names = (d.parsed.expr.vars | d.result.vars | {d.wrt} | ({d.upstream} if d.upstream else set()))
    return sorted(names & set(var_shapes))


def _dims_in(root: Node) -> set[str]:
    out = set()
    for n in postorder(root):
        for d in list(n.shape) + ([n.attr] if n.op in ("numel",) else list(n.attr) if n.op == "K" else []):
            for f in dim_factors(d):
                if isinstance(f, str):
                    out.add(f)
    return out


def compile_function(d, backend: str = "numpy"):
    """A callable computing the derivative; call it with keyword arguments or a dict of values."""
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

    def call(values=None, **kw):
        vals = dict(values or {}, **kw)
        missing = [v for v in used if v not in vals]
        if missing:
            from .errors import MatcalcError
            raise MatcalcError(f"no value given for {', '.join(missing)}")
        return fn(*[vals[v] for v in used])

    call.source = src
    call.__doc__ = fn.__doc__
    return call
