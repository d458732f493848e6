"""matcalc's own gaps are `InternalError`s: still `MatcalcError`s (API.md), never mistaken for the
user's `ParseError` or `ShapeError` (issue 11, item 10)."""
from __future__ import annotations

import pytest

import matcalc
from matcalc import engine, simplify as S
from matcalc.expr import make


def test_internal_error_is_a_matcalc_error_distinct_from_input_errors():
    assert issubclass(matcalc.InternalError, matcalc.MatcalcError)
    assert not issubclass(matcalc.InternalError, (matcalc.ParseError, matcalc.ShapeError))
    assert issubclass(matcalc.BudgetError, matcalc.MatcalcError)


def test_a_missing_reverse_rule_is_an_internal_error():
    x = S.var("x", ("n",))
    f = S.sum_(make("no_such_operator", (x,), None, ("n",)))
    with pytest.raises(matcalc.InternalError, match="no derivative rule"):
        engine.reverse(f, x, S.const(1))


def test_a_missing_forward_rule_is_an_internal_error():
    x = S.var("x", ("n",))
    f = make("no_such_operator", (x,), None, ("n",))
    with pytest.raises(matcalc.InternalError, match="no derivative rule"):
        engine.forward(f, {"x": S.dvar("x", ("n",))})


def test_bad_input_is_not_an_internal_error():
    for expr, wrt in [("x @ y", "x"), ("sum(x", "x"), ("X @ w + y.T", "w")]:
        with pytest.raises(matcalc.MatcalcError) as info:
            matcalc.diff(expr, wrt)
        assert not isinstance(info.value, matcalc.InternalError), (expr, info.value)
