"""Guard: the steps (`d.steps`, `d.steps_latex`) and the index form (`d.index_latex`) are linear
in the size of the derivative's graph (issue 12), on the families whose graphs are deep and
shared: the gradient of an L-layer tanh MLP by W1 and the Hessian of k nested softmaxes; and on
a wide one, the gradient of a sum of N terms (a frontier of N terms: a line writes the terms its
step changed, not all N).

The effort is counted in the work budget's units (`matcalc.budget`: nodes built and visited,
nodes and entries written), which are deterministic, so the guards never depend on the
machine's load; the texts are counted in characters. Doubling the depth (the width) doubles a linear
measure; the bounds (×3) leave room above that and stay far below the quadratic growth these
passes had (×4 per doubling: each line rewrote the whole graph below it) or the exponential one
of the index form on the softmax Hessian (a shared graph written as a tree).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

import matcalc
from matcalc import budget

sys.path.insert(0, str(Path(__file__).parent / "bench"))
import families as F  # noqa: E402


def mlp_gradient(L: int) -> matcalc.Derivative:
    expr, shapes = F._mlp(L)
    return matcalc.diff(expr, "W1", shapes=shapes)


def softmax_hessian(k: int) -> matcalc.Derivative:
    return matcalc.hessian(F.nested_softmax(k)[1], "x")


def _measure(make, n: int, what: str) -> tuple[int, int]:
    """(work units, characters) of one pass over a fresh derivative, with the per-node memos of
    the simplifier warm (a first derivative kept alive meanwhile), so that the count does not
    depend on what earlier tests left in memory."""
    warm = make(n)
    _pass(warm, what)
    return _pass(make(n), what)


def _pass(d: matcalc.Derivative, what: str) -> tuple[int, int]:
    with budget.limit(120) as scope:
        if what == "steps":
            steps = d.steps
            chars = sum(len(s.text) + len(s.latex) + sum(map(len, s.shapes)) for s in steps)
            chars += len(d.steps_latex)
        else:
            chars = len(d.index_latex)
    return scope.work, chars


def flat_sum_gradient(n: int) -> matcalc.Derivative:
    return matcalc.diff(F.flat_sum(n)[1], "x")


def nested_tanh_gradient(k: int) -> matcalc.Derivative:
    """Each adjoint is the one before times a factor, all flattened into one product: a line
    writes it as the earlier adjoint's name times the new factor."""
    return matcalc.diff("sum(" + "tanh(" * k + "x" + ")" * k + ")", "x")


FAMILIES = {"MLP gradient": (mlp_gradient, 16), "nested softmax Hessian": (softmax_hessian, 8),
            "flat sum gradient": (flat_sum_gradient, 100), "nested tanh gradient": (nested_tanh_gradient, 50)}


@pytest.mark.parametrize("what", ["steps", "index form"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_doubling_the_depth_at_most_triples_the_work_and_the_text(family, what):
    make, n = FAMILIES[family]
    w1, c1 = _measure(make, n, what)
    w2, c2 = _measure(make, 2 * n, what)
    assert w2 <= 3 * w1, f"{family}, {what}: work {w2} at depth {2 * n}, {w1} at {n}"
    assert c2 <= 3 * c1, f"{family}, {what}: {c2} characters at depth {2 * n}, {c1} at {n}"


def test_a_deep_mlp_has_short_step_lines():
    """No line rewrites the network: the lines name the long pieces once (a1…, g1…) and reuse them."""
    steps = mlp_gradient(48).steps
    longest = max(len(s.text) for s in steps[1:-1])  # the first line defines the forward pass
    assert longest < 1000, longest
    assert any(" where " in s.text for s in steps)
