"""What the page's JSON API computes, independent of HTTP: request dict in, response dict out.

Every function here is synchronous and runs in a worker thread; every error is a `MatcalcError`
(a malformed request is a `RequestError`), which `error_body` turns into the JSON error answer.
Nothing from a request is executed: generated code is returned as text, never compiled or run.
"""
from __future__ import annotations

import inspect
import re

import matcalc
from matcalc.errors import MatcalcError

MODES = ("diff", "vjp", "hessian")
SYNTAXES = ("matcalc", "matrixcalculus")
BACKENDS = ("numpy", "torch", "jax")
KEYS = ("expr", "wrt", "mode", "shapes", "layout", "syntax", "assume", "symmetric", "upstream")


class RequestError(MatcalcError):
    """The request itself is malformed (not JSON, a missing key, a value of the wrong type)."""


def error_body(e: BaseException) -> dict:
    """`{"error": message, "kind": class name}`, plus where a parse error points (`column`, 1-based,
    `caret`: the source line and the caret line) so that the page can underline the input."""
    msg = str(e).rstrip("\n")
    body = {"error": msg, "kind": type(e).__name__}
    lines = msg.split("\n")
    if isinstance(e, matcalc.ParseError) and len(lines) >= 3 and re.fullmatch(r" *\^+", lines[-1]):
        body["error"] = "\n".join(lines[:-2])
        body["caret"] = "\n".join(lines[-2:])
        body["column"] = lines[-1].index("^") + 1
        body["width"] = lines[-1].count("^")
    return body


# ---- request validation -------------------------------------------------------------------------

def _str(body: dict, key: str, default=None, choices=None, required=False):
    v = body.get(key, default)
    if v is None:
        if required:
            raise RequestError(f"the request needs {key!r}")
        return default
    if not isinstance(v, str):
        raise RequestError(f"{key!r} must be a string, not {type(v).__name__}")
    if choices and v not in choices:
        raise RequestError(f"{key!r} must be one of {', '.join(choices)}, not {v!r}")
    return v


def _shapes(v) -> dict | None:
    """JSON shapes {"X": ["m", "n"], "w": ["n"], "c": []} -> matcalc's {"X": ("m", "n"), ...}."""
    if v is None or v == {}:
        return None
    if not isinstance(v, dict):
        raise RequestError("'shapes' must be an object like {\"X\": [\"m\", \"n\"], \"w\": [\"n\"], \"c\": []}")
    out = {}
    for name, dims in v.items():
        if isinstance(dims, str):  # "m,n" as the CLI writes it
            dims = [d.strip() for d in dims.split(",") if d.strip()]
        if not isinstance(dims, list) or len(dims) > 2:
            raise RequestError(f"shapes[{name!r}] must be a list of at most two dimensions")
        tup = []
        for d in dims:
            if isinstance(d, bool) or not isinstance(d, (int, str)):
                raise RequestError(f"shapes[{name!r}]: a dimension is a name or a positive integer, not {d!r}")
            if isinstance(d, str) and d.strip().isdigit():
                d = int(d.strip())
            if isinstance(d, int) and not 0 < d <= 10**9:
                raise RequestError(f"shapes[{name!r}]: a dimension must be a positive integer, not {d}")
            tup.append(d.strip() if isinstance(d, str) else d)
        out[name] = tuple(tup)
    return out


def _names(body: dict, key: str):
    v = body.get(key)
    if v in (None, "", []):
        return None
    if isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v)):
        return v
    raise RequestError(f"{key!r} must be a string or a list of strings")


def parse_request(body) -> dict:
    """The validated arguments of a derive/check request."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object with at least 'expr' and 'wrt'")
    unknown = sorted(set(body) - set(KEYS))
    if unknown:
        raise RequestError(f"unknown key {unknown[0]!r}; the keys are {', '.join(KEYS)}")
    return {"expr": _str(body, "expr", required=True), "wrt": _str(body, "wrt", required=True),
            "mode": _str(body, "mode", "diff", MODES),
            "layout": _str(body, "layout", "mixed", matcalc.api.LAYOUTS),
            "syntax": _str(body, "syntax", "matcalc", SYNTAXES),
            "upstream": _str(body, "upstream", "G") or "G",
            "shapes": _shapes(body.get("shapes")),
            "assume": _names(body, "assume"), "symmetric": _names(body, "symmetric")}


# ---- calling the engine -------------------------------------------------------------------------

def _call(fn, *args, budget: float | None = None, **kwargs):
    """fn(*args, **kwargs), with `budget=` when the engine's function accepts it."""
    if budget is not None:
        try:
            if "budget" in inspect.signature(fn).parameters:
                kwargs["budget"] = budget
        except (TypeError, ValueError):
            pass
    return fn(*args, **kwargs)


def _derivative(req: dict, budget: float | None, mode: str | None = None):
    common = dict(shapes=req["shapes"], assume=req["assume"], symmetric=req["symmetric"], syntax=req["syntax"])
    mode = mode or req["mode"]
    if mode == "vjp":
        return _call(matcalc.vjp, req["expr"], req["wrt"], upstream=req["upstream"], budget=budget, **common)
    if mode == "hessian":
        return _call(matcalc.hessian, req["expr"], req["wrt"], budget=budget, **common)
    return _call(matcalc.diff, req["expr"], req["wrt"], layout=req["layout"], budget=budget, **common)


def json_dims(shape: tuple) -> list:
    """A shape as JSON: concrete sizes as ints, symbolic dimensions as strings."""
    from matcalc.expr import fmt_dim
    return [d if isinstance(d, int) else fmt_dim(d) for d in shape]


def _piece(out: dict, key: str, make):
    """out[key] = make(); a failure of one optional piece is reported in out["errors"], not raised."""
    try:
        out[key] = make()
    except MatcalcError as e:
        if isinstance(e, matcalc.BudgetError):
            raise
        out.setdefault("errors", {})[key] = error_body(e)


def _steps(d) -> list[dict]:
    return [{"rule": s.rule, "latex": s.latex, "text": s.text, "shapes": {k: str(v) for k, v in s.shapes.items()}}
            for s in d.steps]


def _backprop(req: dict, d, budget: float | None) -> dict | None:
    """The backprop rule beside a derivative with more than two axes (as the CLI prints it)."""
    if d.kind != "diff" or not d.vec_form or d.out_shape == ():
        return None
    b = _derivative(req, budget, mode="vjp")
    from matcalc.render import _latex_symbol
    return {"upstream": req["upstream"], "text": b.text, "latex": b.latex,
            "equation": f"\\frac{{\\partial L}}{{\\partial {_latex_symbol(d.wrt)}}} = {b.latex}"}


def derive(body, budget: float | None = None) -> dict:
    """The answer of POST /api/derive: `Derivative.to_json()`'s keys plus the equation, the shapes,
    the differential, the backprop rule, the steps, the index form and the generated code."""
    from matcalc.render import shapes_latex
    req = parse_request(body)
    d = _derivative(req, budget)
    out = d.to_json()
    out.update(mode=req["mode"], syntax=req["syntax"], equation=d.equation_latex,
               shapes_latex=shapes_latex(d._shapes_used()),
               variable_dims={k: json_dims(v) for k, v in d._shapes_used().items()},
               differential_latex=d.differential_latex, upstream=d.upstream, facts=d.fact_names)
    _piece(out, "backprop", lambda: _backprop(req, d, budget))
    _piece(out, "steps", lambda: _steps(d))
    _piece(out, "steps_latex", lambda: d.steps_latex)
    _piece(out, "index", lambda: d.index_latex)
    code: dict = {}
    for backend in BACKENDS:  # text generation only: torch/jax need not be installed
        _piece(code, backend, lambda backend=backend: d.to_python(backend))
    out["code"] = {k: v for k, v in code.items() if k != "errors"}
    out["code_errors"] = code.get("errors", {})
    return out


#: the check draws values of every variable and perturbs each entry of the variable (each pair of
#: entries for a Hessian): concrete sizes beyond these would take the server's memory or time
CHECK_LIMITS = {"entries": 100_000, "wrt": 2_000, "hessian_wrt": 100}


def _entries(shape: tuple) -> int:
    """How many numbers a value of this shape holds at the check's sizes (a name counts as 9)."""
    from matcalc.expr import dim_factors
    n = 1
    for d in shape:
        for f in dim_factors(d):
            n *= f if isinstance(f, int) else 9
    return n


def _check_sizes(d) -> None:
    for name, shape in d.parsed.var_shapes.items():
        if _entries(shape) > CHECK_LIMITS["entries"]:
            raise RequestError(f"check: {name} would hold {_entries(shape)} numbers; the check takes at most "
                               f"{CHECK_LIMITS['entries']} per variable (use symbolic or smaller sizes)")
    limit = CHECK_LIMITS["hessian_wrt" if d.kind == "hessian" else "wrt"]
    if _entries(d.wrt_shape) > limit:
        raise RequestError(f"check: {d.wrt} would hold {_entries(d.wrt_shape)} numbers; the check perturbs "
                           f"each, and takes at most {limit} here (use symbolic or smaller sizes)")


def check(body, budget: float | None = None) -> dict:
    """The answer of POST /api/check: finite differences (and the exact check when small)."""
    req = parse_request(body)
    d = _derivative(req, budget)
    _check_sizes(d)
    r = _call(d.check, budget=budget)
    return {"ok": bool(r.ok), "max_abs_error": float(r.max_abs_error), "max_rel_error": float(r.max_rel_error),
            "sizes": {str(k): int(v) for k, v in r.sizes.items()}, "exact": r.exact,
            "tolerance": r.tolerance, "summary": str(r)}


def parse(body, budget: float | None = None) -> dict:
    """The answer of POST /api/parse: the expression's variables with their inferred shapes (and
    the facts the engine knows, for the page's "type" column). With `wrt`, a variable that the
    expression does not contain is listed too (its derivative is zeros), so that a link keeps it."""
    from matcalc.assume import FACTS
    from matcalc.expr import fmt_shape
    from matcalc.render import _latex_symbol
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object with 'expr'")
    expr = _str(body, "expr", required=True)
    syntax = _str(body, "syntax", "matcalc", SYNTAXES)
    wrt = _str(body, "wrt")
    shapes = _shapes(body.get("shapes"))
    p = _call(matcalc.parse, expr, shapes=shapes, syntax=syntax, budget=budget)
    var_shapes = dict(p.var_shapes)
    if wrt and wrt not in var_shapes:
        var_shapes[wrt] = _call(matcalc.parse, wrt, shapes=shapes, budget=budget).var_shapes[wrt]
    names = [n for n in var_shapes if n in p.expr.vars] + [n for n in var_shapes if n not in p.expr.vars]
    return {"expr": expr, "text": p.text, "latex": p.latex, "shape": json_dims(p.shape), "facts": list(FACTS),
            "variables": [{"name": n, "latex": _latex_symbol(n), "dims": json_dims(var_shapes[n]),
                           "shape": fmt_shape(var_shapes[n]), "used": n in p.expr.vars} for n in names]}
