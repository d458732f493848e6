"""The simplifier's identities (matcalc/identities.py), each checked on its own example: built
without the identity and with it, the graphs differ (it fires) and evaluate to the same numbers
at random values (it is an identity)."""
import numpy as np
import pytest

import matcalc
from matcalc import identities as I
from matcalc.evaluate import bind_values, evaluate_node

SIZES = {"m": 3, "n": 4, "p": 2, "q": 3, "r": 2, "s": 3}


def _size(d, dims):
    if isinstance(d, int):
        return d
    if isinstance(d, tuple):
        return int(np.prod([_size(f, dims) for f in d]))
    return dims.setdefault(d, SIZES.get(d, 3))


def _values(parsed, domain, rng):
    dims = {}
    out = {}
    for name, shape in parsed.var_shapes.items():
        shp = tuple(_size(d, dims) for d in shape)
        kind = domain.get(name)
        if kind == "positive":
            v = rng.uniform(0.5, 2.0, shp)
        elif kind == "invertible":
            v = rng.normal(size=shp) + 3 * np.eye(shp[0])
        elif kind == "positive definite":
            a = rng.normal(size=shp)
            v = a @ a.T + np.eye(shp[0])
        else:
            v = rng.normal(size=shp)
        out[name] = v if shp else float(v)
    return out


RULES = I.all_identities()


def test_the_table_is_whole():
    names = [r.name for r in RULES]
    assert len(names) == len(set(names)) >= 30
    for r in RULES:
        assert r.equation and "\n" not in r.equation and r.example, r


@pytest.mark.parametrize("rule", RULES, ids=[f"{r.op}:{r.name}" for r in RULES])
def test_identity_holds_on_its_example(rule):
    with I.disabled(rule.name):
        before = matcalc.parse(rule.example, shapes=rule.shapes)
    after = matcalc.parse(rule.example, shapes=rule.shapes)
    assert before.expr is not after.expr, f"{rule.name} does not fire on {rule.example!r}"
    rng = np.random.default_rng(7)
    for _ in range(3):
        values = _values(after, rule.domain, rng)
        env0, dims0 = bind_values(before.var_shapes, values)
        env1, dims1 = bind_values(after.var_shapes, values)
        lhs = np.asarray(evaluate_node(before.expr, env0, dims0), dtype=float)
        rhs = np.asarray(evaluate_node(after.expr, env1, dims1), dtype=float)
        assert lhs.shape == rhs.shape
        np.testing.assert_allclose(rhs, lhs, rtol=1e-9, atol=1e-9, err_msg=f"{rule.equation}: {rule.example}")


def test_disabling_is_local_and_forgets_nothing():
    canonical = matcalc.parse("(A @ B).T").expr
    with I.disabled("transpose_product"):
        raw = matcalc.parse("(A @ B).T").expr
    assert raw is not canonical
    assert matcalc.parse("(A @ B).T").expr is canonical
