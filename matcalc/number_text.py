"""How a number is written: in the input language, LaTeX, unicode and generated Python source.

Constants fold in IEEE arithmetic (`leaves.py`), so a constant may be inf, −inf or nan (1/0,
−1/0, 0/0). The input language has no name for them: its text writes the division that makes
them, which reads back as the same constant; the display notations name them; Python source
calls float(), since repr's 'inf' and 'nan' are no Python names.
"""
from __future__ import annotations

import math


def fmt_number(v: float) -> str:
    """A number as the input language writes it; inf, −inf and nan as 1/0, −1/0 and 0/0."""
    if v != v:
        return "(0 / 0)"
    if v in (math.inf, -math.inf):
        return "(1 / 0)" if v > 0 else "-(1 / 0)"
    if float(v).is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(float(v))


def special_number(v: float, inf: str, nan: str) -> str | None:
    """The name of an infinite or undefined number in a display notation (∞, \\infty); None
    for a finite one."""
    if v != v:
        return nan
    if v in (math.inf, -math.inf):
        return inf if v > 0 else "-" + inf
    return None


def latex_number(v: float) -> str:
    """A number in LaTeX: \\infty and \\mathrm{NaN} for the infinite and undefined ones."""
    return special_number(v, r"\infty", r"\mathrm{NaN}") or fmt_number(v)


def code_number(v: float) -> str:
    """A number as Python source (any backend): float('inf') and float('nan') where not finite."""
    if not math.isfinite(v):
        return f"float('{v}')"
    return repr(float(v))
