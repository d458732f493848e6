# The benchmarks in this folder are scripts (`python tests/bench/bench.py`), not tests.
collect_ignore_glob = ["*.py"]
