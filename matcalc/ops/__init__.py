"""Operators: the registry (`registry.py`) and one declaration per operator: `elementwise.py`
(one line per function), `algebra.py`, `linalg.py`, `reductions.py`.
Look operators up with `registry.op(name)`, `registry.fn(name)`, `registry.functions()`."""
