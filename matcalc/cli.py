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
"""


def _shapes(items: list[str] | None) -> dict | None:
    if not items:
        return None
    out = {}
    for item in items:
        if "=" not in item:
            raise MatcalcError(f"--shape {item}: write NAME=DIMS, e.g. X=m,n or w=n or c= for a scalar")
        name, dims = item.split("=", 1)
        dims = dims.strip()
        out[name.strip()] = tuple(int(d) if d.strip().isascii() and d.strip().isdigit() else d.strip()
                                  for d in dims.split(",")) if dims else ()
    return out


class _Done(Exception):
    """The backprop line is written."""


def _parser() -> argparse.ArgumentParser:
    from . import __version__
    p = argparse.ArgumentParser(prog="matcalc", description="Symbolic matrix calculus: derivatives in "
                                "matrix notation, as LaTeX or text.", epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"matcalc {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="{diff,hessian,vjp}")
    for name, help_ in (("diff", "first derivative of EXPR by WRT"),
                        ("hessian", "second derivative of a scalar EXPR by WRT"),
                        ("vjp", "backprop rule: gradient of sum(G * EXPR) by WRT")):
        s = sub.add_parser(name, help=help_, description=help_)
        s.add_argument("expr", metavar="EXPR", help='the expression, e.g. "sum((X@w - y)**2)"; - reads stdin')
        s.add_argument("wrt", metavar="WRT", help="the variable, e.g. w")
        s.add_argument("--shape", action="append", metavar="NAME=DIMS",
                       help="a variable's shape: X=m,n (matrix), w=n (vector), c= (scalar)")
        s.add_argument("--format", choices=("latex", "text", "unicode", "json", "index"), default="latex",
                       help="latex (default), text (the input language), unicode, json, or index "
                            "(one entry with indices and sums)")
        s.add_argument("--steps", action="store_true", help="print the derivation step by step")
        s.add_argument("--check", action="store_true",
                       help="verify against finite differences (and exactly with sympy when small)")
        s.add_argument("--emit", choices=("numpy", "torch", "jax"),
                       help="print the source of a function computing the derivative")
        s.add_argument("--quiet", "-q", action="store_true", help="print only the derivative")
        s.add_argument("--assume", action="append", metavar="FACT",
                       help="e.g. rows_sum_to_one=Y: the rows of Y sum to one (one-hot targets)")
        s.add_argument("--syntax", choices=("matcalc", "matrixcalculus"), default="matcalc",
                       help="input language: matcalc's (default) or matrixcalculus.org's")
        s.add_argument("--symmetric", action="append", metavar="NAME",
                       help="declare a square matrix symmetric (A = A^T)")
        if name == "diff":
            s.add_argument("--layout", choices=("mixed", "numerator", "denominator"), default="mixed")
            s.add_argument("--backprop", metavar="G", help="also print the backprop rule with upstream G")
        if name == "vjp":
            s.add_argument("--upstream", default="G", metavar="G", help="name of the upstream gradient")
    return p


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


def run(argv: list[str]) -> int:
    from . import api
    args = _parser().parse_args(argv)
    expr = sys.stdin.read() if args.expr == "-" else args.expr
    shapes = _shapes(args.shape)
    facts = dict(assume=args.assume, symmetric=args.symmetric, syntax=args.syntax)
    out = []
    if args.command == "diff":
        d = api.diff(expr, args.wrt, shapes=shapes, layout=args.layout, **facts)
    elif args.command == "hessian":
        d = api.hessian(expr, args.wrt, shapes=shapes, **facts)
    else:
        d = api.vjp(expr, args.wrt, upstream=args.upstream, shapes=shapes, **facts)
    if args.emit:
        print(d.to_python(args.emit), end="")
        return 0
    if args.format == "json":
        print(_render(d, "json"))
        return 0
    if not args.quiet:
        out.append(_header(d))
    if args.steps:
        for i, st in enumerate(d.steps, 1):
            body = st.latex if args.format == "latex" else st.text
            checks = "; ".join(f"{k}: {v}" for k, v in st.shapes.items())
            out.append(f"# step {i}: {st.rule}" + (f"   [{checks}]" if checks else ""))
            out.append(f"  {body}")
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
        result = d.check()
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
