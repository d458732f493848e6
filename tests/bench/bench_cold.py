"""Benchmark: the cold command line, as ratios measured in one run.

    python tests/bench/bench_cold.py [--runs 9] [--old PATH]

Each round starts, one after the other (interleaved, so that load on the machine hits all of
them alike), fresh processes for
- `python -c pass` (the interpreter alone) and `python -c "import sympy"`;
- `python -m matcalc.cli diff "X@W+b" W --format F` for F = text, unicode, latex;
- `python -c "import matcalc; matcalc.diff('X@W+b', 'W').latex"` (the first call in a process),
  which also reports, in-process, the time of the import and of the first call alone;
and prints the median of each over the rounds and the ratios the targets are about:
the LaTeX call / `import sympy` (target ≤ 1.15) and, with `--old PATH` (a checkout of an older
matcalc to put first on PYTHONPATH), each command against the same command of the old tree.
The parser's table cache (see `matcalc.grammar.cache_dir`) is warmed by one run first.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

PY = sys.executable
NEUTRAL = tempfile.gettempdir()
EXPR, WRT = "X@W+b", "W"
FIRST_CALL = ("import time; t0 = time.perf_counter(); import matcalc; t1 = time.perf_counter(); "
              f"matcalc.diff({EXPR!r}, {WRT!r}).latex; t2 = time.perf_counter(); "
              "print(f'{t1 - t0:.6f} {t2 - t1:.6f}')")


def commands() -> dict[str, list[str]]:
    """The commands timed, by label."""
    cli = [PY, "-m", "matcalc.cli", "diff", EXPR, WRT, "--format"]
    return {"python -c pass": [PY, "-c", "pass"],
            "import sympy": [PY, "-c", "import sympy"],
            "cli text": cli + ["text"],
            "cli unicode": cli + ["unicode"],
            "cli latex": cli + ["latex"],
            "import + first diff": [PY, "-c", FIRST_CALL]}


def run_once(cmd: list[str], env: dict) -> tuple[float, str]:
    """Wall-clock seconds of one process, and its stdout."""
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=True,
                       cwd=NEUTRAL)  # not a checkout's folder: PYTHONPATH says which matcalc runs
    return time.perf_counter() - t, p.stdout


def measure(runs: int, trees: dict[str, dict]) -> tuple[dict, dict]:
    """Medians (seconds) by (tree, label), and the in-process import / first-call medians by tree."""
    cmds = commands()
    times: dict = {}
    inproc: dict = {}
    for env in trees.values():  # warm the parser cache and the .pyc files
        for cmd in cmds.values():
            run_once(cmd, env)
    for _ in range(runs):
        for tree, env in trees.items():
            for label, cmd in cmds.items():
                if tree != "new" and label in ("python -c pass", "import sympy"):
                    continue
                dt, out = run_once(cmd, env)
                times.setdefault((tree, label), []).append(dt)
                if label == "import + first diff":
                    imp, call = map(float, out.split())
                    inproc.setdefault(tree, ([], []))
                    inproc[tree][0].append(imp)
                    inproc[tree][1].append(call)
    med = {k: statistics.median(v) for k, v in times.items()}
    inmed = {t: (statistics.median(a), statistics.median(b)) for t, (a, b) in inproc.items()}
    return med, inmed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=9, help="rounds (the median is taken; at least 7)")
    ap.add_argument("--old", metavar="PATH", help="an older matcalc checkout to compare against")
    args = ap.parse_args()
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([here] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    trees = {"new": env}
    if args.old:
        trees["old"] = dict(env, PYTHONPATH=args.old)
    med, inmed = measure(max(args.runs, 7), trees)
    print(f"median of {max(args.runs, 7)} interleaved runs (wall clock, ms); load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print()
    print("| command | " + " | ".join(trees) + " |")
    print("|---|" + "---:|" * len(trees))
    for label in commands():
        row = [f"{med[(t, label)] * 1000:.0f}" if (t, label) in med else "" for t in trees]
        print(f"| `{label}` | " + " | ".join(row) + " |")
    for t, (imp, call) in inmed.items():
        print(f"| in-process `import matcalc` ({t}) | {imp * 1000:.1f} |" + " |" * (len(trees) - 1))
        print(f"| in-process first `diff(...).latex` ({t}) | {call * 1000:.1f} |" + " |" * (len(trees) - 1))
    print()
    sym, base = med[("new", "import sympy")], med[("new", "python -c pass")]
    print(f"- LaTeX call / `import sympy`: **{med[('new', 'cli latex')] / sym:.2f}** (target ≤ 1.15)")
    print(f"- LaTeX call minus `import sympy`: {(med[('new', 'cli latex')] - sym) * 1000:.0f} ms")
    for fmt in ("text", "unicode"):
        print(f"- {fmt} call / `python -c pass`: {med[('new', 'cli ' + fmt)] / base:.2f}; "
              f"/ `import sympy`: {med[('new', 'cli ' + fmt)] / sym:.2f}")
    if "old" in trees:
        for label in commands():
            if ("old", label) in med:
                print(f"- {label}: new / old = {med[('new', label)] / med[('old', label)]:.2f}")


if __name__ == "__main__":
    main()
