"""The exceptions matcalc raises: every bad input is a `MatcalcError`."""


class MatcalcError(ValueError):
    """Base class of every error matcalc raises."""


class ParseError(MatcalcError):
    """The expression is not in the input language; the message shows a caret."""


class ShapeError(MatcalcError):
    """Operand shapes do not fit the operator; the message names both shapes."""


class InternalError(MatcalcError):
    """A gap or bug in matcalc itself (a missing rule, an ill-shaped intermediate), never the
    user's mistake: still a `MatcalcError`, so the API's contract holds, but distinct from
    `ParseError` and `ShapeError` so that tests can tell a missing rule from bad input."""


class BudgetError(MatcalcError):
    """A derivation (or its rendering) went past its work budget; the message names the limit
    and how to raise it."""


def caret(text: str, start: int, end: int | None = None) -> str:
    """The source line with a caret line under columns `start`..`end` (0-based)."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    line_end = len(text) if line_end < 0 else line_end
    line = "".join(ch if ch.isprintable() else "?" for ch in text[line_start:line_end])
    col = start - line_start
    width = max(1, min((end if end is not None else start + 1), line_end) - start)
    return f"{line}\n{' ' * col}{'^' * width}"
