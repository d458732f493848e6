"""A numpy interpreter over the expression graph (one evaluation per distinct node)."""
from __future__ import annotations

import numpy as np

from .errors import InternalError, MatcalcError, ShapeError
from .expr import Node, dim_factors, fmt_shape, postorder


def _softmax(x, axis=None):
    z = x - (x.max() if axis is None else x.max(axis=axis, keepdims=True))
    e = np.exp(z)
    return e / (e.sum() if axis is None else e.sum(axis=axis, keepdims=True))


def _logsumexp(x, axis=None):
    m = x.max() if axis is None else x.max(axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=axis is not None)) + m
    return out if axis is None else out.reshape(-1)


def _sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


FUNCS = {
    "exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos, "tan": np.tan, "tanh": np.tanh,
    "sigmoid": _sigmoid, "relu": lambda x: np.maximum(x, 0.0), "abs": np.abs, "sqrt": np.sqrt,
    "softplus": lambda x: np.logaddexp(0.0, x), "sign": np.sign,
    "step": lambda x: (np.asarray(x) > 0).astype(float),
}


def _col(x):
    x = np.asarray(x, dtype=float)
    return x.reshape(-1, 1) if x.ndim == 1 else x.reshape(1, 1) if x.ndim == 0 else x


def _commutation(m: int, n: int) -> np.ndarray:
    k = np.zeros((m * n, m * n))
    for i in range(m):
        for j in range(n):
            k[i * n + j, j * m + i] = 1.0
    return k


def _lin(fn, name):
    def run(x):
        try:
            return fn(x)
        except np.linalg.LinAlgError as e:
            raise MatcalcError(f"{name}: {e}") from None
    return run


OPS = {
    "const": lambda n, a, d: n.attr,
    "numel": lambda n, a, d: float(d(n.attr)),
    "eye": lambda n, a, d: np.eye(d(n.shape[0])),
    "ones": lambda n, a, d: np.ones([d(x) for x in n.shape]),
    "zeros": lambda n, a, d: np.zeros([d(x) for x in n.shape]),
    "K": lambda n, a, d: _commutation(d(n.attr[0]), d(n.attr[1])),
    "add": lambda n, a, d: sum(a[1:], a[0]),
    "mul": lambda n, a, d: np.prod(np.broadcast_arrays(*a), axis=0) if len(a) > 2 else a[0] * a[1],
    "pow": lambda n, a, d: np.power(a[0], a[1]),
    "matmul": lambda n, a, d: np.linalg.multi_dot([_col(x) for x in a]) if len(a) > 2 else _col(a[0]) @ _col(a[1]),
    "T": lambda n, a, d: np.transpose(a[0]) if np.ndim(a[0]) == 2 else a[0],
    "fn": lambda n, a, d: FUNCS[n.attr](a[0]),
    "sum": lambda n, a, d: np.sum(a[0], axis=n.attr),
    "tr": lambda n, a, d: np.trace(a[0]),
    "det": lambda n, a, d: np.linalg.det(a[0]),
    "logdet": lambda n, a, d: np.linalg.slogdet(a[0])[1],
    "inv": lambda n, a, d: _lin(np.linalg.inv, "inv")(a[0]),
    "norm": lambda n, a, d: np.linalg.norm(a[0]),
    "diag": lambda n, a, d: np.diag(np.ravel(a[0])),
    "diagv": lambda n, a, d: np.diag(a[0]).copy(),
    "softmax": lambda n, a, d: _softmax(a[0], n.attr),
    "logsumexp": lambda n, a, d: _logsumexp(a[0], n.attr),
    "vec": lambda n, a, d: np.asarray(a[0]).reshape(-1, order="F"),
    "kron": lambda n, a, d: np.kron(_col(a[0]), _col(a[1])),
}


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
                val = OPS[node.op](node, args, dims)
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
