"""The cold command line: what a command imports, and the generated parser it imports instead of lark.

`matcalc diff ... --format text|unicode` imports neither sympy nor numpy (nor lark); the LaTeX
call imports sympy (its printer renders the LaTeX) but none of the modules it does not use
(verification, code generation, the web app, …). `matcalc/standalone_parser.py` is generated
from grammar/*.lark by `python -m matcalc.parser_gen`: it must come from the grammar text as it
is now, and parse exactly as lark itself does. (Timings: tests/bench/bench_cold.py, not a test.)
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import public_cases as P
from matcalc import parser_gen

#: matcalc modules the derivation and its printing never need
NOT_NEEDED = ["matcalc.verify", "matcalc.codegen", "matcalc.chain", "matcalc.backends", "matcalc.exact",
              "matcalc.evaluate", "matcalc.magic", "matcalc.web.app", "matcalc.web.service", "matcalc.steps",
              "matcalc.index", "matcalc.gradients", "matcalc.parser_gen"]


def _modules_after(code: str) -> dict:
    """Run `code` in a fresh interpreter; the modules it imported (of those we ask about)."""
    asked = ["sympy", "numpy", "lark", *NOT_NEEDED]
    probe = f"{code}\nimport sys, json; print(json.dumps({{m: m in sys.modules for m in {asked!r}}}))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cli(fmt: str, *extra: str) -> str:
    return f"from matcalc import cli; assert cli.main(['diff', 'X@W+b', 'W', '--format', {fmt!r}, *{list(extra)!r}]) == 0"


@pytest.mark.parametrize("fmt", ["text", "unicode"])
def test_text_and_unicode_commands_import_neither_sympy_nor_numpy(fmt):
    mods = _modules_after(_cli(fmt) + "\n" + _cli(fmt, "--syntax", "matrixcalculus").replace("X@W+b", "X*W+b"))
    assert [m for m, imported in mods.items() if imported] == []


def test_latex_command_imports_sympy_and_nothing_it_does_not_use():
    mods = _modules_after(_cli("latex"))
    assert mods.pop("sympy"), "the LaTeX is rendered by sympy's printer"
    assert [m for m, imported in mods.items() if imported] == []


def test_import_matcalc_imports_no_heavy_dependency():
    mods = _modules_after("import matcalc")
    assert [m for m, imported in mods.items() if imported] == []


def test_lazy_names_of_the_package_still_resolve():
    import matcalc
    from matcalc import Gradients, grad
    assert matcalc.grad is grad and matcalc.Gradients is Gradients
    assert set(matcalc.__all__) <= set(dir(matcalc))


def test_standalone_parser_comes_from_the_grammar_files_as_they_are():
    assert parser_gen.is_current(), "grammar/*.lark changed: run python -m matcalc.parser_gen"


def _shape(tree):
    """A parse tree (or error) of either runtime as plain data, to compare lark and the standalone."""
    if hasattr(tree, "children"):
        return [str(tree.data), [_shape(c) for c in tree.children]]
    if tree is None:
        return None
    return [tree.type, str(tree), tree.start_pos, tree.end_pos]


def _outcome(parser, text: str):
    try:
        return _shape(parser.parse(text))
    except Exception as e:  # noqa: BLE001 - compared by kind, place and what was expected
        token = getattr(e, "token", None)
        return [type(e).__name__, getattr(e, "pos_in_stream", None), sorted(getattr(e, "expected", None) or ()),
                None if token is None else [token.type, str(token)]]


INPUTS = {
    "matcalc": [c["expr"] for c in P.CASES] + [
        "x.T @ A @ x + 2", "-a**-b**2", "sum(x, axis=0, keepdims=True)", "f(x,)", "A @ (B", "x +* y", "",
        "2 * t1 where t1 = X @ W; t2 = t1.T", "x where", "1e-3 * .5 + 2.", "x @@ y", "sum(axis=1, x)", "x'"],
    "matrixcalculus": ["x' * A * x", "norm2(A*x - b)^2", "tr(X^-1)", "exp(x) .* y ./ z", "A .^ 2",
                       "vector(1)' * x", "x' * ", "(A*x", "x @ y", "a * b'"],
}


@pytest.mark.parametrize("syntax", sorted(parser_gen.SYNTAXES))
def test_standalone_parser_parses_exactly_as_lark(syntax):
    lark = pytest.importorskip("lark")
    from matcalc import standalone_parser
    reference = lark.Lark(parser_gen.grammar_text(syntax), **parser_gen.OPTIONS)
    shipped = standalone_parser.load(syntax)
    for text in INPUTS[syntax]:
        assert _outcome(shipped, text) == _outcome(reference, text), text


def test_embedded_tables_are_plain_data(monkeypatch):
    """The tables are unpickled at every start: they hold dicts, lists, strings and numbers only
    (no pickle opcode that names a class or calls anything)."""
    import binascii
    import pickletools
    import zlib

    from matcalc import standalone_parser
    blobs = []
    monkeypatch.setattr(standalone_parser, "_unpack", blobs.append)
    for make in standalone_parser.TABLES.values():
        make()
    assert len(blobs) == len(parser_gen.SYNTAXES)
    for blob in blobs:
        ops = {op.name for op, _, _ in pickletools.genops(zlib.decompress(binascii.a2b_base64(blob)))}
        assert not {o for o in ops if "GLOBAL" in o or o in ("REDUCE", "BUILD", "INST", "OBJ", "NEWOBJ",
                                                              "NEWOBJ_EX", "EXT1", "EXT2", "EXT4")}, ops
