"""matcalc: symbolic matrix calculus — derivatives in matrix notation, as LaTeX, verified.

    >>> import matcalc
    >>> matcalc.diff("sum((X @ w - y) ** 2)", "w").text
    '2 * X.T @ (X @ w - y)'
"""
import sys

from .api import Derivative, diff, evaluate, hessian, parse, vjp
from .errors import BudgetError, InternalError, MatcalcError, ParseError, ShapeError

__version__ = "0.1.0"


class _Package(type(sys)):
    """numpy (and with it the submodule `matcalc.evaluate`) is imported when a number is first
    computed; importing a submodule sets the package's attribute of that name, which must stay
    the function `matcalc.evaluate`."""

    def __setattr__(self, name, value):
        if name == "evaluate" and isinstance(value, type(sys)):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


_LAZY = ("grad", "Gradients")  # imported on first use: the CLI's one-variable call never needs them


def __getattr__(name: str):
    if name in _LAZY:
        from .gradients import Gradients, grad
        globals().update(grad=grad, Gradients=Gradients)
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def load_ipython_extension(ipython) -> None:
    """`%load_ext matcalc`: the `%matcalc` and `%%matcalc` magics (see `matcalc.magic`)."""
    from .magic import load_ipython_extension as load
    load(ipython)


__all__ = ["Derivative", "Gradients", "diff", "evaluate", "grad", "hessian", "parse", "vjp",
           "MatcalcError", "ParseError", "ShapeError", "InternalError", "BudgetError", "__version__"]
