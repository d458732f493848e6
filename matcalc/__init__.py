"""matcalc: symbolic matrix calculus — derivatives in matrix notation, as LaTeX, verified.

    >>> import matcalc
    >>> matcalc.diff("sum((X @ w - y) ** 2)", "w").text
    '2 * X.T @ (X @ w - y)'
"""
from .api import Derivative, diff, evaluate, hessian, parse, vjp
from .gradients import Gradients, grad
from .errors import BudgetError, InternalError, MatcalcError, ParseError, ShapeError

__version__ = "0.1.0"


def load_ipython_extension(ipython) -> None:
    """`%load_ext matcalc`: the `%matcalc` and `%%matcalc` magics (see `matcalc.magic`)."""
    from .magic import load_ipython_extension as load
    load(ipython)


__all__ = ["Derivative", "Gradients", "diff", "evaluate", "grad", "hessian", "parse", "vjp",
           "MatcalcError", "ParseError", "ShapeError", "InternalError", "BudgetError", "__version__"]
