"""A numpy interpreter over the expression graph (one evaluation per distinct node); each
operator's numpy evaluation is its declaration's `np=` (ops/)."""
from __future__ import annotations

import numpy as np

from .errors import InternalError, MatcalcError, ShapeError
from .expr import Node, dim_factors, postorder
from .ops import registry


def _has(shape: tuple) -> str:
    if shape == ():
        return "is a scalar"
    if len(shape) == 1:
        return f"has {shape[0]} entries"
    return f"is {shape[0]}×{shape[1]}"


class Dims:
    """Dimension sizes bound from the values' arrays."""

    def __init__(self):
        self.size: dict[str, int] = {}

    def bind(self, name: str, shape: tuple, arr: np.ndarray):
        if len(shape) != arr.ndim:
            raise ShapeError(f"{name} {_has(shape)} but its value has shape {arr.shape}")
        for d, k in zip(shape, arr.shape):
            if k == 0:
                raise ShapeError(f"the value of {name} has shape {arr.shape}; dimensions are positive")
            if isinstance(d, int):
                if d != k:
                    raise ShapeError(f"{name} {_has(shape)} but its value has shape {arr.shape}")
            elif isinstance(d, str):
                old = self.size.setdefault(d, k)
                if old != k:
                    raise ShapeError(f"dimension {d} is {old} elsewhere but {name}'s value has shape {arr.shape}")

    def __call__(self, d) -> int:
        k = 1
        for f in dim_factors(d):
            if isinstance(f, int):
                k *= f
            elif f in self.size:
                k *= self.size[f]
            else:
                raise ShapeError(f"the size of dimension {f} is unknown: no value has that dimension")
        return k


def as_value(name: str, shape: tuple, v) -> np.ndarray:
    """A user's value as an array of the variable's rank (vectors 1-D, scalars 0-D)."""
    if v is None or isinstance(v, (str, bytes)):
        raise MatcalcError(f"the value of {name} is not numeric: {type(v).__name__}")
    try:
        if np.iscomplexobj(v):
            raise MatcalcError(f"the value of {name} is complex; matcalc works with real numbers")
        arr = np.asarray(v, dtype=float)
    except MatcalcError:
        raise
    except OverflowError:
        raise MatcalcError(f"the value of {name} has a number too large for a float") from None
    except (TypeError, ValueError):
        ragged = isinstance(v, (list, tuple))
        raise MatcalcError(f"the value of {name} is not " + ("a rectangular array of numbers (rows of different "
                           "lengths?)" if ragged else f"numeric: {type(v).__name__}")) from None
    if len(shape) == 1 and arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if shape == () and arr.size == 1:
        arr = arr.reshape(())
    if len(shape) == 2 and shape[0] == 1 and arr.ndim == 1:
        arr = arr.reshape(1, -1)
    return arr


def bind_values(var_shapes: dict, values: dict) -> tuple[dict, Dims]:
    if not isinstance(values, dict):
        raise MatcalcError(f"values must be a dict of name -> number or array, not {type(values).__name__}")
    dims = Dims()
    env = {}
    for name, shape in var_shapes.items():
        if name in values:
            arr = as_value(name, shape, values[name])
            dims.bind(name, shape, arr)
            env[name] = arr
    return env, dims


#: the largest array `evaluate` builds (numbers); a bigger one is a clear error, not a MemoryError
MAX_ENTRIES = 10**8


def _fits(node: Node, dims: Dims) -> None:
    sizes = [dims(d) for d in node.shape]
    if node.op == "K":
        sizes = [dims(node.attr[0]) * dims(node.attr[1])] * 2
    total = 1
    for k in sizes:
        total *= int(k)
    if total > MAX_ENTRIES:
        shown = "×".join(str(int(k)) for k in sizes)
        raise MatcalcError(f"evaluating needs a {shown} array ({total:.3g} numbers): too large to compute "
                           f"(the limit is matcalc.evaluate.MAX_ENTRIES = {MAX_ENTRIES:.0e}); the symbolic result "
                           f"is fine, evaluate it at smaller sizes")


def evaluate_node(root: Node, env: dict, dims: Dims) -> np.ndarray:
    """The value of `root` given variable values `env` and dimension sizes `dims`."""
    from .adjugate import numeric_form
    root = numeric_form(root)  # det(A) A⁻¹ as the adjugate: defined where A is singular
    memo: dict[int, object] = {}
    with np.errstate(all="ignore"):
        for node in postorder(root):
            if node.op == "var":
                if node.attr not in env:
                    raise MatcalcError(f"no value given for {node.attr}")
                val = env[node.attr]
            elif node.op == "dvar":
                raise MatcalcError(f"d{node.attr} is a differential, not a value")
            else:
                args = [memo[id(a)] for a in node.args]
                _fits(node, dims)
                val = registry.op(node.op).np(node, args, dims)
            shape = tuple(dims(d) for d in node.shape)
            arr = np.asarray(val, dtype=float)
            if arr.shape != shape:
                if arr.size != int(np.prod(shape, dtype=np.int64)):
                    if arr.ndim == 0:  # a scalar broadcast to the node's shape
                        arr = np.full(shape, float(arr))
                    else:
                        raise InternalError(f"internal error: {node.op} gave shape {arr.shape}, expected {shape}")
                else:
                    arr = arr.reshape(shape)
            memo[id(node)] = arr
    return memo[id(root)]
