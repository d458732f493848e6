"""The command line: `matcalc diff|hessian|vjp EXPR WRT [options]`."""
from __future__ import annotations

import argparse
import os
import sys

from .errors import MatcalcError

EXAMPLES = """examples:
  matcalc diff "sum((X@w - y)**2)" w           gradient: 2 X^T (X w - y)
  matcalc diff "X@W+b" W                       Kronecker form, differential and backprop rule
  matcalc diff "A@x" x --layout denominator    the Jacobian's transpose
  matcalc diff "tr(A@X)" X --shape A=n,m --shape X=m,n --format text
  matcalc vjp "tanh(X@W)" W                    backprop rule: X.T @ (G * (1 - tanh(X @ W) ** 2))
  matcalc hessian "x.T@A@x" x                  A + A^T
  matcalc diff "sum((tanh(X@W1+b1)@W2+b2-Y)**2)" W1,b1,W2,b2   a network's backprop, one block
  matcalc diff "-y.T@log(softmax(W@x))" W --assume sums_to_one=y   (softmax(W x) - y) x^T
"""


def _shapes(items: list[str] | None) -> dict | None:
    if not items:
        return None
    out, given = {}, {}
    for item in items:
        if "=" not in item:
            raise MatcalcError(f"--shape {item}: write NAME=DIMS, e.g. X=m,n or w=n or c= for a scalar")
        name, dims = item.split("=", 1)
        name, dims = name.strip(), dims.strip()
        if name in out:
            raise MatcalcError(f"--shape {item}: {name} is already given as {given[name]}")
        given[name] = item
        out[name] = tuple(d.strip() for d in dims.split(",")) if dims else ()
    return out


class _Done(Exception):
    """The backprop line is written."""


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; given the subcommand that will run, only its options are declared
    (the others are listed, with their help, but left empty: a cold start builds one of four)."""
    from . import __version__
    p = argparse.ArgumentParser(prog="matcalc", description="Symbolic matrix calculus: derivatives in "
                                "matrix notation, as LaTeX or text.", epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"matcalc {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="{diff,hessian,vjp,serve}")
    for name, help_ in (("diff", "first derivative of EXPR by WRT"),
                        ("hessian", "second derivative of a scalar EXPR by WRT"),
                        ("vjp", "backprop rule: gradient of sum(G * EXPR) by WRT")):
        s = sub.add_parser(name, help=help_, description=help_)
        if command in COMMANDS and command != name:
            continue
        s.add_argument("expr", metavar="EXPR", help='the expression, e.g. "sum((X@w - y)**2)"; - reads stdin')
        s.add_argument("wrt", metavar="WRT", help="the variable, e.g. w; several, comma-separated "
                       "(W1,b1,W2,b2), give all their gradients from one sweep")
        s.add_argument("--shape", action="append", metavar="NAME=DIMS",
                       help="a variable's shape: X=m,n (matrix), w=n (vector), c= (scalar)")
        s.add_argument("--format", choices=("latex", "text", "unicode", "json", "index"), default="latex",
                       help="latex (default), text (the input language), unicode, json, or index "
                            "(one entry with indices and sums)")
        s.add_argument("--steps", action="store_true", help="print the derivation step by step")
        s.add_argument("--check", action="store_true",
                       help="verify against finite differences (and exactly with sympy when small; "
                            "with --emit, the generated code too)")
        s.add_argument("--exact", action="store_true",
                       help="with --check: always run the exact sympy check (default: within 0.5 s)")
        s.add_argument("--emit", choices=("numpy", "torch", "jax"),
                       help="print the source of a function computing the derivative")
        s.add_argument("--quiet", "-q", action="store_true", help="print only the derivative")
        s.add_argument("--assume", action="append", metavar="FACT",
                       help="e.g. rows_sum_to_one=Y: the rows of Y sum to one (one-hot targets)")
        s.add_argument("--syntax", choices=("matcalc", "matrixcalculus"), default="matcalc",
                       help="input language: matcalc's (default) or matrixcalculus.org's")
        s.add_argument("--symmetric", action="append", metavar="NAME",
                       help="declare a square matrix symmetric (A = A^T)")
        s.add_argument("--budget", type=float, metavar="SECONDS",
                       help="the work budget in seconds (default: $MATCALC_BUDGET, else 10)")
        if name == "diff":
            s.add_argument("--layout", choices=("mixed", "numerator", "denominator"), default="mixed")
            s.add_argument("--backprop", metavar="G", help="also print the backprop rule with upstream G")
        if name == "vjp":
            s.add_argument("--upstream", default="G", metavar="G", help="name of the upstream gradient")
    from .web import add_serve_parser  # the web stack itself is imported only by `serve`
    add_serve_parser(sub, options=command not in COMMANDS or command == "serve")
    return p


COMMANDS = ("diff", "hessian", "vjp", "serve")


def _render(d, fmt: str) -> str:
    if fmt == "json":
        import json
        return json.dumps(d.to_json(), ensure_ascii=False, indent=1)
    if fmt == "index":
        return d.index_latex
    # only the format asked for: text and unicode never import sympy
    return d.text if fmt == "text" else d.unicode if fmt == "unicode" else d.latex


def _header(d) -> str:
    shapes = ", ".join(f"{k}: {v}" for k, v in d.variable_shapes.items())
    from .expr import fmt_dim
    dims = "×".join(fmt_dim(x) for x in d.dims) or "scalar"
    what = {"diff": "derivative", "hessian": "Hessian", "vjp": "backprop rule"}[d.kind]
    return f"# {shapes}; {what} by {d.wrt}: {dims}"


def _dash_positionals(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """argv with EXPR and WRT after `--` whatever their first character: `-x.T@y` is an
    expression, not an option; only the subcommand's own options are taken as options."""
    sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    if sub is None or not argv or argv[0] not in sub.choices or "--" in argv:
        return argv
    actions = sub.choices[argv[0]]._option_string_actions
    if not any(a.startswith("-") and a != "-" and a not in actions for a in argv[1:]):
        return argv
    opts, pos, i = [], [], 1
    while i < len(argv):
        a = argv[i]
        name = a.split("=", 1)[0]
        if a.startswith("--") or name in actions:
            act = actions.get(name) or next((v for k, v in actions.items() if k.startswith(name)), None)
            opts.append(a)
            if act is not None and act.nargs != 0 and "=" not in a and i + 1 < len(argv):
                opts.append(argv[i + 1])  # the option's value, whatever it looks like
                i += 1
        else:
            pos.append(a)
        i += 1
    return [argv[0], *opts, "--", *pos]


def derive(args):
    """The Derivative (or, for several comma-separated variables, the Gradients) `args` ask for."""
    from . import api
    expr = args.expr
    shapes = _shapes(args.shape)
    facts = dict(assume=args.assume, symmetric=args.symmetric, syntax=args.syntax)
    if "," in args.wrt:
        if args.command == "hessian":
            raise MatcalcError(f"hessian takes one variable, not {args.wrt}")
        if args.command == "diff" and args.layout != "mixed":
            raise MatcalcError("--layout applies to one variable; several variables give gradients")
        from .gradients import grad
        return grad(expr, args.wrt, shapes=shapes, upstream=getattr(args, "upstream", None), **facts)
    if args.command == "diff":
        return api.diff(expr, args.wrt, shapes=shapes, layout=args.layout, **facts)
    if args.command == "hessian":
        return api.hessian(expr, args.wrt, shapes=shapes, **facts)
    return api.vjp(expr, args.wrt, upstream=args.upstream, shapes=shapes, **facts)


def _run_many(args, g) -> int:
    """Print the gradients of several variables: one block, with shared `where` names."""
    if args.emit:
        print(g.to_python(args.emit), end="")
        return 0
    if args.format == "json":
        import json
        print(json.dumps(g.to_json(), ensure_ascii=False, indent=1))
        return 0
    out = []
    if not args.quiet:
        shapes = ", ".join(f"{k}: {v}" for k, v in g.variable_shapes.items())
        what = "backprop rules" if g.upstream else "gradients"
        out.append(f"# {shapes}; {what} by {', '.join(g.wrts)}")
    for name, d in g.items():
        if args.steps:
            out.append(f"# steps for {name}:")
            out += _steps_lines(d, args.format)
        if args.format == "index":
            out.append(f"# {name}: {d.index_latex}")
    if args.format != "index":
        out.append({"latex": g.latex, "text": g.text, "unicode": g.unicode}[args.format])
    status = 0
    if args.check:
        result = g.check()
        out += [f"# check {k}: {r}" for k, r in result.items()]
        status = 0 if result.ok else 1
    print("\n".join(out))
    return status


def _steps_lines(d, fmt: str) -> list[str]:
    out = []
    for i, st in enumerate(d.steps, 1):
        body = st.latex if fmt == "latex" else st.text
        checks = "; ".join(f"{k}: {v}" for k, v in st.shapes.items())
        out.append(f"# step {i}: {st.rule}" + (f"   [{checks}]" if checks else ""))
        out.append(f"  {body}")
    return out


def run(argv: list[str]) -> int:
    from .budget import limit
    parser = _parser(argv[0] if argv else None)
    args = parser.parse_args(_dash_positionals(parser, argv))
    if args.command == "serve":
        from .web import serve_command
        return serve_command(args)
    with limit(getattr(args, "budget", None)):  # derivation and printing together: past it, one line and exit 2
        return _run(args)


def _run(args) -> int:
    from . import api
    expr = sys.stdin.read() if args.expr == "-" else args.expr
    args.expr = expr
    shapes = _shapes(args.shape)
    facts = dict(assume=args.assume, symmetric=args.symmetric, syntax=args.syntax)
    out = []
    d = derive(args)
    for w in d.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if not hasattr(d, "wrt"):  # several variables
        return _run_many(args, d)
    if args.emit or args.format == "json":
        return _emit_or_json(d, args)
    if not args.quiet:
        out.append(_header(d))
    if args.steps:
        out += _steps_lines(d, args.format)
    out.append(_render(d, args.format))
    if not args.quiet and d.vec_form and d.kind == "diff":
        if d.differential is not None:
            diff_form = d.differential_latex if args.format == "latex" else \
                d.differential_unicode if args.format == "unicode" else d.differential_text
            out.append("# differential: " + diff_form)
    backprop = getattr(args, "backprop", None)
    if not args.quiet and args.command == "diff" and (backprop or (d.vec_form and d.out_shape != ())):
        g = backprop or "G"
        try:
            b = api.vjp(expr, args.wrt, upstream=g, shapes=shapes, **facts)
            body = _render(b, args.format)
            if args.format == "index":  # the index form states its own left-hand side
                out.append(f"# backprop (upstream {g} = dL/dF): {body}")
                raise _Done
            lhs = f"\\frac{{\\partial L}}{{\\partial {args.wrt}}}" if args.format == "latex" else f"∂L/∂{args.wrt}" if args.format == "unicode" else f"dL/d{args.wrt}"
            out.append(f"# backprop (upstream {g} = dL/dF): {lhs} = {body}")
        except _Done:
            pass
        except MatcalcError:
            if backprop:  # asked for explicitly: say what is wrong
                raise
    status = 0
    if args.check:
        result = d.check(exact=True if args.exact else None)
        out.append(f"# check: {result}")
        status = 0 if result.ok else 1
    print("\n".join(out))
    return status


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush fails no more."""
    try:
        sys.stdout = open(os.devnull, "w")
    except OSError:
        pass


def _emit_or_json(d, args) -> int:
    """--emit (the source; --steps and --check as comments) or --format json (with "steps" and
    "check" keys): the options combine, none is dropped. Exit 1 when the check fails."""
    result = d.check(exact=True if args.exact else None, backend=args.emit) if args.check else None
    if args.emit:
        lines = []
        if args.steps:
            for i, st in enumerate(d.steps, 1):
                lines += [f"# step {i}: {st.rule}", f"#   {st.text}"]
        src = d.to_python(args.emit)
        if result is not None:
            src += f"# check: {result}\n"
        print("\n".join(lines + [src]) if lines else src, end="")
    else:
        import json
        out = d.to_json()
        if args.steps:
            out["steps"] = [{"rule": st.rule, "text": st.text, "latex": st.latex} for st in d.steps]
        if result is not None:
            out["check"] = {"ok": result.ok, "summary": str(result), "max_rel_error": result.max_rel_error,
                            "exact": result.exact}
        print(json.dumps(out, ensure_ascii=False, indent=1))
    return 0 if result is None or result.ok else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `matcalc` command; errors go to stderr with exit status 2."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        code = run(argv)
        sys.stdout.flush()  # a full disk must fail here, where it can be reported
    except MatcalcError as e:
        msg = str(e).rstrip("\n")
        lines = msg.split("\n")
        print("error: " + lines[0], file=sys.stderr)
        for line in lines[1:]:
            print("       " + line, file=sys.stderr)
        code = 2
    except SystemExit as e:  # argparse: usage errors (2) and --help/--version (0)
        code = e.code if isinstance(e.code, int) else 2
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:  # e.g. `matcalc diff ... | head -c1`: the reader left, nothing to say
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        code = 0
    except OSError as e:  # stdout on a full disk (`> /dev/full`), a closed terminal, …
        _quiet_stdout()
        print(f"error: cannot write the output: {e.strerror or e}", file=sys.stderr)
        code = 2
    except Exception as e:  # noqa: BLE001 - never a traceback
        print(f"error: internal error ({type(e).__name__}: {e}); please report it", file=sys.stderr)
        code = 2
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
