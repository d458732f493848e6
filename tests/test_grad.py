"""matcalc.grad: several gradients from one reverse sweep (issue 15, item 1)."""
import numpy as np
import pytest

import matcalc
from matcalc.verify import _evaluator, _jac_fd, sample_values

MLP = "sum((tanh(X @ W1 + b1) @ W2 + b2 - Y)**2)"
SOFTMAX_CE = "-sum(Y * log(softmax(tanh(X @ W1 + b1) @ W2 + b2, axis=1)))"
WRTS = ["W1", "b1", "W2", "b2"]


def _values(g, seed=0):
    values, _ = sample_values(dict(g.parsed.var_shapes), g.parsed.expr, seed, facts=g.parsed.facts)
    return values


@pytest.mark.parametrize("expr,assume", [(MLP, None), (SOFTMAX_CE, None), (SOFTMAX_CE, "rows_sum_to_one=Y")])
def test_four_gradients_from_one_call(expr, assume):
    g = matcalc.grad(expr, WRTS, assume=assume)
    assert list(g) == WRTS and isinstance(g, matcalc.Gradients)
    values = _values(g)
    got = g.evaluate(values)
    assert set(got) == set(WRTS)
    fun = _evaluator(g.parsed.expr, dict(g.parsed.var_shapes), {})
    for w in WRTS:
        single = matcalc.diff(expr, w, assume=assume)
        assert g[w].text == single.text                         # the single-variable result
        assert np.allclose(got[w], single.evaluate(values), rtol=1e-10, atol=1e-12)
        fd, _ = _jac_fd(fun, values, w)                           # finite differences
        assert np.allclose(got[w], fd, rtol=1e-5, atol=1e-6), w
    assert g.check().ok


def test_one_sweep_shares_pieces_in_the_block():
    g = matcalc.grad(MLP, "W1, b1, W2, b2")
    lines = g.text.splitlines()
    assert lines[0] == "t1 = tanh(X @ W1 + b1)"
    # the textbook order: delta2, the layer-2 gradients, delta1, the layer-1 gradients
    heads = [ln.split(" = ")[0] for ln in lines]
    assert heads == ["t1", "t2", "df/dW2", "df/db2", "t3", "df/dW1", "df/db1"]
    assert "\\begin{aligned}" in g.latex and g.latex.count("&=") == 7
    # the four results share their nodes: dW1 and db1 use the same delta node
    d1 = g["W1"].result
    db1 = g["b1"].result
    shared = {id(n) for n in matcalc.expr.postorder(d1)} & {id(n) for n in matcalc.expr.postorder(db1)}
    assert len(shared) > 10


def test_generated_function_returns_a_tuple_computing_shared_pieces_once():
    g = matcalc.grad(MLP, WRTS)
    src = g.to_python()
    assert src.count("np.tanh(") == 1 and "return (" in src
    fn = g.compile()
    values = _values(g, 1)
    out = fn(values)
    assert isinstance(out, tuple) and len(out) == 4
    ref = g.evaluate(values)
    for w, o in zip(WRTS, out):
        assert np.allclose(o, ref[w], rtol=1e-12, atol=1e-12)


def test_vjp_for_several_variables():
    expr = "tanh(X @ W1 + b1) @ W2"
    g = matcalc.vjp(expr, "W1,b1,W2", upstream="G")
    assert isinstance(g, matcalc.Gradients) and g.upstream == "G"
    assert "dL/dW1 = X.T @ t" in g.text
    g2 = matcalc.grad(expr, ["W1", "b1", "W2"], upstream="G")
    assert g2.text == g.text
    values = _values(g)
    values["G"] = np.random.default_rng(3).standard_normal(np.shape(matcalc.evaluate(expr, values)))
    got = g.evaluate(values)
    for w in ("W1", "b1", "W2"):
        assert np.allclose(got[w], matcalc.vjp(expr, w).evaluate(values), rtol=1e-10)
    assert g.check().ok
    assert all(isinstance(s, list) and s for s in g.steps.values())
    assert g.steps_latex


def test_grad_errors_and_absent_variables():
    with pytest.raises(matcalc.MatcalcError, match="grad needs a scalar"):
        matcalc.grad("X @ W", "W,X")
    with pytest.raises(matcalc.MatcalcError):
        matcalc.grad("sum(X @ W)", "W,1x")
    with pytest.raises(matcalc.MatcalcError):
        matcalc.grad("sum(X @ W)", "")
    g = matcalc.grad("sum((X @ w - y)**2)", "w,V")
    assert np.all(g.evaluate({"X": np.eye(2), "w": np.ones(2), "y": np.zeros(2), "V": np.eye(2)})["V"] == 0)
    assert g["V"].warnings and "V does not occur" in g.warnings[0]
    src = g.to_python()
    assert "def gradients(" in src


def test_grad_json():
    g = matcalc.grad(MLP, WRTS)
    js = g.to_json()
    assert js["wrt"] == WRTS and set(js["gradients"]) == set(WRTS) and js["text"] == g.text


def test_readme_grad_block_verbatim():
    from pathlib import Path
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme.split("print(g.text)\n", 1)[1].split('g["W1"]', 1)[0]
    shown = [ln[2:] for ln in block.strip().splitlines()]
    assert shown == matcalc.grad(MLP, ["W1", "b1", "W2", "b2"]).text.splitlines()


def test_help_examples_run(capsys):
    """Every `matcalc diff ...` example of --help runs."""
    import shlex
    from matcalc.cli import EXAMPLES, main
    for line in EXAMPLES.splitlines():
        line = line.strip()
        if line.startswith("matcalc "):
            cmd = line.split("   ")[0]
            assert main(shlex.split(cmd)[1:]) == 0, cmd
            capsys.readouterr()


def test_grad_takes_a_budget():
    import inspect
    assert "budget" in inspect.signature(matcalc.grad).parameters
    g = matcalc.grad(MLP, WRTS, budget=30)
    assert g._budget == 30 and g.text
    with pytest.raises(matcalc.MatcalcError):
        matcalc.grad(MLP, WRTS, budget=-1)
