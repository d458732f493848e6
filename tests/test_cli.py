"""The command line: `matcalc diff|hessian|vjp EXPR WRT [options]`.

Most tests call `matcalc.cli.main([...])` in-process (capsys); a few run the installed `matcalc`
command in a subprocess.  Known matcalc bugs are `xfail(strict=True)` with the reason.
"""
from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import matcalc
from matcalc.cli import main

HEADLINE_SHAPES = {"X": "m×n", "W": "n×p", "b": "p-vector"}
KRON_TEXT = r"kron\(eye\((p|cols\(W\)|len\(b\))\), X\)"  # the unnamed p may be written cols(W)


def header(line):
    """'# X: m×n, W: n×p; derivative by W: …' -> ({'X': 'm×n', 'W': 'n×p'}, 'derivative', 'W', '…')."""
    m = re.fullmatch(r"# (.*); (derivative|Hessian|backprop rule) by (\w+): (\S+)", line)
    assert m, line
    shapes = dict(item.split(": ", 1) for item in m.group(1).split(", "))
    return shapes, m.group(2), m.group(3), m.group(4)


def assert_header(line, shapes, what, wrt, dims):
    assert header(line) == (shapes, what, wrt, dims), line


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def ok(capsys, *argv):
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert err == "" or "Traceback" not in err
    return out


def fails(capsys, *argv):
    code, out, err = run(capsys, *argv)
    assert code == 2, (code, out, err)
    assert out == ""
    assert "Traceback" not in err and "internal error" not in err
    return err


def _matcalc_cmd():
    exe = shutil.which("matcalc")
    return [exe] if exe else [sys.executable, "-m", "matcalc.cli"]


def sub(*argv, stdin=None):
    return subprocess.run(_matcalc_cmd() + list(argv), input=stdin, capture_output=True, text=True, timeout=120)


# --------------------------------------------------------------------------- the headline

def test_headline(capsys):
    out = ok(capsys, "diff", "X@W+b", "W")
    lines = out.splitlines()
    assert_header(lines[0], HEADLINE_SHAPES, "derivative", "W", "m×p×n×p")
    assert lines[1] == r"I_{p} \otimes X"
    assert lines[2] == r"# differential: \mathrm{d}F = X \mathrm{d}W"
    assert lines[3].startswith("# backprop (upstream G = dL/dF): ")
    assert lines[3].endswith(r"\frac{\partial L}{\partial W} = X^{T} G")
    assert len(lines) == 4


def test_headline_real_command():
    res = sub("diff", "X@W+b", "W")
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    out = res.stdout
    assert_header(out.splitlines()[0], HEADLINE_SHAPES, "derivative", "W", "m×p×n×p")
    assert r"I_{p} \otimes X" in out
    assert r"\mathrm{d}F = X \mathrm{d}W" in out
    assert r"X^{T} G" in out


def _readme_block(command):
    """The lines the README shows after `$ command` in its first text block."""
    from pathlib import Path
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme.split("```text", 1)[1].split("```", 1)[0]
    after = block.split("$ " + command + "\n", 1)[1]
    return after.split("\n\n", 1)[0].rstrip("\n").split("\n")


@pytest.mark.parametrize("command", ['matcalc diff "X@W+b" W', 'matcalc diff "sum((X@w - y)**2)" w'])
def test_readme_examples_verbatim(capsys, command):
    import shlex
    argv = shlex.split(command)[1:]
    assert ok(capsys, *argv).rstrip("\n").split("\n") == _readme_block(command)


def test_readme_cross_entropy_verbatim(capsys):
    command = 'matcalc diff "-sum(Y*log(softmax(X@W+b, axis=1)))" W --assume rows_sum_to_one=Y --format text -q'
    import shlex
    assert ok(capsys, *shlex.split(command)[1:]).rstrip("\n").split("\n") == _readme_block(command)


def test_readme_gradient(capsys):
    out = ok(capsys, "diff", "sum((X@w - y)**2)", "w")
    lines = out.splitlines()
    assert_header(lines[0], {"X": "m×n", "w": "n-vector", "y": "m-vector"}, "derivative", "w", "n")
    assert lines[1:] == [r"2 X^{T} \left(X w - y\right)"]


def test_quiet_prints_the_derivative_alone(capsys):
    assert ok(capsys, "diff", "X@W+b", "W", "-q") == "I_{p} \\otimes X\n"
    assert re.fullmatch(KRON_TEXT + "\n", ok(capsys, "diff", "X@W+b", "W", "--quiet", "--format", "text"))


def test_shapes_option(capsys):
    out = ok(capsys, "diff", "tr(A@X)", "X", "--shape", "A=n,m", "--shape", "X=m,n", "--format", "text")
    assert_header(out.splitlines()[0], {"A": "n×m", "X": "m×n"}, "derivative", "X", "m×n")
    assert out.splitlines()[1:] == ["A.T"]
    out = ok(capsys, "diff", "c * x.T @ x", "x", "--shape", "c=", "--shape", "x=3", "--format", "text", "-q")
    assert out == "2 * c * x\n"


def test_layouts(capsys):
    assert ok(capsys, "diff", "A@x", "x", "-q", "--format", "text") == "A\n"
    assert ok(capsys, "diff", "A@x", "x", "-q", "--format", "text", "--layout", "denominator") == "A.T\n"
    assert ok(capsys, "diff", "A@x", "x", "-q", "--format", "text", "--layout", "numerator") == "A\n"
    out = ok(capsys, "diff", "tr(A@X)", "X", "--layout", "numerator", "--format", "text")
    assert out.splitlines()[-1] == "A"


def test_hessian_and_vjp_commands(capsys):
    out = ok(capsys, "hessian", "x.T@A@x", "x")
    assert_header(out.splitlines()[0], {"x": "m-vector", "A": "m×m"}, "Hessian", "x", "m×m")
    assert out.splitlines()[1:] == ["A + A^{T}"]
    out = ok(capsys, "vjp", "tanh(X@W)", "W", "--format", "text")
    shapes, what, wrt, dims = header(out.splitlines()[0])
    assert (what, wrt, dims) == ("backprop rule", "W", "n×p")
    assert {k: v for k, v in shapes.items() if k != "G"} == {"X": "m×n", "W": "n×p"}
    assert shapes.get("G", "m×p") == "m×p"
    assert out.splitlines()[1] == "X.T @ (G * (1 - tanh(X @ W) ** 2))"
    out = ok(capsys, "vjp", "W@X", "X", "--upstream", "H", "--format", "text", "-q")
    assert out == "W.T @ H\n"


def test_backprop_option(capsys):
    out = ok(capsys, "diff", "A@x", "x", "--backprop", "G", "--format", "text")
    assert out.splitlines()[-1] == "# backprop (upstream G = dL/dF): dL/dx = A.T @ G"


# --------------------------------------------------------------------------- formats

def test_format_latex_is_default(capsys):
    assert ok(capsys, "diff", "X@W+b", "W") == ok(capsys, "diff", "X@W+b", "W", "--format", "latex")


def test_format_text(capsys):
    out = ok(capsys, "diff", "X@W+b", "W", "--format", "text")
    lines = out.splitlines()
    assert_header(lines[0], HEADLINE_SHAPES, "derivative", "W", "m×p×n×p")
    assert re.fullmatch(KRON_TEXT, lines[1]), lines[1]
    assert lines[2:] == ["# differential: dF = X @ dW", "# backprop (upstream G = dL/dF): dL/dW = X.T @ G"]
    # the input language: it evaluates to the Jacobian (as vec-Jacobian, before the reshape)
    rng = np.random.default_rng(0)
    X, W, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 5)), rng.standard_normal(5)
    shapes = {"X": ("m", "n"), "W": ("n", "p"), "b": ("p",)}
    np.testing.assert_allclose(matcalc.evaluate(lines[1], {"X": X, "W": W, "b": b}, shapes=shapes),
                               np.kron(np.eye(5), X))


def test_format_unicode(capsys):
    out = ok(capsys, "diff", "sum((X@w - y)**2)", "w", "--format", "unicode", "-q")
    assert out == "2 Xᵀ (X w − y)\n"
    out = ok(capsys, "diff", "X@W+b", "W", "--format", "unicode")
    lines = out.splitlines()
    assert lines[1] == "I_p ⊗ X"
    assert lines[-1] == "# backprop (upstream G = dL/dF): ∂L/∂W = Xᵀ G"


def test_format_unicode_differential_is_unicode(capsys):
    out = ok(capsys, "diff", "X@W+b", "W", "--format", "unicode")
    diff_line = [ln for ln in out.splitlines() if ln.startswith("# differential")][0]
    assert "@" not in diff_line


def test_format_json(capsys):
    out = ok(capsys, "diff", "X@W+b", "W", "--format", "json")
    data = json.loads(out)
    assert data["kind"] == "diff" and data["wrt"] == "W" and data["expr"] == "X@W+b"
    assert re.fullmatch(KRON_TEXT, data["text"])
    assert data["latex"] == r"I_{p} \otimes X"
    assert data["unicode"] == "I_p ⊗ X"
    assert data["shape"] == ["m", "p", "n", "p"]
    assert data["variables"] == {"X": "m×n", "W": "n×p", "b": "p-vector"}
    assert data["vec_jacobian"] is True
    assert data["differential"] == "dF = X @ dW"
    # json is the whole output, also without -q
    data = json.loads(ok(capsys, "hessian", "x.T@A@x", "x", "--format", "json"))
    assert data["kind"] == "hessian" and data["text"] == "A + A.T"


def test_format_index(capsys):
    out = ok(capsys, "diff", "sum((X@w - y)**2)", "w", "--format", "index")
    lines = out.splitlines()
    assert_header(lines[0], {"X": "m×n", "w": "n-vector", "y": "m-vector"}, "derivative", "w", "n")
    assert lines[1].startswith(r"\frac{\partial f}{\partial w_{i}} = ")
    assert r"\sum_{k}" in lines[1] and "x_{ki}" in lines[1]
    out = ok(capsys, "vjp", "W@X", "X", "--format", "index", "-q")
    assert out.strip() == r"\frac{\partial L}{\partial x_{ij}} = \sum_{k} w_{ki} g_{kj}"


def test_format_index_backprop_line(capsys):
    out = ok(capsys, "diff", "X@W+b", "W", "--format", "index")
    bp = [ln for ln in out.splitlines() if ln.startswith("# backprop")][0]
    assert bp.count("=") == 2  # "(upstream G = dL/dF)" and one equation


def test_format_index_has_no_empty_subscript(capsys):
    out = ok(capsys, "diff", "norm(x)", "x", "--format", "index", "-q")
    assert "_{}" not in out
    assert "x_{i}" in out


# --------------------------------------------------------------------------- steps, check, emit

def test_steps(capsys):
    out = ok(capsys, "diff", "sum((X@w - y)**2)", "w", "--steps")
    lines = out.splitlines()
    assert header(lines[0])[0] == {"X": "m×n", "w": "n-vector", "y": "m-vector"}
    steps = [ln for ln in lines if ln.startswith("# step ")]
    assert len(steps) >= 3
    assert [int(re.match(r"# step (\d+):", s).group(1)) for s in steps] == list(range(1, len(steps) + 1))
    assert "differential" in steps[0]
    assert "identification" in steps[-1] or "=>" in out or r"\Rightarrow" in out
    assert lines[-1] == r"2 X^{T} \left(X w - y\right)"
    assert r"\mathrm{d}f" in out


def test_steps_text_and_vec_jacobian(capsys):
    out = ok(capsys, "diff", "sum((X@w - y)**2)", "w", "--steps", "--format", "text")
    body = [ln.strip() for ln in out.splitlines() if ln.startswith("  ")]
    assert body[0].startswith("df = ")
    assert body[-1].endswith("df/dw = 2 * X.T @ (X @ w - y)")
    out = ok(capsys, "diff", "X@W+b", "W", "--steps")
    assert "vectorisation" in out and r"\operatorname{vec}" in out
    assert r"I_{p} \otimes X" in out


@pytest.mark.parametrize("argv", [
    ["diff", "X@W+b", "W"],
    ["diff", "sum((X@w - y)**2)", "w"],
    ["hessian", "x.T@A@x", "x"],
    ["vjp", "tanh(X@W)", "W"],
    ["diff", "logdet(X)", "X", "--layout", "numerator"],
])
def test_check_option(capsys, argv):
    code, out, err = run(capsys, *argv, "--check")
    assert code == 0, err
    check = [ln for ln in out.splitlines() if ln.startswith("# check:")]
    assert len(check) == 1 and check[0].startswith("# check: ok")


def test_check_option_respects_declared_facts(capsys):
    code, out, err = run(capsys, "diff", "x.T@A@x", "x", "--symmetric", "A", "--check")
    assert code == 0 and "# check: ok" in out
    code, out, err = run(capsys, "diff", CROSS_ENTROPY, "W", "--assume", "rows_sum_to_one=Y", "--check")
    assert code == 0 and "# check: ok" in out


def _exec_emitted(src):
    ns = {}
    exec(compile(src, "<emitted>", "exec"), ns)
    return ns["derivative"]


def test_emit_numpy_runs(capsys):
    src = ok(capsys, "diff", "X@W+b", "W", "--emit", "numpy")
    assert src.startswith("import numpy as np")
    fn = _exec_emitted(src)
    rng = np.random.default_rng(0)
    X, W, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 5)), rng.standard_normal(5)
    J = fn(W=W, X=X, b=b)
    assert J.shape == (3, 5, 4, 5)
    np.testing.assert_allclose(J, matcalc.diff("X@W+b", "W").evaluate({"X": X, "W": W, "b": b}))
    src = ok(capsys, "vjp", "tanh(X@W)", "W", "--emit", "numpy")
    G = rng.standard_normal((3, 5))
    np.testing.assert_allclose(_exec_emitted(src)(G=G, W=W, X=X), X.T @ (G * (1 - np.tanh(X @ W) ** 2)))


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_emit_other_backends(capsys, backend):
    pytest.importorskip(backend)
    src = ok(capsys, "diff", "sum((X@w - y)**2)", "w", "--emit", backend)
    fn = _exec_emitted(src)
    rng = np.random.default_rng(1)
    X, w, y = rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal(3)
    got = fn(X=X, w=w, y=y)
    got = got.numpy() if hasattr(got, "numpy") else np.asarray(got)
    np.testing.assert_allclose(got, 2 * X.T @ (X @ w - y), rtol=1e-5)


def test_emit_real_command_output_runs():
    res = sub("hessian", "x.T@A@x", "x", "--emit", "numpy")
    assert res.returncode == 0, res.stderr
    fn = _exec_emitted(res.stdout)
    A = np.arange(9.0).reshape(3, 3)
    np.testing.assert_allclose(fn(A=A, x=np.ones(3)), A + A.T)


# --------------------------------------------------------------------------- syntax, assumptions, stdin

def test_syntax_matrixcalculus(capsys):
    out = ok(capsys, "diff", "0.5*x'*A*x", "x", "--syntax", "matrixcalculus", "--format", "text")
    assert_header(out.splitlines()[0], {"x": "m-vector", "A": "m×m"}, "derivative", "x", "m")
    assert out.splitlines()[1:] == ["0.5 * (A + A.T) @ x"]
    out = ok(capsys, "diff", "norm2(A*x - b)^2", "x", "--syntax", "matrixcalculus", "--format", "text")
    assert header(out.splitlines()[0])[0]["b"] == "scalar"
    assert out.splitlines()[1] == "2 * A.T @ (A @ x - b)"


def test_syntax_matrixcalculus_is_not_the_default(capsys):
    err = fails(capsys, "diff", "x'*A*x", "x")
    assert "'" in err.splitlines()[0]


CROSS_ENTROPY = "-sum(Y*log(softmax(X@W+b, axis=1)))"


def test_assume_rows_sum_to_one(capsys):
    out = ok(capsys, "diff", CROSS_ENTROPY, "W", "--assume", "rows_sum_to_one=Y", "--format", "text", "-q")
    assert out == "X.T @ (softmax(X @ W + b, axis=1) - Y)\n"
    out = ok(capsys, "diff", CROSS_ENTROPY, "W", "--assume", "rows_sum_to_one=Y", "--format", "text")
    assert out.splitlines()[0].endswith("derivative by W: p×n")
    assert out.splitlines()[1] == "X.T @ (softmax(X @ W + b, axis=1) - Y)"
    # without the assumption the gradient keeps the row sums of Y
    plain = ok(capsys, "diff", CROSS_ENTROPY, "W", "--format", "text", "-q")
    assert plain != out.splitlines()[1] + "\n" and "sum(Y, axis=1)" in plain


def test_assume_real_command():
    res = sub("diff", CROSS_ENTROPY, "W", "--assume", "rows_sum_to_one=Y", "--format", "text", "-q")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "X.T @ (softmax(X @ W + b, axis=1) - Y)\n"


def test_symmetric(capsys):
    assert ok(capsys, "diff", "x.T@A@x", "x", "-q") == r"\left(A + A^{T}\right) x" + "\n"
    assert ok(capsys, "diff", "x.T@A@x", "x", "--symmetric", "A", "-q") == "2 A x\n"
    assert ok(capsys, "diff", "x.T@A@x", "x", "--symmetric", "A", "-q", "--format", "text") == "2 * A @ x\n"
    assert ok(capsys, "hessian", "x.T@A@x", "x", "--symmetric", "A", "-q", "--format", "text") == "2 * A\n"


def test_stdin(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("sum((X@w - y)**2)\n"))
    out = ok(capsys, "diff", "-", "w", "--format", "text")
    assert_header(out.splitlines()[0], {"X": "m×n", "w": "n-vector", "y": "m-vector"}, "derivative", "w", "n")
    assert out.splitlines()[1:] == ["2 * X.T @ (X @ w - y)"]


def test_stdin_real_command():
    res = sub("diff", "-", "W", "-q", stdin="X@W+b\n")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "I_{p} \\otimes X\n"


# --------------------------------------------------------------------------- version, help

def test_version(capsys):
    code, out, err = run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"matcalc {matcalc.__version__}"


def test_version_real_command():
    res = sub("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"matcalc {matcalc.__version__}"


def test_help_lists_examples(capsys):
    code, out, err = run(capsys, "--help")
    assert code == 0
    assert "examples:" in out
    assert 'matcalc diff "X@W+b" W' in out
    assert "matcalc hessian" in out and "matcalc vjp" in out
    for sub_ in ("diff", "hessian", "vjp"):
        assert sub_ in out


@pytest.mark.parametrize("cmd", ["diff", "hessian", "vjp"])
def test_subcommand_help(capsys, cmd):
    code, out, err = run(capsys, cmd, "--help")
    assert code == 0
    for opt in ("--shape", "--format", "--steps", "--check", "--emit", "--assume", "--syntax", "--symmetric", "-q"):
        assert opt in out, opt
    if cmd == "diff":
        assert "--layout" in out and "--backprop" in out
    if cmd == "vjp":
        assert "--upstream" in out


# --------------------------------------------------------------------------- errors

def test_parse_error_one_line_and_caret(capsys):
    err = fails(capsys, "diff", "(X @ w", "w")
    lines = err.rstrip("\n").split("\n")
    assert lines[0].startswith("error: ") and "column 7" in lines[0]
    assert len(lines) == 3
    assert lines[1].strip() == "(X @ w"
    # the caret sits under the offending column of the echoed source
    src_col = lines[1].index("(")
    assert lines[2].index("^") - src_col == 6
    assert set(lines[2].strip()) == {"^"}


def test_unexpected_token_caret(capsys):
    err = fails(capsys, "diff", "x + * y", "x")
    lines = err.rstrip("\n").split("\n")
    assert lines[0].startswith("error: ") and "'*'" in lines[0] and "column 5" in lines[0]
    assert lines[2].index("^") - lines[1].index("x") == 4


def test_unknown_function(capsys):
    err = fails(capsys, "diff", "foo(x)", "x")
    first = err.splitlines()[0]
    assert first.startswith("error: ") and "foo" in first
    assert len(err.rstrip("\n").split("\n")) <= 3


@pytest.mark.parametrize("argv, words", [
    (["diff", "X@W", "W", "--shape", "X=3,4", "--shape", "W=5,2"], ["X@W", "3×4", "5×2"]),
    (["diff", "tr(X)", "X", "--shape", "X=3,4"], ["tr", "3×4"]),
    (["hessian", "X@W", "W"], ["hessian", "scalar"]),
    (["diff", "X@W", "W", "--shape", "X"], ["--shape", "NAME=DIMS"]),
    (["diff", "X@W", "1W"], ["wrt", "1W"]),
    (["vjp", "X@G", "X"], ["upstream"]),
    (["diff", "x", "x", "--assume", "nonsense=Y"], ["nonsense"]),
    (["diff", "x", "x", "--symmetric", "x"], ["symmetric"]),
    (["diff", "A^0.5", "A", "--syntax", "matrixcalculus"], ["power"]),
    (["diff", "", "x"], ["empty"]),
    (["diff", "x" * 100_001, "x"], ["limit"]),
])
def test_errors_one_line(capsys, argv, words):
    err = fails(capsys, *argv)
    lines = err.rstrip("\n").split("\n")
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    for w in words:
        assert w in lines[0], (w, lines[0])


@pytest.mark.parametrize("argv", [
    ["diff", "X@W", "W", "--layout", "weird"],
    ["diff", "x", "x", "--emit", "fortran"],
    ["frobnicate"],
    [],
    ["diff", "x"],
])
def test_usage_errors(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert "Traceback" not in err
    assert err.rstrip("\n").split("\n")[-1].startswith("matcalc")  # argparse: 'matcalc ...: error: ...'


def test_error_real_command():
    res = sub("diff", "(X @ w", "w")
    assert res.returncode == 2
    assert res.stdout == ""
    assert "Traceback" not in res.stderr
    lines = res.stderr.rstrip("\n").split("\n")
    assert lines[0].startswith("error: unexpected end of input at column 7")
    assert len(lines) == 3 and lines[2].strip() == "^"


@pytest.mark.parametrize("expr", ["x\0", "x²", "(" * 500 + "x" + ")" * 500, "sum(x, axis=2)", "eye(0)",
                                  "t where t = x; t = y", "kron(x, y)"])
def test_odd_inputs_never_a_traceback(capsys, expr):
    code, out, err = run(capsys, "diff", expr, "x")
    assert code in (0, 2)
    assert "Traceback" not in err and "internal error" not in err
    if code == 2:
        assert err.startswith("error: ") and len(err.rstrip("\n").split("\n")) <= 3


@pytest.mark.parametrize("expr", ["x @ y", "inv(x)", "softmax(x, axis=1)"])
def test_shape_error_names_dimensions_readably(capsys, expr):
    err = fails(capsys, "diff", expr, "x")
    assert not re.search(r"\?\d", err.splitlines()[0]), err  # no internal names like ?1
