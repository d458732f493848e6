"""The public acceptance cases (a copy of shared/cases/public_cases.py): numbers, round trip, size."""
import numpy as np
import pytest

import matcalc
import public_cases as P

CASES = P.CASES


def _derive(case):
    shapes = None if case.get("defaults") else case["shapes"]
    if case["kind"] == "diff":
        return matcalc.diff(case["expr"], case["wrt"], shapes=shapes, layout=case.get("layout", "mixed"))
    if case["kind"] == "hessian":
        return matcalc.hessian(case["expr"], case["wrt"], shapes=shapes)
    return matcalc.vjp(case["expr"], case["wrt"], upstream=case.get("upstream", "G"), shapes=shapes)


@pytest.mark.parametrize("case", [c for c in CASES if c["kind"] != "error"], ids=lambda c: c["id"])
def test_numeric(case):
    for seed in (0, 7):
        values = P.sample(case, seed=seed)
        got = np.asarray(_derive(case).evaluate(values), dtype=float)
        ref = P.reference(case, values)
        assert got.shape == ref.shape
        rtol, atol = P.tolerance(case)
        np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol)


@pytest.mark.parametrize("case", [c for c in CASES if c["kind"] == "diff"], ids=lambda c: c["id"])
def test_text_round_trip(case):
    d = _derive(case)
    values = P.sample(case, seed=3)
    got = np.asarray(d.evaluate(values))
    if got.ndim > 2 or case.get("layout", "mixed") != "mixed":
        matcalc.parse(d.text)  # still in the input language
        return
    shapes = None if case.get("defaults") else case["shapes"]
    back = matcalc.evaluate(d.text, values, shapes=shapes)
    np.testing.assert_allclose(back, got, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("case", [c for c in CASES if c.get("canonical")], ids=lambda c: c["id"])
def test_size_close_to_canonical(case):
    d = _derive(case)
    assert P.token_count(d.text) <= 1.25 * P.token_count(case["canonical"]), d.text


@pytest.mark.parametrize("case", [c for c in CASES if c["kind"] == "error"], ids=lambda c: c["id"])
def test_errors(case):
    with pytest.raises(getattr(matcalc, case["error"])) as info:
        matcalc.diff(case["expr"], case["wrt"], shapes=case["shapes"])
    assert str(info.value) and not str(info.value).startswith("internal error")


@pytest.mark.parametrize("case", [c for c in CASES if c["kind"] != "error"], ids=lambda c: c["id"])
def test_latex_renders(case):
    d = _derive(case)
    assert isinstance(d.latex, str) and d.latex
    assert len(d.shape) == len(np.asarray(d.evaluate(P.sample(case))).shape)
