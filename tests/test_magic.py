"""The Jupyter magic: `%load_ext matcalc`, `%matcalc ...`, `%%matcalc` (issue 15)."""
from __future__ import annotations

import pytest

import matcalc

IPython = pytest.importorskip("IPython")
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from IPython.utils.capture import capture_output  # noqa: E402


@pytest.fixture(scope="module")
def ip():
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "matcalc")
    return shell


def latex_outputs(cap):
    return [o.data.get("text/latex", "") for o in cap.outputs]


def test_line_magic_renders_latex(ip):
    with capture_output() as cap:
        ip.run_line_magic("matcalc", 'diff "sum((X@w - y)**2)" w')
    out = latex_outputs(cap)
    assert len(out) == 1
    d = matcalc.diff("sum((X@w - y)**2)", "w")
    assert d.latex in out[0] and "\\frac{\\partial f}{\\partial w}" in out[0]


def test_line_magic_kronecker_with_differential_and_backprop(ip):
    with capture_output() as cap:
        ip.run_line_magic("matcalc", "diff X@W+b W")
    out = latex_outputs(cap)
    assert len(out) == 3
    assert "I_{p} \\otimes X" in out[0] and "\\mathrm{d}F" in out[1] and "X^{T} G" in out[2]


def test_line_magic_minus_expression_warning_and_text(ip):
    with capture_output() as cap:
        ip.run_line_magic("matcalc", 'diff "-x.T@y" x --format text -q')
    assert cap.stdout.strip() == "-y"
    with capture_output() as cap:
        ip.run_line_magic("matcalc", 'diff "sum(W*X)" w')
    assert "warning: w does not occur" in cap.stderr
    with capture_output() as cap:
        ip.run_line_magic("matcalc", 'diff "x^2" x')
    assert "did you mean x**2?" in cap.stderr and not cap.outputs


def test_cell_magic_body_is_the_expression(ip):
    with capture_output() as cap:
        ip.run_cell_magic("matcalc", "diff W1,b1,W2,b2", "sum((tanh(X @ W1 + b1)\n  @ W2 + b2 - Y)**2)")
    out = latex_outputs(cap)
    assert len(out) == 1 and "\\begin{aligned}" in out[0] and out[0].count("&=") == 7


def test_cell_magic_one_derivation_per_line(ip):
    with capture_output() as cap:
        ip.run_cell_magic("matcalc", "", 'diff "x.T@A@x" x\n# a comment\nhessian "x.T@A@x" x\n')
    out = latex_outputs(cap)
    assert len(out) == 2
    assert "A^{T}" in out[1] or "A +" in out[1]


def test_steps_in_the_magic(ip):
    with capture_output() as cap:
        ip.run_line_magic("matcalc", 'diff "sum((X@w - y)**2)" w --steps')
    out = latex_outputs(cap)
    assert len(out) == 2 and "&" in out[0] and matcalc.diff("sum((X@w - y)**2)", "w").latex in out[1]
