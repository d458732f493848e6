"""The families of issue 12 that used to blow up: derivation time against the size of the result.

    python tests/bench/families.py [--quick] [--json OUT] [--limit SECONDS]

For each family and size: the derivation's time (best of a few calls, CPU time of this process,
so that other processes on the machine count less), the number of distinct nodes of the result
(`len(postorder(d.result))`) and of its edges (the sum of the nodes' argument counts: a flattened
n-ary product or sum of k operands is one node with k edges), and the work units of the budget
(`matcalc.budget`: nodes asked for plus arguments read plus nodes visited; deterministic), and the
time and length of the result's first `.text`. Each slope is the log-log fit of a measure against
nodes from size 8 up (linear: 1).

It runs against whichever matcalc is importable, so the same script measured main's code before
the changes (`PYTHONPATH=/path/to/old/tree python tests/bench/families.py --json before.json`);
an old matcalc without `budget=` is stopped by an alarm after `--limit` seconds per call.
"""
from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import time
from pathlib import Path

import matcalc
import matcalc.grammar
from matcalc.expr import postorder

import inspect

if "budget" in inspect.signature(matcalc.diff).parameters:
    from matcalc import budget as _budget
else:  # the code before the work budget
    _budget = None


def allow_flat_sums() -> None:
    """A flat sum is no nesting (issue 12); code that counts it as nesting must not refuse it here."""
    matcalc.grammar.LIMITS["max_depth"] = max(matcalc.grammar.LIMITS.get("max_depth", 0), 20000)


def nested_softmax(k):
    return "hessian", "sum(" + "softmax(" * k + "x" + ")" * k + ")", "x", None


def nested_softmax_dot(k):
    return "hessian", "y.T @ " + "softmax(" * k + "x" + ")" * k, "x", None


def nested_softmax_affine(k):
    e = "x"
    for _ in range(k):
        e = f"softmax(A @ {e})"
    return "hessian", "y.T @ " + e, "x", {"A": ("n", "n"), "x": ("n",), "y": ("n",)}


def _swish(k):
    binds = ["s1 = x * sigmoid(x)"] + [f"s{i} = s{i - 1} * sigmoid(s{i - 1})" for i in range(2, k + 1)]
    return f"sum(s{k}) where " + "; ".join(binds)


def swish_gradient(k):
    return "diff", _swish(k), "x", None


def swish_hessian(k):
    return "hessian", _swish(k), "x", None


def _mlp(L):
    e = "X @ W1"
    for i in range(2, L + 1):
        e = f"tanh({e}) @ W{i}"
    shapes = {"X": ("m", "n"), "Y": ("m", "n")}
    shapes.update({f"W{i}": ("n", "n") for i in range(1, L + 1)})
    return f"sum(({e} - Y) ** 2)", shapes


def mlp_hessian_w1(L):
    e, s = _mlp(L)
    return "hessian", e, "W1", s


def mlp_hessian_x(L):
    e = "x"
    for i in range(1, L + 1):
        e = f"tanh(W{i} @ {e})"
    s = {"x": ("n",)}
    s.update({f"W{i}": ("n", "n") for i in range(1, L + 1)})
    return "hessian", f"sum({e})", "x", s


def _resnet(k):
    binds = ["r1 = x + tanh(W1 @ x)"] + [f"r{i} = r{i - 1} + tanh(W{i} @ r{i - 1})" for i in range(2, k + 1)]
    shapes = {"x": ("n",)}
    shapes.update({f"W{i}": ("n", "n") for i in range(1, k + 1)})
    return f"sum(r{k}) where " + "; ".join(binds), shapes


def resnet_gradient(k):
    e, s = _resnet(k)
    return "diff", e, "x", s


def resnet_hessian(k):
    e, s = _resnet(k)
    return "hessian", e, "x", s


def flat_sum(N):
    return "diff", "sum(" + " + ".join(f"a{i} * x" for i in range(N)) + ")", "x", None


#: name -> (what, builder, sizes, quick sizes)
FAMILIES = {
    "nested softmax Hessian": ("`hessian(sum(softmax(…softmax(x))), x)`, k levels", nested_softmax,
                               (2, 4, 8, 12, 16, 32, 64), (2, 4, 8, 12, 16, 32)),
    "nested softmax Hessian, yᵀ": ("`hessian(y.T @ softmax^k(x), x)`", nested_softmax_dot,
                                   (2, 4, 8, 12, 16, 32, 64), (2, 4, 8, 12, 16, 32)),
    "nested softmax(A ·) Hessian": ("`hessian(y.T @ softmax(A @ …softmax(A @ x)), x)`", nested_softmax_affine,
                                    (2, 4, 8, 12, 16, 32, 64), (2, 4, 8, 12, 16, 32)),
    "nested swish gradient": ("`diff(sum(s_k) where s_i = s_{i-1} * sigmoid(s_{i-1}), x)`", swish_gradient,
                              (2, 4, 8, 16, 32, 64), (2, 4, 8, 16, 32)),
    "nested swish Hessian": ("`hessian(sum(s_k) where …, x)`", swish_hessian, (2, 4, 8, 12, 16, 24, 32, 48),
                             (2, 4, 8, 12, 16)),
    "MLP Hessian by W1": ("`hessian(sum((tanh(…tanh(X @ W1)…) @ WL - Y) ** 2), W1)`, L layers", mlp_hessian_w1,
                          (2, 4, 8, 16, 32, 64, 128, 256), (2, 4, 8, 16, 32, 64, 128)),
    "MLP Hessian by x": ("`hessian(sum(tanh(WL @ …tanh(W1 @ x))), x)`", mlp_hessian_x,
                         (2, 4, 8, 16, 32, 64, 128, 256), (2, 4, 8, 16, 32, 64, 128)),
    "residual network gradient": ("`diff(sum(r_k) where r_i = r_{i-1} + tanh(W_i @ r_{i-1}), x)` (added in round 3)",
                                  resnet_gradient, (2, 4, 8, 16, 32, 64, 128), (2, 4, 8, 16, 32, 64)),
    "residual network Hessian": ("`hessian(sum(r_k) where …, x)` (added in round 3)", resnet_hessian,
                                 (2, 4, 8, 16, 32, 64, 128), (2, 4, 8, 16, 32, 64)),
    "flat sum": ("`diff(sum(a0 * x + a1 * x + … + a(N-1) * x), x)`, N terms, parse included", flat_sum,
                 (8, 64, 500, 1000, 2000, 5000), (8, 64, 500, 1000, 2000, 5000)),
}


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


def measure_one(spec, reps: int, limit: float) -> dict:
    """{'ms', 'nodes', 'edges', 'work'} of one derivation, or {'over': limit} when it takes longer."""
    kind, expr, wrt, shapes = spec
    fn = getattr(matcalc, kind)
    kwargs = {"shapes": shapes}
    if _budget is not None:
        kwargs["budget"] = limit
    best, d, work = math.inf, None, None
    for _ in range(reps):
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, limit + 1)
        try:
            t0 = time.process_time()
            if _budget is not None:
                with _budget.limit(limit + 1) as scope:
                    d = fn(expr, wrt, **kwargs)
                work = scope.work
            else:
                d = fn(expr, wrt, **kwargs)
            best = min(best, time.process_time() - t0)
        except (_Hang, matcalc.MatcalcError) as e:
            over = isinstance(e, (_Hang, getattr(matcalc, "BudgetError", _Hang))) or "_Hang" in str(e)
            if not over:  # (old code wraps the alarm's exception in its internal error)
                return {"error": str(e).splitlines()[0][:80]}
            return {"over": limit}
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        if best > limit / 4:
            break
    nodes = postorder(d.result)
    row = {"ms": best * 1e3, "nodes": len(nodes), "edges": sum(len(n.args) for n in nodes), "work": work}
    row.update(measure_text(d, limit))
    return row


def measure_text(d, limit: float) -> dict:
    """{'text_ms', 'len'}: printing `d.text` once (its first print: nothing cached), CPU time."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, limit + 1)
    try:
        t0 = time.process_time()
        text = d.text
        return {"text_ms": (time.process_time() - t0) * 1e3, "len": len(text)}
    except (_Hang, matcalc.MatcalcError):
        return {}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def slope(rows: list, lo: int = 8, key: str = "ms") -> float | None:
    """Least-squares slope of log(time) (or of another `key`) against log(nodes), sizes >= lo."""
    pts = [(math.log(r["nodes"]), math.log(r[key])) for n, r in rows if n >= lo and r.get(key)]
    if len(pts) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else None


def measure(quick: bool = False, limit: float = 20.0, reps: int = 3, log=print) -> dict:
    """{family: [(size, row), ...]}; a family stops at its first size past `limit`."""
    out = {}
    allow_flat_sums()
    matcalc.diff("x.T @ x", "x")  # warm-up: the grammar
    for name, (_, build, sizes, qsizes) in FAMILIES.items():
        rows = []
        for n in (qsizes if quick else sizes):
            r = measure_one(build(n), reps, limit)
            rows.append((n, r))
            log(f"  {name} {n}: {r}")
            if "ms" not in r:
                break
        out[name] = rows
    return out


BEFORE = Path(__file__).with_name("families_before.json")
#: the same script on main at the end of the previous round (000e6ba), for the third column
ROUND2 = Path(__file__).with_name("families_round2.json")


def _cell(r: dict | None) -> str:
    if not r:
        return "—"
    if "over" in r:
        return f"> {r['over'] * 1e3:.0f}"
    if "error" in r:
        return "error"
    return f"{r['ms']:.1f}" if r["ms"] < 100 else f"{r['ms']:.0f}"


def _slope_cell(rows, key: str = "ms") -> str:
    v = slope(rows, key=key)
    return "—" if v is None else f"{v:.2f}"


def report(R, after: dict, quick: bool = False) -> dict:
    """Write the Markdown section of the families to the report `R` (a callable with .table);
    returns {target: (measured, met)} for the targets of issue 12."""
    before = json.loads(BEFORE.read_text()) if BEFORE.exists() else {"families": {}, "commit": "?"}
    round2 = json.loads(ROUND2.read_text()) if ROUND2.exists() else {"families": {}, "commit": "?"}
    R("## e. Families that used to blow up (issue 12)")
    R()
    R(f"Derivation (parse included) and, separately, the first `.text` of the result; CPU time of the "
      f"process, best of up to 3 derivations (ms). *before*: the same script on commit {before['commit']} "
      f"(main before issue 12; `> 20000`: stopped after 20 s); *round 2*: on commit {round2['commit']} "
      f"(main at the end of the previous round). *nodes* / *edges*: distinct nodes of the result and the "
      f"sum of their argument counts; *work*: the budget's units (nodes asked for + arguments read + "
      f"nodes visited); *text*: `len(d.text)`. Slopes: log-log fits against nodes from size 8 up.")
    R()
    for name, (what, _, _, _) in FAMILIES.items():
        rows = after.get(name, [])
        old = {n: r for n, r in before["families"].get(name, [])}
        r2 = {n: r for n, r in round2["families"].get(name, [])}
        R(f"**{name}**: {what}")
        R()
        table = []
        for n, r in rows:
            table.append((n, _cell(old.get(n)), _cell(r2.get(n)), _cell(r), r.get("nodes", "—"), r.get("edges", "—"),
                          r.get("work", "—"), _cell({"ms": r["text_ms"]} if "text_ms" in r else None),
                          r.get("len", "—"), _cell({"ms": r2[n]["text_ms"]} if "text_ms" in r2.get(n, {}) else None),
                          r2.get(n, {}).get("len", "—")))
        R.table(("size", "before ms", "round 2 ms", "now ms", "nodes", "edges", "work", "text ms", "text",
                 "round 2 text ms", "round 2 text"), table)
        R(f"slopes against nodes — time: before {_slope_cell(before['families'].get(name, []))}, round 2 "
          f"{_slope_cell(round2['families'].get(name, []))}, now **{_slope_cell(rows)}**; now, of work "
          f"{_slope_cell(rows, 'work')}, of edges {_slope_cell(rows, 'edges')}, of text time "
          f"{_slope_cell(rows, 'text_ms')}, of text length **{_slope_cell(rows, 'len')}** (round 2: "
          f"{_slope_cell(round2['families'].get(name, []), 'len')})")
        R()
    get = lambda fam, n: next((r for m, r in after.get(fam, []) if m == n), {})  # noqa: E731
    targets = {}
    r = get("nested softmax Hessian", 12)
    total = r.get("ms", 0) + r.get("text_ms", 0)
    targets["12-level nested softmax Hessian derives and prints in < 0.2 s, text < 20 kB"] = (
        f"{total:.0f} ms, {r.get('len', 0) / 1000:.1f} kB" if "ms" in r else "—",
        "ms" in r and total < 200 and r.get("len", 10**9) < 20000)
    for label, fam, n, limit in (("L = 128 MLP Hessian by W1 in < 0.5 s", "MLP Hessian by W1", 128, 500),
                                 ("flat sum of 5 000 terms parses and derives in < 1 s", "flat sum", 5000, 1000)):
        r = get(fam, n)
        targets[label] = (f"{r['ms']:.0f} ms" if "ms" in r else "—", "ms" in r and r["ms"] < limit)
    for name, rows in after.items():
        for key, what in (("ms", "time"), ("len", "text length")):
            sa = slope(rows, key=key)
            targets[f"{what} slope ≤ 1.2: {name}"] = ("—" if sa is None else f"{sa:.2f}", sa is not None and sa <= 1.2)
    return targets


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--limit", type=float, default=20.0, help="seconds per call before a size counts as over")
    ap.add_argument("--json", help="write the measurements to this file")
    ap.add_argument("--commit", default="?", help="the commit measured, recorded in the --json file")
    args = ap.parse_args(argv)
    res = measure(args.quick, args.limit)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"commit": args.commit, "families": res}, f, indent=1)
    for name, rows in res.items():
        print(name, "slope of time", slope(rows), "of text length", slope(rows, key="len"))


if __name__ == "__main__":
    sys.exit(main())
