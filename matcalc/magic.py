"""Jupyter/IPython magics: `%load_ext matcalc`, then

    %matcalc diff X@W+b W                       one derivation, the CLI's arguments
    %%matcalc diff W --shape X=m,n              the cell's body is EXPR (it may span lines)
    sum((X @ W - Y) ** 2)
    %%matcalc                                   or, with nothing on the first line,
    diff "x.T@A@x" x                            one derivation per line
    hessian "x.T@A@x" x

render the result as LaTeX (with the inferred shapes, the differential and backprop rule of a
Jacobian with more than two axes, the steps with `--steps`) as the command line prints it.
Other formats (`--format text`, `--emit`, `--check`, `json`) print what the command prints.
IPython is imported only when the extension is loaded.
"""
from __future__ import annotations

import shlex
import sys


def load_ipython_extension(ipython) -> None:
    """Register `%matcalc` (line) and `%%matcalc` (cell)."""
    ipython.register_magic_function(line_magic, "line", "matcalc")
    ipython.register_magic_function(cell_magic, "cell", "matcalc")


def line_magic(line: str) -> None:
    """`%matcalc diff EXPR WRT [options]`: the same arguments as the command line."""
    show(_split(line))


def cell_magic(line: str, cell: str) -> None:
    """`%%matcalc CMD WRT [options]` with EXPR as the body, or one command line per body line."""
    if line.strip():
        argv = _split(line)
        if argv is None:
            return
        show(argv[:1] + [" ".join(cell.split("\n")).strip()] + argv[1:])
        return
    for row in cell.splitlines():
        if row.strip() and not row.lstrip().startswith("#"):
            show(_split(row))


def _split(line: str):
    try:
        return shlex.split(line)
    except ValueError as e:  # an unclosed quote
        print(f"error: {e}", file=sys.stderr)
        return None


def show(argv) -> None:
    """Display one derivation as LaTeX (or print the command line's output for other formats)."""
    if argv is None:
        return
    from . import cli
    from .errors import MatcalcError
    parser = cli._parser()
    try:
        args = parser.parse_args(cli._dash_positionals(parser, argv))
    except SystemExit:  # argparse printed the usage error
        return
    if args.format != "latex" or args.emit or args.check:
        cli.main(argv)
        return
    from IPython.display import Latex, display
    try:
        d = cli.derive(args)
        for w in d.warnings:
            print(f"warning: {w}", file=sys.stderr)
        for block in _latex_blocks(d, args):
            display(Latex(f"$${block}$$"))
    except MatcalcError as e:
        lines = str(e).rstrip("\n").split("\n")
        print("error: " + "\n       ".join(lines), file=sys.stderr)


def _latex_blocks(d, args) -> list[str]:
    """What the command line prints, as LaTeX: the steps, the result with the shapes, and for a
    derivative of more than two axes its differential and backprop rule."""
    from .render import shapes_latex
    out = []
    several = not hasattr(d, "wrt")
    if args.steps:
        out += [x.steps_latex for x in (d.values() if several else [d])]
    if several:
        return out + [d._repr_latex_().strip("$")]
    out.append(f"{d.equation_latex} \\qquad {shapes_latex(d._shapes_used())}")
    if d.vec_form and d.kind == "diff" and d.differential is not None:
        out.append(d.differential_latex)
        backprop = getattr(args, "backprop", None) or ("G" if d.out_shape != () else None)
        if backprop:
            from . import api
            from .errors import MatcalcError
            try:
                b = api.vjp(args.expr, args.wrt, upstream=backprop, shapes=cli_shapes(args),
                            assume=args.assume, symmetric=args.symmetric, syntax=args.syntax)
                out.append(f"{b.equation_latex} \\qquad \\text{{(backprop, upstream }}{backprop})")
            except MatcalcError:
                pass
    return out


def cli_shapes(args):
    from .cli import _shapes
    return _shapes(args.shape)
