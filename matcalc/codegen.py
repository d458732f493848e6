"""Code generation: a derivative as the source of a standalone numpy / torch / jax function.

Each distinct subexpression used more than once is computed once (the graph is interned);
`diag(v) @ A` becomes `v[:, None] * A`, and a Kronecker or commutation matrix that multiplies
something is applied by reshaping, never built. Products (association, distribution over a sum,
structured factors, Gram products) are in codegen_products.py.
"""
from __future__ import annotations

import builtins
import keyword
import re

from .backends import _HELPER_DEPS, _HELPERS, BACKENDS
from .codegen_products import Products, _is_operand, _is_row
from .expr import Node, dim_factors, postorder

_RESERVED = set(keyword.kwlist) | set(dir(builtins)) | {"np", "torch", "jnp", "jax", "derivative"}


class CodeGen(Products):
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
        self.signs: dict[int, tuple] = {}  # node id -> (lo, hi) range of its entries (Products.nonneg)
        self.undo: list = []  # (node id, code) replaced by a hoisted temporary
        self.branch_depth = 0  # run-time choices around the code being emitted
        self.droppable: set[str] = set()  # temporaries of diag(v): dropped when nothing reads them

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
                if n.op in ("diag", "kron", "K"):  # products apply these from their arguments
                    self.droppable.add(name)
                c = name
            self.code[id(n)] = c
        return self.code[id(root)]

    def live_lines(self, result: str) -> list[str]:
        """The body's lines without the temporaries of diag / kron / K nodes that nothing reads."""
        lines = list(self.lines)
        for name in self.droppable:
            pat = re.compile(rf"\b{name}\b")
            if not pat.search(result) and sum(bool(pat.search(ln)) for ln in lines) == 1:
                lines = [ln for ln in lines if not ln.startswith(f"{name} = ")]
        return lines

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
    lines += [f"    {ln}" for ln in g.live_lines(body_expr)]
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


def _check_function_name(name) -> None:
    """The generated function's name: an identifier that shadows nothing the source uses."""
    from .errors import MatcalcError
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,99}", name):
        raise MatcalcError(f"the function's name must be a Python identifier like grad_w, not {name!r:.60}")
    if (name in _RESERVED and name != "derivative") or name in _HELPERS:
        raise MatcalcError(f"the function's name {name} is taken (a Python keyword or builtin, a module "
                           f"or a helper of the generated code); choose another")


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
