"""Printers on shared graphs (issues 11 items 4-5 and 12): `where` bindings in dependency order,
text linear in the graph, no dimension nothing binds, no recursion proportional to depth."""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

import matcalc


def bindings(text: str) -> list[tuple[str, str]]:
    if " where " not in text:
        return []
    return [tuple(b.split(" = ", 1)) for b in text.split(" where ", 1)[1].split("; ")]


def assert_ordered(text: str) -> None:
    """Every binding uses only names bound before it (and none uses its own name)."""
    defs = bindings(text)
    names = [k for k, _ in defs]
    for i, (k, body) in enumerate(defs):
        used = set(re.findall(r"\bt\d+\b", body)) & set(names)
        assert used <= set(names[:i]), f"{k} = {body[:80]} uses {sorted(used - set(names[:i]))} bound later"


ORDER_CASES = [
    (matcalc.diff, "dot(A @ x + w / (a - w), A @ x + w / (a - w)) * (A @ x + w / (a - w))", "a", {}),
    (matcalc.vjp, "dot(A @ x + w / (a - w), A @ x + w / (a - w)) * (A @ x + w / (a - w))", "a", {}),
    (matcalc.hessian, "logdet(softmax(softmax(tau * J.T, axis=1), axis=1))", "tau",
     {"shapes": {"J": (3, 3), "tau": ()}}),
    (matcalc.hessian, "sum(softmax(softmax(softmax(x))))", "x", {}),
]


@pytest.mark.parametrize("fn, expr, wrt, kw", ORDER_CASES, ids=[f"{c[0].__name__}-{c[1][:30]}" for c in ORDER_CASES])
def test_where_bindings_in_dependency_order_and_text_evaluates_back(fn, expr, wrt, kw):
    d = fn(expr, wrt, **kw)
    assert_ordered(d.text)
    shapes = {k: v for k, v in d.parsed.var_shapes.items()}
    rng = np.random.default_rng(3)
    size = {"m": 3, "n": 3}
    vals = {k: (rng.standard_normal(tuple(s if isinstance(s, int) else size.get(s, 3) for s in v)) * 0.3
                if v != () else 0.7) for k, v in shapes.items()}
    if d.upstream:
        return  # the ordering is the point here; the vjp's values are checked by the oracle tests
    want = d.evaluate(vals)
    got = matcalc.evaluate(d.text, vals)
    assert np.allclose(got.reshape(want.shape) if got.size == want.size else got, want)


@pytest.mark.parametrize("expr, wrt", [("sum(exp(A - A)) * x", "x"),
                                       ("eye(3) @ u + sum(exp(f @ u.T), axis=1)", "f"),
                                       ("c + diag(p @ (W.T @ c).T)", "c")])
def test_text_binds_every_dimension(expr, wrt):
    d = matcalc.diff(expr, wrt)
    p = matcalc.parse(expr)
    rng = np.random.default_rng(0)
    vals = {k: rng.standard_normal(tuple(3 if not isinstance(s, int) else s for s in v)) for k, v in p.var_shapes.items()}
    vals.setdefault(wrt, rng.standard_normal(3))
    assert np.allclose(matcalc.evaluate(d.text, vals), d.evaluate(vals).reshape(matcalc.evaluate(d.text, vals).shape))


def _nested(fn: str, k: int) -> str:
    return "sum(" + f"{fn}(" * k + "x" + ")" * k + ")"


def test_nested_softmax_hessian_text_is_small():
    pytest.importorskip("matcalc.transpose", reason="deriving it takes the memoised transpose")
    d = matcalc.hessian(_nested("softmax", 12), "x")
    assert len(d.text) < 20_000
    assert_ordered(d.text)


def test_text_grows_linearly_with_nesting():
    pytest.importorskip("matcalc.transpose", reason="deriving it takes the memoised transpose")
    sizes = [len(matcalc.hessian(_nested("softmax", k), "x").text) for k in (8, 16)]
    assert sizes[1] < 2.6 * sizes[0], sizes  # linear: about twice; it was x2.5 per level


def test_deep_text_parses_back():
    """A text never nests deeper than the parser reads: deep pieces are named."""
    expr = "sum(t1500) where t1 = A @ x; " + "; ".join(f"t{i} = A @ t{i - 1} + x" for i in range(2, 1501))
    p = matcalc.parse(expr)
    assert matcalc.parse(p.text).expr is p.expr
    for get in (lambda: p.latex, lambda: repr(p), lambda: matcalc.render.to_unicode(p.expr)):
        get()


def test_text_format_never_imports_sympy_or_numpy():
    code = ("import sys; from matcalc import cli; cli.main(['diff', 'X@W+b', 'W', '--format', 'text']); "
            "cli.main(['diff', 'sum((X@w - y)**2)', 'w', '--format', 'unicode']); "
            "print('sympy' in sys.modules, 'numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False False", out.stdout


def test_parsing_writes_no_cache_file(tmp_path):
    """The parser's tables ship in matcalc/standalone_parser.py: nothing is written at run time
    (no ~/.cache/matcalc), so a read-only home or cache directory changes nothing."""
    code = "import matcalc; print(matcalc.diff('x.T @ A @ x', 'x').text)"
    import os
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"),
               MATCALC_CACHE_DIR=str(tmp_path / "cache"))
    for syntax_code in (code, code.replace("'x.T @ A @ x', 'x'", "\"x' * A * x\", 'x', syntax='matrixcalculus'")):
        out = subprocess.run([sys.executable, "-c", syntax_code], capture_output=True, text=True, env=env,
                             timeout=120, cwd=tmp_path)
        assert out.returncode == 0 and out.stdout.strip() == "(A + A.T) @ x" and not out.stderr, out.stderr
    assert list(home.iterdir()) == [] and not (tmp_path / "cache").exists()