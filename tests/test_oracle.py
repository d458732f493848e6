"""One oracle for every channel (issue 11).

`d.evaluate` is the reference (it is checked against finite differences elsewhere: test_public_cases,
test_property). Every other way a user gets a number out of matcalc must give the same one:

- `numpy`: `d.compile("numpy")(values)` has the same shape and values (rtol 1e-7);
- `torch`, `jax`: the same for those backends when they are installed (a share of the problems);
- `text`: `matcalc.evaluate(d.text, values)` equals `d.evaluate` (results with at most two axes);
- `where`: every `where` binding of `d.text` uses only names bound before it;
- `rediff`: `diff` of a gradient's text by the variable equals the Hessian.

For every public case (tests/public_cases.py) and RANDOM_COUNT random expressions of
tests/exprgen.py (diff always; on a share also vjp and hessian, and other layouts). An internal
error (`matcalc.InternalError`, or a message starting "internal error") is a failure everywhere;
so is any other error on these well-shaped inputs.

Known defects owned by other work are in KNOWN: (expression, the channels that fail, owner,
reason). Such a problem must still fail, on exactly those channels (strict): when a fix
lands, its entries must be removed. MATCALC_ORACLE_COUNT=n runs n random expressions instead.
"""
from __future__ import annotations

import os
import random
import re

import numpy as np
import pytest

import exprgen
import matcalc
import public_cases as P

RANDOM_COUNT = int(os.environ.get("MATCALC_ORACLE_COUNT", "1200"))
RTOL = 1e-7
BACKENDS = [b for b in ("torch", "jax") if __import__("importlib").util.find_spec(b) is not None]


class Failure(Exception):
    """A channel disagreed with d.evaluate."""


def _is_internal(e: BaseException) -> bool:
    return isinstance(e, matcalc.InternalError) or str(e).lower().startswith("internal error")


def _close(got, want, what: str) -> None:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    if got.shape != want.shape:
        raise Failure(f"{what}: shape {got.shape}, want {want.shape}")
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    if not np.allclose(got, want, rtol=RTOL, atol=1e-9 * scale, equal_nan=False):
        raise Failure(f"{what}: differs by {float(np.max(np.abs(got - want))):.3g} (scale {scale:.3g})")


def where_order(text: str) -> None:
    """Every binding of the text's `where` clause uses only names bound before it."""
    if " where " not in text:
        return
    bindings = text.split(" where ", 1)[1].split("; ")
    names = [b.split(" = ", 1)[0].strip() for b in bindings]
    bound: set[str] = set()
    for name, b in zip(names, bindings):
        used = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", b.split(" = ", 1)[1])) & set(names)
        if used - bound:
            raise Failure(f"where: {name} uses {', '.join(sorted(used - bound))} before it is bound")
        bound.add(name)


def _as_array(value, d):
    """The text's value in d.evaluate's layout: a row-vector result (1×n) is its 1-D vector
    there (API.md: jax's jacobian of the function written with 1-D vectors, where x.T is x)."""
    value = np.asarray(value, dtype=float)
    row = len(d.result.shape) == 2 and d.result.shape[0] == 1
    if row and value.ndim == 2 and value.shape[0] == 1 and len(d.dims) == 1:
        return value.reshape(-1)
    return value


def _backend_call(d, backend: str, values: dict):
    """The generated code of `backend` at `values`, as a numpy array (jax in float64)."""
    if backend != "jax":
        return _to_numpy(d.compile(backend)(values))
    import jax
    ctx = getattr(jax, "enable_x64", None)
    if ctx is None:
        ctx = getattr(getattr(jax, "experimental", None), "enable_x64", None)
    if ctx is None:  # pragma: no cover - a jax without the context manager
        jax.config.update("jax_enable_x64", True)
        return _to_numpy(d.compile(backend)(values))
    with ctx(True):
        return _to_numpy(d.compile(backend)(values))


def _to_numpy(x):
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=float)


def run_channels(d, values: dict, shapes, failures: dict, label: str, backends=()) -> None:
    """Compare every channel of `d` with d.evaluate; record failures as {channel: message}."""
    try:
        with np.errstate(all="ignore"):
            want = np.asarray(d.evaluate(values), dtype=float)
    except matcalc.MatcalcError as e:  # the reference itself fails: a failure of its own channel
        failures[f"{label}/evaluate"] = f"{type(e).__name__}: {e}"
        return
    if not np.all(np.isfinite(want)):
        raise Skip(f"{label}: d.evaluate is not finite at this point")
    checks = [("numpy", lambda: _close(d.compile("numpy")(values), want, "numpy code")),
              ("where", lambda: where_order(d.text))]
    if want.ndim <= 2:
        checks.append(("text", lambda: _close(_as_array(matcalc.evaluate(d.text, values, shapes=shapes), d), want,
                                              "text")))
    for b in backends:
        checks.append((b, lambda b=b: _close(_backend_call(d, b, values), want, f"{b} code")))
    for channel, fn in checks:
        try:
            with np.errstate(all="ignore"):
                fn()
        except Failure as e:
            failures[f"{label}/{channel}"] = str(e)
        except Exception as e:  # noqa: BLE001 - a raw exception from generated code is a failure too
            failures[f"{label}/{channel}"] = f"{'INTERNAL ' if _is_internal(e) else ''}{type(e).__name__}: {e}"


class Skip(Exception):
    """The random point is outside the expression's safe range (non-finite values)."""


def derive(kind: str, expr: str, wrt: str, shapes, failures: dict, label: str, **kw):
    """The derivative, or None with the error recorded (no error is acceptable here)."""
    fn = {"diff": matcalc.diff, "vjp": matcalc.vjp, "hessian": matcalc.hessian}[kind]
    try:
        return fn(expr, wrt, shapes=shapes, **kw)
    except matcalc.MatcalcError as e:
        failures[f"{label}/derive"] = f"{'INTERNAL ' if _is_internal(e) else ''}{type(e).__name__}: {e}"
        return None


def rediff(expr: str, grad, wrt: str, shapes, values: dict, failures: dict) -> None:
    """diff(gradient text, wrt) must equal hessian(expr, wrt)."""
    h = derive("hessian", expr, wrt, shapes, failures, "hessian")
    if h is None:
        return
    try:
        d2 = matcalc.diff(grad.text, wrt, shapes=shapes)
        with np.errstate(all="ignore"):
            _close(d2.evaluate(values), h.evaluate(values), "diff of the gradient's text vs hessian")
    except Failure as e:
        failures["rediff"] = str(e)
    except Exception as e:  # noqa: BLE001
        failures["rediff"] = f"{'INTERNAL ' if _is_internal(e) else ''}{type(e).__name__}: {e}"


def oracle(problem: exprgen.Problem, rng: random.Random) -> dict:
    """All the channels for one random expression: {label/channel: message} of the failures."""
    failures: dict = {}
    names = problem.variables or sorted(exprgen.VAR_KIND)
    wrt = rng.choice(names) if rng.random() < 0.92 else rng.choice(sorted(exprgen.VAR_KIND))
    scalar = problem.kind == "s"
    layout = "mixed" if rng.random() < 0.85 else rng.choice(["numerator", "denominator"])
    backends = BACKENDS if problem.seed % 12 == 0 else ()
    failures["_call"] = f"by {wrt}, layout {layout}, shapes {problem.shapes}"
    d = derive("diff", problem.text, wrt, problem.shapes, failures, "diff", layout=layout)
    if d is None:
        return failures
    run_channels(d, problem.values, problem.shapes, failures, "diff", backends)
    if scalar and layout == "mixed" and rng.random() < 0.4:
        rediff(problem.text, d, wrt, problem.shapes, problem.values, failures)
    if scalar and rng.random() < 0.3:
        h = derive("hessian", problem.text, wrt, problem.shapes, failures, "hessian")
        if h is not None:
            run_channels(h, problem.values, problem.shapes, failures, "hessian", backends)
    if rng.random() < 0.3 and (problem.kind != "N" or problem.mode == "concrete"):
        # the upstream's name gives it its shape by the naming defaults, so the text reads back
        # (an m·n vector's only in concrete sizes: a name does not unify with a product m·n)
        up = {0: "gamma", 1: "g"}.get(len(exprgen.KINDS[problem.kind]), "G")
        out = np.asarray(matcalc.evaluate(problem.text, problem.values, shapes=problem.shapes))
        upstream = np.random.default_rng(problem.seed).standard_normal(out.shape)
        values = dict(problem.values, **{up: float(upstream) if out.shape == () else upstream})
        shapes = problem.shapes
        if problem.kind == "r":  # no naming default is a row: give its shape
            shapes = dict(shapes or {}, G=(1, "n") if problem.mode == "symbolic" else out.shape)
        v = derive("vjp", problem.text, wrt, problem.shapes, failures, "vjp", upstream=up)
        if v is not None:
            run_channels(v, values, shapes, failures, "vjp", backends)
    return failures


# ----------------------------------------------------------------------------- known defects
# Defects owned by other work, asserted to still fail on exactly these channels (strict): when a fix
# lands, the test says which entry to remove. Regenerate the random part after changing the
# generator with `python tests/test_oracle.py` (it prints every failing seed in this format).
PERF_WHERE = ("perf", "`where` bindings printed out of order (issue 11 item 4)")
PERF_DIMS = ("perf", "the text names a dimension no variable binds, or one evaluate cannot unify (issue 11 item 5)")

# seed: (start of the generated text, failing channels, (owner, reason))
KNOWN_SEEDS: dict[int, tuple[str, set, tuple]] = {
}

# issue 11's reproducers of other items: (kind, expr, wrt, shapes, want array shape or None)
REPRODUCERS = [
    ("diff", "dot(A @ x + w / (a - w), A @ x + w / (a - w)) * (A @ x + w / (a - w))", "a", None, None),
    ("hessian", "logdet(softmax(softmax(tau * J.T, axis=1), axis=1))", "tau", {"J": (3, 3), "tau": ()}, None),
    ("diff", "sum(exp(A - A)) * x", "x", None, None),
    ("diff", "eye(3) @ u + sum(exp(f @ u.T), axis=1)", "f", None, None),
    ("diff", "c + diag(p @ (W.T @ c).T)", "c", None, None),
    ("diff", "dot(vec(X), c)", "X", {"X": (2, 3), "c": (6,)}, None),
    ("diff", "tr(kron(A, X))", "X", {"A": (2, 2), "X": (3, 3)}, None),
    ("diff", "vec(X).T @ kron(B, A) @ vec(X)", "X", {"X": ("m", "n"), "A": ("m", "m"), "B": ("n", "n")}, None),
    ("diff", "kron(A, X)", "X", {"A": ("m", "n"), "X": ("p", "q")}, None),
    ("diff", "x.T", "x", None, (3, 3)),
    ("diff", "x.T @ A", "A", {"x": (3,), "A": (3, 4)}, (4, 3, 4)),
]
KNOWN_REPRODUCERS: dict[str, tuple[set, tuple]] = {
}


def _judge(failures: dict, known, what: str = "") -> None:
    """No failure, or (a known defect) exactly the known channels failing."""
    if known is None:
        assert not failures, "\n".join([what] + [f"{k}: {v}" for k, v in failures.items()])
        return
    channels, (owner, reason) = known
    assert failures, f"{what}\nknown defect no longer fails: remove it from the KNOWN table ({owner}: {reason})"
    extra = {k: v for k, v in failures.items() if k not in channels}
    assert not extra, "\n".join([what] + [f"{k}: {v}" for k, v in extra.items()])
    pytest.xfail(f"{owner}: {reason}")


@pytest.mark.parametrize("seed", range(RANDOM_COUNT))
def test_random_expression(seed):
    problem = exprgen.generate(seed)
    try:
        failures = oracle(problem, random.Random(seed * 7919 + 1))
    except Skip as e:
        pytest.skip(str(e))
    call = failures.pop("_call")
    known = KNOWN_SEEDS.get(seed)
    if known is not None:
        assert problem.text.startswith(known[0]), \
            f"stale KNOWN_SEEDS entry {seed}: the generator changed; regenerate with python tests/test_oracle.py"
        known = known[1:]
    _judge(failures, known, f"seed {seed}: {problem.text}\n{call}")


def _derive_case(case, kind=None):
    shapes = None if case.get("defaults") else case["shapes"]
    kind = kind or case["kind"]
    if kind == "diff":
        return matcalc.diff(case["expr"], case["wrt"], shapes=shapes, layout=case.get("layout", "mixed"))
    if kind == "hessian":
        return matcalc.hessian(case["expr"], case["wrt"], shapes=shapes)
    return matcalc.vjp(case["expr"], case["wrt"], upstream=case.get("upstream", "G"), shapes=shapes)


@pytest.mark.parametrize("case", [c for c in P.CASES if c["kind"] != "error"], ids=lambda c: c["id"])
def test_public_case(case):
    failures: dict = {}
    shapes = None if case.get("defaults") else case["shapes"]
    for seed in (0, 5):
        values = P.sample(case, seed=seed)
        d = _derive_case(case)
        text_shapes = shapes if case["kind"] != "vjp" else dict(shapes or {}, G=tuple(d.out_shape))
        run_channels(d, values, text_shapes, failures, f"{case['kind']}@{seed}", BACKENDS)
        if case["kind"] == "diff" and case.get("layout", "mixed") == "mixed" and np.ndim(case["f"](values)) == 0:
            rediff(case["expr"], _derive_case(case), case["wrt"], shapes, values, failures)
    _judge(failures, None, case["id"])


def _domain_values(d, seed_from: int = 0) -> dict:
    """Values where d.evaluate is finite (matcalc.verify's sampler: positive, invertible where needed)."""
    from matcalc.verify import sample_values
    var_shapes = dict(d.parsed.var_shapes)
    for seed in range(seed_from, seed_from + 8):
        values, _ = sample_values(var_shapes, d.parsed.expr, seed)
        try:
            with np.errstate(all="ignore"):
                if np.all(np.isfinite(d.evaluate(values))):
                    return values
        except matcalc.MatcalcError:
            continue
    raise Skip("no finite point")


@pytest.mark.parametrize("kind, expr, wrt, shapes, want", REPRODUCERS, ids=[r[1][:50] for r in REPRODUCERS])
def test_issue_reproducer(kind, expr, wrt, shapes, want):
    failures: dict = {}
    d = derive(kind, expr, wrt, shapes, failures, kind)
    if d is not None:
        values = _domain_values(d)
        run_channels(d, values, shapes, failures, kind, BACKENDS)
        got = np.shape(d.evaluate(values))
        if want is not None and got != want:
            failures[f"{kind}/layout"] = f"d.evaluate has shape {got}, want {want}"
    _judge(failures, KNOWN_REPRODUCERS.get(expr), f"{kind} of {expr} by {wrt}")


if __name__ == "__main__":  # print the failing seeds in KNOWN_SEEDS' format
    import sys
    count = int(sys.argv[1]) if len(sys.argv) > 1 else RANDOM_COUNT
    for seed in range(count):
        problem = exprgen.generate(seed)
        try:
            fails = oracle(problem, random.Random(seed * 7919 + 1))
        except Skip:
            continue
        fails.pop("_call")
        if fails:
            owner = "PERF_DIMS" if all("dimension" in v for v in fails.values()) else "???"
            print(f"    {seed}: ({problem.text[:40]!r}, {set(fails)!r}, {owner}),  "
                  f"# {'; '.join(v[:60] for v in fails.values())}")
