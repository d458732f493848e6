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
    """The source line with a caret line under columns `start`..`end` (0-based).

    Tabs are expanded (every 8 columns) in both lines, so the caret sits under its character
    whatever the terminal's tab stops; other control characters are echoed as '?'."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    line_end = len(text) if line_end < 0 else line_end
    shown, offsets = [], []
    for ch in text[line_start:line_end]:
        offsets.append(len(shown))
        if ch == "\t":
            shown.extend(" " * (8 - len(shown) % 8))
        else:
            shown.append(ch if ch.isprintable() else "?")
    offsets.append(len(shown))
    stop = min(end if end is not None else start + 1, line_end)
    col = offsets[start - line_start]
    width = max(1, offsets[max(stop, start) - line_start] - col) if stop > start else 1
    return f"{''.join(shown)}\n{' ' * col}{'^' * width}"


def position(text: str, pos: int) -> str:
    """'column C', or 'line L, column C' in a text of several lines (1-based)."""
    if "\n" not in text:
        return f"column {pos + 1}"
    line = text.count("\n", 0, pos) + 1
    return f"line {line}, column {pos - (text.rfind(chr(10), 0, pos) + 1) + 1}"
