"""Benchmark: the cold command line, as ratios measured in one run.

    python tests/bench/bench_cold.py [--runs 9] [--old PATH] [--instructions]

Each round starts, one after the other (interleaved, so that load on the machine hits all of
them alike), fresh processes for
- `python -c pass` (the interpreter alone) and `python -c "import sympy"`;
- `python -m matcalc.cli diff "X@W+b" W --format F` for F = text, unicode, latex;
- `python -c "import matcalc; matcalc.diff('X@W+b', 'W').latex"` (the first call in a process),
  which also reports, in-process, the time of `import matcalc` and of that first call alone;
and prints the median of each over the rounds (wall clock) and the ratios the targets are about:
the LaTeX call / `import sympy` (target ≤ 1.15), the text call / `python -c pass`.

matcalc runs from a copy of this checkout (put first on PYTHONPATH) in two ways:
- *installed*: byte-compiled first, as `pip install` leaves a package (sympy and lark, installed,
  have their `.pyc` files too) — the case the target is about;
- *no .pyc*: with PYTHONDONTWRITEBYTECODE=1 and no `__pycache__`, so that every matcalc module
  is compiled from source at every start (a source checkout under that variable, as in some
  sandboxes; sympy keeps its `.pyc` files, so this case charges matcalc alone for compiling).
With `--old PATH` (an older checkout) the same commands run from a copy of it, both ways.
With `--instructions` (needs valgrind) it also counts, once, the instructions each command
executes (callgrind, PYTHONHASHSEED=0): a figure that load on the machine does not blur.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable
EXPR, WRT = "X@W+b", "W"
FIRST_CALL = ("import time; t0 = time.perf_counter(); import matcalc; t1 = time.perf_counter(); "
              f"matcalc.diff({EXPR!r}, {WRT!r}).latex; t2 = time.perf_counter(); "
              "print(f'{t1 - t0:.6f} {t2 - t1:.6f}')")
CLI = [PY, "-m", "matcalc.cli", "diff", EXPR, WRT, "--format"]
COMMON = {"python -c pass": [PY, "-c", "pass"], "import sympy": [PY, "-c", "import sympy"]}
MATCALC = {"cli text": CLI + ["text"], "cli unicode": CLI + ["unicode"], "cli latex": CLI + ["latex"],
           "import matcalc + first diff().latex": [PY, "-c", FIRST_CALL]}


def copy_tree(src: Path, dest: Path, compiled: bool) -> Path:
    """A copy of a checkout's `matcalc` package and grammar files, byte-compiled or not."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(src / "matcalc", dest / "matcalc", ignore=ignore)
    if (src / "grammar").is_dir():
        shutil.copytree(src / "grammar", dest / "grammar", ignore=ignore)
    if compiled:
        subprocess.run([PY, "-m", "compileall", "-q", str(dest / "matcalc")], check=True)
    return dest


def run_once(cmd: list[str], env: dict, cwd: str) -> tuple[float, str]:
    """Wall-clock seconds of one process, and its stdout."""
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=True,
                       cwd=cwd)
    return time.perf_counter() - t, p.stdout


def setups(root: Path, trees: dict[str, Path]) -> dict[str, dict]:
    """The environment of every (tree, way) column."""
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    out = {}
    for name, src in trees.items():
        for way, compiled in (("installed", True), ("no .pyc", False)):
            dest = copy_tree(src, root / f"{name}-{'pyc' if compiled else 'src'}", compiled)
            env = dict(base, PYTHONPATH=str(dest), PYTHONDONTWRITEBYTECODE="1")
            out[f"{name}, {way}"] = env
    return out


def measure(runs: int, columns: dict[str, dict], cwd: str) -> tuple[dict, dict]:
    """Median seconds by (column, label) and the in-process (import, first call) medians by column."""
    times: dict = {}
    inproc: dict = {}
    first = next(iter(columns.values()))
    for env in columns.values():  # warm the file cache
        for cmd in MATCALC.values():
            run_once(cmd, env, cwd)
    for _ in range(runs):
        for label, cmd in COMMON.items():
            times.setdefault(("", label), []).append(run_once(cmd, first, cwd)[0])
        for col, env in columns.items():
            for label, cmd in MATCALC.items():
                dt, out = run_once(cmd, env, cwd)
                times.setdefault((col, label), []).append(dt)
                if cmd[1] == "-c":
                    imp, call = map(float, out.split())
                    inproc.setdefault(col, ([], []))
                    inproc[col][0].append(imp)
                    inproc[col][1].append(call)
    med = {k: statistics.median(v) for k, v in times.items()}
    return med, {c: (statistics.median(a), statistics.median(b)) for c, (a, b) in inproc.items()}


def report(med: dict, inproc: dict, columns: list[str], runs: int) -> None:
    """The table and the ratios, in markdown."""
    ms = lambda s: f"{s * 1000:.0f}"  # noqa: E731
    print(f"Median of {runs} interleaved rounds, wall clock in ms (Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cores; load average at the end "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}).")
    print()
    print("| command | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for label in COMMON:
        print(f"| `{label}` | " + " | ".join([ms(med[("", label)])] * len(columns)) + " |")
    for label in MATCALC:
        print(f"| {label} | " + " | ".join(ms(med[(c, label)]) for c in columns) + " |")
    print("| … of which `import matcalc` (in-process) | " + " | ".join(ms(inproc[c][0]) for c in columns) + " |")
    print("| … of which the first `diff().latex` (in-process) | "
          + " | ".join(ms(inproc[c][1]) for c in columns) + " |")
    sym, base = med[("", "import sympy")], med[("", "python -c pass")]
    print("| **LaTeX call / `import sympy`** (target ≤ 1.15) | "
          + " | ".join(f"**{med[(c, 'cli latex')] / sym:.2f}**" for c in columns) + " |")
    for fmt in ("text", "unicode"):
        print(f"| {fmt} call / `python -c pass` | "
              + " | ".join(f"{med[(c, 'cli ' + fmt)] / base:.2f}" for c in columns) + " |")
    olds = [c for c in columns if c.startswith("old")]
    for old in olds:
        new = old.replace("old", "new", 1)
        print()
        print(f"new / old ({old.split(', ')[1]}): " + "; ".join(
            f"{label} {med[(new, label)] / med[(old, label)]:.2f}" for label in MATCALC))


def instructions(cmd: list[str], env: dict, cwd: str) -> int:
    """Instructions executed by one process (valgrind's callgrind)."""
    p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
                       env=dict(env, PYTHONHASHSEED="0"), cwd=cwd, capture_output=True, text=True, check=True)
    return int(re.search(r"Collected : (\d+)", p.stderr).group(1))


def report_instructions(columns: dict[str, dict], cwd: str) -> None:
    """Instruction counts (millions) of `import sympy` and the CLI calls, and the LaTeX ratio."""
    first = next(iter(columns.values()))
    common = {label: instructions(cmd, first, cwd) for label, cmd in COMMON.items()}
    counts = {c: {label: instructions(MATCALC[label], env, cwd) for label in ("cli text", "cli latex")}
              for c, env in columns.items()}
    print()
    print("Instructions executed (millions; valgrind callgrind, one run each):")
    print()
    print("| command | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for label, n in common.items():
        print(f"| `{label}` | " + " | ".join([f"{n / 1e6:.0f}"] * len(columns)) + " |")
    for label in ("cli text", "cli latex"):
        print(f"| {label} | " + " | ".join(f"{counts[c][label] / 1e6:.0f}" for c in columns) + " |")
    print("| **LaTeX call / `import sympy`** | "
          + " | ".join(f"**{counts[c]['cli latex'] / common['import sympy']:.3f}**" for c in columns) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=9, help="rounds (the median is taken; at least 7)")
    ap.add_argument("--old", metavar="PATH", type=Path, help="an older matcalc checkout to compare against")
    ap.add_argument("--instructions", action="store_true", help="also count instructions with valgrind")
    args = ap.parse_args()
    runs = max(args.runs, 7)
    here = Path(__file__).resolve().parent.parent.parent
    trees = {"new": here} if args.old is None else {"new": here, "old": args.old}
    with tempfile.TemporaryDirectory(prefix="matcalc-bench-cold-") as tmp:
        columns = setups(Path(tmp), trees)
        # the processes start in an empty folder: PYTHONPATH alone says which matcalc runs
        cwd = Path(tmp) / "cwd"
        cwd.mkdir()
        med, inproc = measure(runs, columns, str(cwd))
        report(med, inproc, list(columns), runs)
        if args.instructions:
            report_instructions(columns, str(cwd))


if __name__ == "__main__":
    main()
