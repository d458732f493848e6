"""The work budget: every derivation (and every rendering of its result) runs under a deadline.

A call such as `diff(..., budget=2.5)` gets 2.5 seconds; `budget=None` means the environment
variable `MATCALC_BUDGET` (seconds) if set, else `DEFAULT_SECONDS`. Past the deadline the work
stops with a `BudgetError` that names the limit and how to raise it.

The deadline is per call and per thread (a context variable): nested budgeted calls keep the
earliest deadline of the calls around them. Passes call `tick()` once per unit of work (a new
node, a node visited); it reads the clock only every `TICKS` calls, so it is cheap enough for
the innermost loops. `check()` reads the clock at once.

    with budget.limit(seconds, "rendering the text"):   # a scope with its own budget
        ...
    @budget.budgeted()                                   # adds the keyword budget= to a function
    def diff(expr, wrt, *, shapes=None): ...
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import math
import os
import time
from typing import Callable, Iterator

from .errors import BudgetError, MatcalcError

DEFAULT_SECONDS = 10.0
ENV = "MATCALC_BUDGET"
#: tick() reads the clock once every TICKS calls
TICKS = 512


class _Budget:
    """One budgeted scope: its deadline, the seconds it was given and what it is doing."""

    __slots__ = ("deadline", "seconds", "what", "left", "checks", "inner")

    def __init__(self, deadline: float, seconds: float, what: str):
        self.deadline, self.seconds, self.what, self.left, self.checks = deadline, seconds, what, TICKS, 0
        self.inner = 0  # the work of the scopes nested in this one

    @property
    def work(self) -> int:
        """The units of work ticked in this scope so far (a deterministic measure of effort)."""
        return self.checks * TICKS + TICKS - self.left + self.inner


_CURRENT: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("matcalc_budget", default=None)


def _fmt(seconds: float) -> str:
    return f"{seconds:g} s"


def seconds(budget: float | None = None) -> float:
    """The budget in seconds a call gets: `budget`, else $MATCALC_BUDGET, else DEFAULT_SECONDS
    (math.inf: no limit)."""
    source = "budget"
    if budget is None:
        env = os.environ.get(ENV, "").strip()
        if not env:
            return DEFAULT_SECONDS
        source = ENV
        try:
            budget = float(env)
        except ValueError:
            raise MatcalcError(f"{ENV}={env!r}: the work budget must be a number of seconds, e.g. 30") from None
    if isinstance(budget, bool) or not isinstance(budget, (int, float)):
        raise MatcalcError(f"{source} must be a number of seconds (or None for the default), "
                           f"not {type(budget).__name__}")
    budget = float(budget)
    if not budget > 0:  # also NaN
        raise MatcalcError(f"{source} must be a positive number of seconds, not {budget:g}")
    return budget


def current_seconds() -> float | None:
    """The seconds given to the innermost budgeted scope around the caller (None: none)."""
    b = _CURRENT.get()
    return None if b is None else b.seconds


@contextlib.contextmanager
def limit(budget: float | None = None, what: str = "the derivation") -> Iterator[_Budget]:
    """Run the block under a budget of `budget` seconds (see `seconds`), or the earlier deadline
    of an enclosing scope."""
    secs = seconds(budget)
    outer = _CURRENT.get()
    deadline = time.monotonic() + secs if math.isfinite(secs) else math.inf
    if outer is not None and outer.deadline <= deadline:
        scope = _Budget(outer.deadline, outer.seconds, outer.what)
    else:
        scope = _Budget(deadline, secs, what)
    token = _CURRENT.set(scope)
    try:
        yield scope
    finally:
        _CURRENT.reset(token)
        if outer is not None:
            outer.inner += scope.work


def check() -> None:
    """Raise BudgetError if the innermost budgeted scope is past its deadline."""
    b = _CURRENT.get()
    if b is not None and time.monotonic() > b.deadline:
        _exceeded(b)


def tick(units: int = 1) -> None:
    """`units` units of work (a node built, a node visited, a factor copied): every TICKS
    units, `check()`."""
    b = _CURRENT.get()
    if b is not None:
        b.left -= units
        if b.left <= 0:
            b.checks += (TICKS - b.left) // TICKS
            b.left = TICKS - (TICKS - b.left) % TICKS
            if time.monotonic() > b.deadline:
                _exceeded(b)


def _exceeded(b: _Budget):
    b.deadline = -math.inf  # every later check in this scope fails at once
    raise BudgetError(f"{b.what} took more than {_fmt(b.seconds)} (its work budget); "
                      f"pass budget=… (seconds) or set {ENV} to allow more")


#: the most operands one node may have (a sum of that many terms, a product of that many factors):
#: past it the graph itself is out of proportion to any input (inputs have at most 100 000 characters)
MAX_OPERANDS = 250_000


def too_many_operands(op: str, count: int) -> None:
    """Raise BudgetError for a node of `count` operands (past MAX_OPERANDS)."""
    what = {"add": "a sum of", "matmul": "a product of", "mul": "a product of"}.get(op, f"an operation ({op}) on")
    raise BudgetError(f"the expression would grow to {what} {count} operands, past its size budget "
                      f"({MAX_OPERANDS}; matcalc.budget.MAX_OPERANDS)")


def budgeted(what: str = "the derivation") -> Callable:
    """Decorator: the function gets a keyword `budget: float | None = None` and runs under it."""
    def deco(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, budget: float | None = None, **kwargs):
            with limit(budget, what):
                return fn(*args, **kwargs)
        sig = inspect.signature(fn)
        if "budget" not in sig.parameters:
            params = list(sig.parameters.values())
            extra = inspect.Parameter("budget", inspect.Parameter.KEYWORD_ONLY, default=None,
                                      annotation="float | None")
            at = next((i for i, p in enumerate(params) if p.kind == p.VAR_KEYWORD), len(params))
            wrapper.__signature__ = sig.replace(parameters=params[:at] + [extra] + params[at:])
        return wrapper
    return deco
