"""`--threads N` (default 1) for the benchmark scripts; it must run before numpy / jax load their
thread pools, so the scripts call it before importing them."""
from __future__ import annotations

import os


def pin_threads(argv, one_core: bool = False) -> str:
    """Set the BLAS/XLA thread counts from `--threads N` ("0": leave them alone); with `one_core`
    and N = 1 also pin the process to one core (XLA may start threads of its own)."""
    n = "1"
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            n = argv[i + 1]
        elif a.startswith("--threads="):
            n = a.split("=", 1)[1]
    if n == "0":
        return n
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = n
    if n == "1":
        if one_core and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
    return n
