"""Every derivative rule of matcalc checked numerically against central finite differences.

Table-driven: each case is an expression of the input language (shared/API.md), the variables
to differentiate by, the variables' (symbolic) shapes, sampling domains that keep the
expression smooth, and an independent numpy reference of the expression (column-vector
semantics, vectors as 1-D arrays). For every (case, variable) the tests check

* `evaluate(expr)` equals the numpy reference (so the finite differences below, which use
  `matcalc.evaluate`, differentiate the right function);
* `diff(expr, wrt).evaluate` equals `jacobian_fd` (mixed layout: out_shape + wrt_shape), and
  `Derivative.shape` names that shape;
* `vjp(expr, wrt, upstream="G")` equals the finite-difference gradient of sum(G * f);
* `hessian(expr, wrt)` (scalar expressions) equals `hessian_fd` and is symmetric;
* the `.text` of the results (at most 2 axes) evaluates to the same array, with the given
  shapes and, where the names follow the naming defaults, with `shapes=None`;
* the three layouts; a variable the expression does not contain gives zeros.

Known engine bugs go into KNOWN_BUGS as `xfail(strict=True)` cases with the reason (never loosened).
"""
from __future__ import annotations


import numpy as np
import pytest
import sympy

import matcalc
from public_cases import hessian_fd, jacobian_fd

DIMS = {"m": 4, "n": 3, "k": 2}
RTOL, ATOL = 1e-5, 1e-6
H_RTOL, H_ATOL = 1e-4, 1e-5

S = ()
N = ("n",)
M = ("m",)
K = ("k",)
MN = ("m", "n")
NM = ("n", "m")
NN = ("n", "n")
NK = ("n", "k")
KM = ("k", "m")
MK = ("m", "k")

sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731


def _softmax(x, axis=None):
    e = np.exp(x - np.max(x, axis=axis, keepdims=axis is not None))
    return e / np.sum(e, axis=axis, keepdims=axis is not None)


def _lse(x, axis=None):
    return np.log(np.sum(np.exp(x), axis=axis))


NP_FUNCS = {
    "exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos, "tan": np.tan, "tanh": np.tanh,
    "sigmoid": sig, "relu": lambda z: np.maximum(z, 0.0), "abs": np.abs, "sqrt": np.sqrt,
    "softplus": lambda z: np.log1p(np.exp(z)),
}
# sampling domain of a function's argument that keeps it smooth and FD meaningful
FUNC_DOMAIN = {"log": "positive", "sqrt": "positive", "tan": "small", "relu": "awayzero",
               "abs": "awayzero"}


class Case:
    def __init__(self, id, expr, wrts, shapes, f, domain=None, marks=None):
        self.id, self.expr, self.wrts, self.shapes, self.f = id, expr, wrts, shapes, f
        self.domain = domain or {}
        self.marks = marks or {}  # (check, wrt) -> pytest mark, for known engine bugs

    def __repr__(self):
        return self.id


def C(id, expr, wrts, shapes, f, domain=None, marks=None):
    return Case(id, expr, wrts.split(), shapes, f, domain, marks)


def _fn_cases():
    out = []
    for name, g in NP_FUNCS.items():
        dom = FUNC_DOMAIN.get(name, "normal")
        out += [
            C(f"fn-{name}-vec", f"{name}(x)", "x", {"x": N}, lambda v, g=g: g(v["x"]), {"x": dom}),
            C(f"fn-{name}-mat", f"{name}(X)", "X", {"X": MK}, lambda v, g=g: g(v["X"]), {"X": dom}),
            C(f"fn-{name}-grad", f"sum({name}(X) * W)", "X W", {"X": MK, "W": MK},
              lambda v, g=g: np.sum(g(v["X"]) * v["W"]), {"X": dom}),
            C(f"fn-{name}-scalar", f"{name}(alpha)", "alpha", {"alpha": S},
              lambda v, g=g: g(v["alpha"]), {"alpha": dom}),
            C(f"fn-{name}-scaled", f"{name}(alpha) * x", "alpha x", {"alpha": S, "x": N},
              lambda v, g=g: g(v["alpha"]) * v["x"], {"alpha": dom}),
        ]
    return out


CASES = [
    # ---- matrix product
    C("matmul-Ax", "A @ x", "x A", {"A": MN, "x": N}, lambda v: v["A"] @ v["x"]),
    C("matmul-xTy", "x.T @ y", "x y", {"x": N, "y": N}, lambda v: v["x"] @ v["y"]),
    C("matmul-outer", "x @ y.T", "x y", {"x": M, "y": N}, lambda v: np.outer(v["x"], v["y"])),
    C("matmul-aTXb", "a.T @ X @ b", "X a b", {"a": M, "X": MN, "b": N},
      lambda v: v["a"] @ v["X"] @ v["b"]),
    C("matmul-XW", "X @ W", "X W", {"X": MN, "W": NK}, lambda v: v["X"] @ v["W"]),
    C("matmul-chain3", "X @ W @ V", "X W V", {"X": MN, "W": NK, "V": KM},
      lambda v: v["X"] @ v["W"] @ v["V"]),
    C("matmul-row", "x.T @ A", "x A", {"x": M, "A": MN}, lambda v: (v["x"] @ v["A"])[None, :]),
    C("matmul-row-T", "(x.T @ A).T", "x A", {"x": M, "A": MN}, lambda v: v["x"] @ v["A"]),
    C("matmul-quad", "x.T @ A @ x", "x A", {"x": N, "A": NN}, lambda v: v["x"] @ v["A"] @ v["x"]),
    C("matmul-XTX", "X.T @ X", "X", {"X": MK}, lambda v: v["X"].T @ v["X"]),
    C("matmul-sum-XWv", "sum(X @ W @ u)", "W u", {"X": MN, "W": NK, "u": K},
      lambda v: np.sum(v["X"] @ v["W"] @ v["u"])),
    C("matmul-scalar-by-xAx", "alpha * x.T @ A @ x", "alpha", {"alpha": S, "x": N, "A": NN},
      lambda v: v["alpha"] * v["x"] @ v["A"] @ v["x"]),
    # ---- element-wise product and division
    C("mul-vec", "x * y", "x y", {"x": N, "y": N}, lambda v: v["x"] * v["y"]),
    C("mul-mat", "X * Y", "X", {"X": MN, "Y": MN}, lambda v: v["X"] * v["Y"]),
    C("mul-self", "X * X", "X", {"X": MK}, lambda v: v["X"] * v["X"]),
    C("mul-sum3", "sum(X * Y * Z)", "X Y", {"X": MK, "Y": MK, "Z": MK},
      lambda v: np.sum(v["X"] * v["Y"] * v["Z"])),
    C("mul-scalar-mat", "alpha * X", "alpha X", {"alpha": S, "X": MN}, lambda v: v["alpha"] * v["X"]),
    C("mul-scalar-scalar", "alpha * beta * alpha", "alpha", {"alpha": S, "beta": S},
      lambda v: v["alpha"] * v["beta"] * v["alpha"]),
    C("div-vec", "x / y", "x y", {"x": N, "y": N}, lambda v: v["x"] / v["y"], {"y": "positive"}),
    C("div-mat", "X / Y", "X Y", {"X": MK, "Y": MK}, lambda v: v["X"] / v["Y"], {"Y": "positive"}),
    C("div-scalar-by-vec", "alpha / x", "alpha x", {"alpha": S, "x": N},
      lambda v: v["alpha"] / v["x"], {"x": "positive"}),
    C("div-mat-by-scalar", "X / alpha", "X alpha", {"X": MN, "alpha": S},
      lambda v: v["X"] / v["alpha"], {"alpha": "positive"}),
    C("div-const", "1 / x", "x", {"x": N}, lambda v: 1 / v["x"], {"x": "positive"}),
    C("div-grad", "sum(X / Y)", "X Y", {"X": MK, "Y": MK}, lambda v: np.sum(v["X"] / v["Y"]),
      {"Y": "positive"}),
    # ---- powers
    C("pow-cube", "x ** 3", "x", {"x": N}, lambda v: v["x"] ** 3),
    C("pow-square-mat", "X ** 2", "X", {"X": MK}, lambda v: v["X"] ** 2),
    C("pow-half", "x ** 0.5", "x", {"x": N}, lambda v: v["x"] ** 0.5, {"x": "positive"}),
    C("pow-negative", "x ** -2", "x", {"x": N}, lambda v: v["x"] ** -2.0, {"x": "positive"}),
    C("pow-scalar-exponent", "x ** alpha", "x alpha", {"x": N, "alpha": S},
      lambda v: v["x"] ** v["alpha"], {"x": "positive"}),
    C("pow-scalar-base", "alpha ** x", "alpha x", {"alpha": S, "x": N},
      lambda v: v["alpha"] ** v["x"], {"alpha": "positive"}),
    C("pow-const-base", "2 ** X", "X", {"X": MK}, lambda v: 2.0 ** v["X"]),
    C("pow-vec-vec", "x ** y", "x y", {"x": N, "y": N}, lambda v: v["x"] ** v["y"], {"x": "positive"}),
    C("pow-mat-mat", "sum(X ** Y)", "X Y", {"X": MK, "Y": MK}, lambda v: np.sum(v["X"] ** v["Y"]),
      {"X": "positive"}),
    C("pow-scalar-scalar", "alpha ** beta", "alpha beta", {"alpha": S, "beta": S},
      lambda v: v["alpha"] ** v["beta"], {"alpha": "positive"}),
    C("pow-neg-prec", "-x ** 2", "x", {"x": N}, lambda v: -(v["x"] ** 2)),
    # ---- sums, differences, negation
    C("add-vec", "x + y", "x y", {"x": N, "y": N}, lambda v: v["x"] + v["y"]),
    C("sub-mat", "X - Y", "X Y", {"X": MN, "Y": MN}, lambda v: v["X"] - v["Y"]),
    C("neg-vec", "-x", "x", {"x": N}, lambda v: -v["x"]),
    C("neg-mat", "-X", "X", {"X": MN}, lambda v: -v["X"]),
    C("neg-scalar", "-(x.T @ y)", "x", {"x": N, "y": N}, lambda v: -(v["x"] @ v["y"])),
    C("add-self", "x + x - 3 * x", "x", {"x": N}, lambda v: -v["x"]),
    C("add-const-mat", "X + ones(m, n)", "X", {"X": MN}, lambda v: v["X"] + 1),
    C("add-eye", "X + alpha * eye(n)", "X alpha", {"X": NN, "alpha": S},
      lambda v: v["X"] + v["alpha"] * np.eye(DIMS["n"])),
    C("add-zeros", "zeros(n) + 2 * x", "x", {"x": N}, lambda v: 2 * v["x"]),
    # ---- broadcasting: a vector over the rows of a matrix, scalars everywhere
    C("bcast-X+b", "X + b", "X b", {"X": MN, "b": N}, lambda v: v["X"] + v["b"][None, :]),
    C("bcast-b+X", "b + X", "b X", {"X": MN, "b": N}, lambda v: v["b"][None, :] + v["X"]),
    C("bcast-X-b", "X - b", "b", {"X": MN, "b": N}, lambda v: v["X"] - v["b"][None, :]),
    C("bcast-b-X", "b - X", "b X", {"X": MN, "b": N}, lambda v: v["b"][None, :] - v["X"]),
    C("bcast-X*b", "X * b", "X b", {"X": MN, "b": N}, lambda v: v["X"] * v["b"][None, :]),
    C("bcast-b*X", "b * X", "b", {"X": MN, "b": N}, lambda v: v["b"][None, :] * v["X"]),
    C("bcast-X/b", "X / b", "X b", {"X": MN, "b": N}, lambda v: v["X"] / v["b"][None, :],
      {"b": "positive"}),
    C("bcast-b/X", "b / X", "b X", {"X": MN, "b": N}, lambda v: v["b"][None, :] / v["X"],
      {"X": "positive"}),
    C("bcast-X**b", "X ** b", "X b", {"X": MK, "b": K}, lambda v: v["X"] ** v["b"][None, :],
      {"X": "positive"}),
    C("bcast-grad-b", "sum(tanh(X @ W + b))", "b W", {"X": MN, "W": NK, "b": K},
      lambda v: np.sum(np.tanh(v["X"] @ v["W"] + v["b"][None, :]))),
    C("bcast-X+alpha", "X + alpha", "alpha X", {"X": MN, "alpha": S}, lambda v: v["X"] + v["alpha"]),
    C("bcast-alpha-x", "alpha - x", "alpha x", {"x": N, "alpha": S}, lambda v: v["alpha"] - v["x"]),
    C("bcast-x*alpha", "x * alpha", "alpha x", {"x": N, "alpha": S}, lambda v: v["x"] * v["alpha"]),
    C("bcast-sum-alphaX", "sum(alpha * X)", "alpha X", {"X": MK, "alpha": S},
      lambda v: np.sum(v["alpha"] * v["X"])),
    C("bcast-scalar-fn", "exp(alpha) * x + beta", "alpha beta", {"x": N, "alpha": S, "beta": S},
      lambda v: np.exp(v["alpha"]) * v["x"] + v["beta"]),
    C("bcast-const", "2 + x * 3 - 1", "x", {"x": N}, lambda v: 2 + v["x"] * 3 - 1),
    # ---- transpose
    C("T-mat", "X.T", "X", {"X": MN}, lambda v: v["X"].T),
    C("T-matvec", "X.T @ a", "X a", {"X": MN, "a": M}, lambda v: v["X"].T @ v["a"]),
    C("T-hadamard", "sum(X.T * Z)", "X Z", {"X": MK, "Z": KM}, lambda v: np.sum(v["X"].T * v["Z"])),
    C("T-double", "(X.T).T + X", "X", {"X": MN}, lambda v: 2 * v["X"]),
    C("T-sum", "X + X.T", "X", {"X": NN}, lambda v: v["X"] + v["X"].T),
    # ---- element-wise functions
    *_fn_cases(),
    C("fn-composite", "sum(log(1 + exp(-y * (X @ w))))", "w X", {"X": MN, "y": M, "w": N},
      lambda v: np.sum(np.log(1 + np.exp(-v["y"] * (v["X"] @ v["w"]))))),
    C("fn-tanh-layer", "tanh(X @ W)", "W", {"X": MN, "W": NK}, lambda v: np.tanh(v["X"] @ v["W"])),
    C("fn-nested", "sin(exp(x) * cos(x))", "x", {"x": N}, lambda v: np.sin(np.exp(v["x"]) * np.cos(v["x"]))),
    # ---- sums and means
    C("sum-vec", "sum(x)", "x", {"x": N}, lambda v: np.sum(v["x"])),
    C("sum-mat", "sum(X)", "X", {"X": MN}, lambda v: np.sum(v["X"])),
    C("sum-axis0", "sum(X, axis=0)", "X", {"X": MN}, lambda v: np.sum(v["X"], axis=0)),
    C("sum-axis1", "sum(X, axis=1)", "X", {"X": MN}, lambda v: np.sum(v["X"], axis=1)),
    C("sum-axis0-sq", "sum(X ** 2, axis=0)", "X", {"X": MN}, lambda v: np.sum(v["X"] ** 2, axis=0)),
    C("sum-axis1-grad", "dot(sum(X * X, axis=1), a)", "X a", {"X": MK, "a": M},
      lambda v: np.sum(v["X"] ** 2, axis=1) @ v["a"]),
    C("sum-axis0-grad", "dot(sum(exp(X), axis=0), b)", "X b", {"X": MK, "b": K},
      lambda v: np.sum(np.exp(v["X"]), axis=0) @ v["b"]),
    C("mean-vec", "mean(x)", "x", {"x": N}, lambda v: np.mean(v["x"])),
    C("mean-mat", "mean(X)", "X", {"X": MN}, lambda v: np.mean(v["X"])),
    C("mean-sq", "mean((X @ w - y) ** 2)", "w X", {"X": MN, "w": N, "y": M},
      lambda v: np.mean((v["X"] @ v["w"] - v["y"]) ** 2)),
    C("sum-scalar-out", "sum(alpha * x)", "alpha", {"alpha": S, "x": N}, lambda v: np.sum(v["alpha"] * v["x"])),
    # ---- trace, determinant, log-determinant, inverse
    C("tr-X", "tr(X)", "X", {"X": NN}, lambda v: np.trace(v["X"])),
    C("tr-AX", "tr(A @ X)", "X A", {"A": NM, "X": MN}, lambda v: np.trace(v["A"] @ v["X"])),
    C("tr-XX", "tr(X @ X)", "X", {"X": NN}, lambda v: np.trace(v["X"] @ v["X"])),
    C("tr-XTAX", "tr(X.T @ A @ X)", "X A", {"A": NN, "X": NK}, lambda v: np.trace(v["X"].T @ v["A"] @ v["X"])),
    C("tr-scalar", "tr(alpha * X)", "alpha", {"X": NN, "alpha": S}, lambda v: v["alpha"] * np.trace(v["X"])),
    C("det-X", "det(X)", "X", {"X": NN}, lambda v: np.linalg.det(v["X"]), {"X": "invertible"}),
    C("det-XTX", "det(X.T @ X)", "X", {"X": MK}, lambda v: np.linalg.det(v["X"].T @ v["X"])),
    C("det-scalar", "det(alpha * X)", "alpha", {"X": NN, "alpha": S},
      lambda v: np.linalg.det(v["alpha"] * v["X"]), {"X": "invertible"}),
    C("logdet-X", "logdet(X)", "X", {"X": NN}, lambda v: np.linalg.slogdet(v["X"])[1], {"X": "spd"}),
    C("logdet-gram", "logdet(X.T @ X + alpha * eye(k))", "X alpha", {"X": MK, "alpha": S},
      lambda v: np.linalg.slogdet(v["X"].T @ v["X"] + v["alpha"] * np.eye(2))[1], {"alpha": "positive"}),
    C("inv-X", "inv(X)", "X", {"X": NN}, lambda v: np.linalg.inv(v["X"]), {"X": "invertible"}),
    C("inv-aXb", "a.T @ inv(X) @ b", "X a", {"a": N, "X": NN, "b": N},
      lambda v: v["a"] @ np.linalg.inv(v["X"]) @ v["b"], {"X": "invertible"}),
    C("inv-Xb", "inv(X) @ b", "X b", {"X": NN, "b": N}, lambda v: np.linalg.inv(v["X"]) @ v["b"],
      {"X": "invertible"}),
    C("inv-tr", "tr(inv(X))", "X", {"X": NN}, lambda v: np.trace(np.linalg.inv(v["X"])), {"X": "invertible"}),
    C("inv-scalar", "inv(alpha * X)", "alpha", {"X": NN, "alpha": S},
      lambda v: np.linalg.inv(v["alpha"] * v["X"]), {"X": "invertible", "alpha": "positive"}),
    C("inv-quad", "0.5 * x.T @ inv(A) @ x", "x A", {"x": N, "A": NN},
      lambda v: 0.5 * v["x"] @ np.linalg.inv(v["A"]) @ v["x"], {"A": "spd"}),
    # ---- norms
    C("norm-vec", "norm(x)", "x", {"x": N}, lambda v: np.linalg.norm(v["x"])),
    C("norm-mat", "norm(X)", "X", {"X": MN}, lambda v: np.linalg.norm(v["X"])),
    C("norm-Ax", "norm(A @ x - y)", "x A", {"A": MN, "x": N, "y": M},
      lambda v: np.linalg.norm(v["A"] @ v["x"] - v["y"])),
    C("norm-scaled", "norm(x) * x", "x", {"x": N}, lambda v: np.linalg.norm(v["x"]) * v["x"]),
    C("norm-matdiff", "norm(X - Y) ** 2", "X", {"X": MK, "Y": MK}, lambda v: np.linalg.norm(v["X"] - v["Y"]) ** 2),
    # ---- inner products
    C("dot-xy", "dot(x, y)", "x y", {"x": N, "y": N}, lambda v: v["x"] @ v["y"]),
    C("dot-xx", "dot(x, x)", "x", {"x": N}, lambda v: v["x"] @ v["x"]),
    C("dot-Ax", "dot(A @ x, b)", "x A", {"A": MN, "x": N, "b": M}, lambda v: (v["A"] @ v["x"]) @ v["b"]),
    C("dot-times-vec", "dot(x, y) * z", "x z", {"x": N, "y": N, "z": M}, lambda v: (v["x"] @ v["y"]) * v["z"]),
    # ---- diag
    C("diag-vec", "diag(x)", "x", {"x": N}, lambda v: np.diag(v["x"])),
    C("diag-mat", "diag(X)", "X", {"X": NN}, lambda v: np.diag(v["X"]).copy()),
    C("diag-vecA", "sum(diag(x) @ A)", "x A", {"x": M, "A": MN}, lambda v: np.sum(np.diag(v["x"]) @ v["A"])),
    C("diag-trace", "tr(diag(x) @ X)", "x X", {"x": N, "X": NN}, lambda v: np.trace(np.diag(v["x"]) @ v["X"])),
    C("diag-diag", "diag(diag(X))", "X", {"X": NN}, lambda v: np.diag(np.diag(v["X"]))),
    C("diag-mat-grad", "dot(diag(X @ X), y)", "X", {"X": NN, "y": N},
      lambda v: np.diag(v["X"] @ v["X"]) @ v["y"]),
    # ---- softmax and logsumexp
    C("softmax-vec", "softmax(x)", "x", {"x": N}, lambda v: _softmax(v["x"])),
    C("logsumexp-vec", "logsumexp(x)", "x", {"x": N}, lambda v: _lse(v["x"])),
    C("softmax-axis1", "softmax(S, axis=1)", "S", {"S": MN}, lambda v: _softmax(v["S"], 1)),
    C("softmax-axis0", "softmax(S, axis=0)", "S", {"S": MN}, lambda v: _softmax(v["S"], 0)),
    C("logsumexp-axis1", "logsumexp(S, axis=1)", "S", {"S": MN}, lambda v: _lse(v["S"], 1)),
    C("logsumexp-axis0", "logsumexp(S, axis=0)", "S", {"S": MN}, lambda v: _lse(v["S"], 0)),
    C("softmax-grad", "dot(softmax(x), y)", "x y", {"x": N, "y": N}, lambda v: _softmax(v["x"]) @ v["y"]),
    C("softmax-axis1-grad", "sum(softmax(S, axis=1) * W)", "S W", {"S": MK, "W": MK},
      lambda v: np.sum(_softmax(v["S"], 1) * v["W"])),
    C("softmax-axis0-grad", "sum(softmax(S, axis=0) * W)", "S", {"S": MK, "W": MK},
      lambda v: np.sum(_softmax(v["S"], 0) * v["W"])),
    C("logsumexp-axis1-grad", "dot(logsumexp(S, axis=1), a)", "S a", {"S": MK, "a": M},
      lambda v: _lse(v["S"], 1) @ v["a"]),
    C("logsumexp-axis0-grad", "dot(logsumexp(S, axis=0), b)", "S b", {"S": MK, "b": K},
      lambda v: _lse(v["S"], 0) @ v["b"]),
    C("logsumexp-Ax", "logsumexp(A @ x)", "x A", {"A": MN, "x": N}, lambda v: _lse(v["A"] @ v["x"])),
    C("cross-entropy", "sum(logsumexp(X @ W, axis=1)) - sum(Y * (X @ W))", "W",
      {"X": MN, "W": NK, "Y": MK}, lambda v: np.sum(_lse(v["X"] @ v["W"], 1)) - np.sum(v["Y"] * (v["X"] @ v["W"]))),
    # ---- kron, vec, unvec by any argument (issue 11 item 6)
    C("kron-AB", "kron(A, B)", "A B", {"A": MK, "B": NK}, lambda v: np.kron(v["A"], v["B"])),
    C("kron-vec-mat", "kron(x, B)", "x B", {"x": M, "B": NK}, lambda v: np.kron(v["x"][:, None], v["B"])),
    C("kron-row-mat", "kron(x.T, B)", "x B", {"x": M, "B": NK}, lambda v: np.kron(v["x"][None, :], v["B"])),
    C("kron-mat-vec", "kron(A, y)", "A y", {"A": MK, "y": N}, lambda v: np.kron(v["A"], v["y"][:, None])),
    C("kron-vecs", "kron(x, y)", "x y", {"x": M, "y": N}, lambda v: np.kron(v["x"], v["y"])),
    C("kron-tr", "tr(kron(A, X))", "A X", {"A": NN, "X": ("k", "k")}, lambda v: np.trace(np.kron(v["A"], v["X"]))),
    C("kron-grad", "sum(kron(A, B) * kron(B, A))", "A B", {"A": MK, "B": NK},
      lambda v: np.sum(np.kron(v["A"], v["B"]) * np.kron(v["B"], v["A"]))),
    C("kron-quad", "vec(X).T @ kron(B, A) @ vec(X)", "X A B", {"X": MN, "A": ("m", "m"), "B": NN},
      lambda v: v["X"].reshape(-1, order="F") @ np.kron(v["B"], v["A"]) @ v["X"].reshape(-1, order="F")),
    C("vec-X", "vec(X)", "X", {"X": MN}, lambda v: v["X"].reshape(-1, order="F")),
    C("vec-dot", "dot(vec(X), vec(Y))", "X", {"X": MN, "Y": MN}, lambda v: np.sum(v["X"] * v["Y"])),
    C("vec-exp", "sum(exp(vec(X @ W)))", "X W", {"X": MN, "W": NK}, lambda v: np.sum(np.exp(v["X"] @ v["W"]))),
    C("unvec-outer", "unvec(kron(a, b), n, m)", "a b", {"a": M, "b": N}, lambda v: np.outer(v["b"], v["a"])),
    C("unvec-grad", "sum(unvec(kron(a, b), n, m) * Z)", "a b", {"a": M, "b": N, "Z": NM},
      lambda v: np.sum(np.outer(v["b"], v["a"]) * v["Z"])),
    # ---- keepdims, m×1 broadcasting, mean by axis, dimensions as values (issue 13)
    C("keepdims-sum1", "sum(X, axis=1, keepdims=True)", "X", {"X": MN}, lambda v: np.sum(v["X"], axis=1, keepdims=True)),
    C("keepdims-mean0", "X - mean(X, axis=0, keepdims=True)", "X", {"X": MN},
      lambda v: v["X"] - np.mean(v["X"], axis=0, keepdims=True)),
    C("keepdims-centre", "X - mean(X, axis=1, keepdims=True)", "X", {"X": MN},
      lambda v: v["X"] - np.mean(v["X"], axis=1, keepdims=True)),
    C("keepdims-exp", "sum(exp(X - sum(X, axis=1, keepdims=True)) * W)", "X", {"X": MN, "W": MN},
      lambda v: np.sum(np.exp(v["X"] - np.sum(v["X"], axis=1, keepdims=True)) * v["W"])),
    C("layer-norm", "(X - mean(X, axis=1, keepdims=True)) / sqrt(mean((X - mean(X, axis=1, keepdims=True)) ** 2, "
      "axis=1, keepdims=True) + epsilon)", "X epsilon", {"X": MN, "epsilon": S},
      lambda v: _ln(v["X"], v["epsilon"]), {"epsilon": "positive"}),
    C("layer-norm-loss", "sum(W * ((X - mean(X, axis=1, keepdims=True)) / sqrt(mean((X - mean(X, axis=1, "
      "keepdims=True)) ** 2, axis=1, keepdims=True) + epsilon) * g + b))", "X g b",
      {"X": MN, "W": MN, "g": N, "b": N, "epsilon": S},
      lambda v: np.sum(v["W"] * (_ln(v["X"], v["epsilon"]) * v["g"] + v["b"])), {"epsilon": "positive"}),
    C("col-plus-row", "c + r.T", "c r", {"c": ("m", 1), "r": N}, lambda v: v["c"] + v["r"][None, :]),
    C("col-times-mat", "sum(A * c * A)", "c A", {"c": ("m", 1), "A": MN}, lambda v: np.sum(v["A"] * v["c"] * v["A"])),
    C("col-div-mat", "A / (1 + c ** 2)", "c A", {"c": ("m", 1), "A": MN}, lambda v: v["A"] / (1 + v["c"] ** 2)),
    C("matmul-col", "A @ c", "A c", {"A": MN, "c": ("n", 1)}, lambda v: v["A"] @ v["c"]),
    C("mean-axis0", "mean(X, axis=0)", "X", {"X": MN}, lambda v: np.mean(v["X"], axis=0)),
    C("mean-axis1", "mean(X ** 2, axis=1)", "X", {"X": MN}, lambda v: np.mean(v["X"] ** 2, axis=1)),
    C("len-value", "len(x) * x + rows(X) * cols(X) * sum(X)", "x X", {"x": N, "X": MN},
      lambda v: 3 * v["x"] + 12 * np.sum(v["X"])),
    C("variance", "sum((x - mean(x)) ** 2)", "x", {"x": N}, lambda v: np.sum((v["x"] - np.mean(v["x"])) ** 2)),
]


def _ln(X, eps):
    c = X - X.mean(axis=1, keepdims=True)
    return c / np.sqrt((c ** 2).mean(axis=1, keepdims=True) + eps)

CASE_BY_ID = {c.id: c for c in CASES}
assert len(CASE_BY_ID) == len(CASES), "duplicate case ids"


# ---------------------------------------------------------------- known engine bugs
# (check, case id, wrt) -> reason. Empty: every case passes at the time of writing. A wrong
# derivative found later goes here, reduced, as "matcalc bug: ..." (xfail strict=True, so the fix
# is noticed), never as a looser tolerance. Fixed so far (now plain regression tests below):
#  - hessian through relu/abs raised "cannot read a Jacobian off a differential through zeros";
#  - with shapes=None, .text named inferred dimensions (eye(m), ones(m, n)) that
#    evaluate(d.text) could not bind, also when the expression itself wrote eye(n)/ones(n).
KNOWN_BUGS: dict[tuple[str, str, str], str] = {}


# ---------------------------------------------------------------- helpers
def sample(shapes, domain=None, seed=0):
    rng = np.random.default_rng(seed)
    domain = domain or {}
    values = {}
    for name, shape in shapes.items():
        shp = tuple(DIMS[d] if isinstance(d, str) else d for d in shape)
        kind = domain.get(name, "normal")
        if kind == "spd":
            b = rng.standard_normal(shp)
            v = b @ b.T + shp[0] * np.eye(shp[0])
        elif kind == "invertible":
            v = rng.standard_normal(shp) + 3 * np.eye(shp[0])
        elif kind == "positive":
            v = np.abs(rng.standard_normal(shp)) + 0.5
        elif kind == "small":
            v = rng.uniform(-1.0, 1.0, shp)
        elif kind == "awayzero":
            v = rng.standard_normal(shp)
            v = np.where(np.abs(v) < 0.3, np.where(v < 0, -0.3, 0.3), v)
        else:
            v = rng.standard_normal(shp)
        values[name] = float(v) if shp == () else v
    return values


def fun_of(expr, shapes):
    return lambda v: matcalc.evaluate(expr, v, shapes=shapes)


def concrete(dims):
    return tuple(DIMS[d] if isinstance(d, str) else d for d in dims)


def sympy_sizes(shape):
    """Derivative.shape (sympy dims) with the concrete sizes substituted."""
    out = []
    for s in shape:
        s = sympy.sympify(s)
        s = s.subs({sym: DIMS[sym.name] for sym in s.free_symbols})
        out.append(int(s))
    return tuple(out)


def close(actual, expected, rtol=RTOL, atol=ATOL, what=""):
    actual = np.asarray(actual, dtype=float)
    expected = np.asarray(expected, dtype=float)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != expected {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def params(check, pred=lambda c, w: True):
    out = []
    for c in CASES:
        for w in c.wrts:
            if not pred(c, w):
                continue
            marks = []
            reason = KNOWN_BUGS.get((check, c.id, w))
            if reason:
                marks.append(pytest.mark.xfail(strict=True, reason=reason))
            out.append(pytest.param(c, w, id=f"{c.id}-d{w}", marks=marks))
    return out


def out_ndim(c):
    v = sample(c.shapes, c.domain)
    return np.ndim(c.f(v))


SCALAR_CASES = {c.id for c in CASES if out_ndim(c) == 0}


def fits_defaults(shapes):
    greek = {"alpha", "beta", "gamma", "delta", "epsilon", "eta", "theta", "kappa", "lambda",
             "mu", "nu", "rho", "sigma", "tau", "phi", "omega"}
    for name, shape in shapes.items():
        want = 0 if name in greek else 2 if name[0].isupper() else 1
        if len(shape) != want:
            return False
    return True


# ---------------------------------------------------------------- the tests
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_evaluate_matches_numpy(case):
    values = sample(case.shapes, case.domain)
    got = matcalc.evaluate(case.expr, values, shapes=case.shapes)
    close(got, case.f(values), rtol=1e-10, atol=1e-12, what=f"evaluate({case.expr})")


@pytest.mark.parametrize("case,wrt", params("diff"))
def test_diff_matches_fd(case, wrt):
    values = sample(case.shapes, case.domain)
    d = matcalc.diff(case.expr, wrt, shapes=case.shapes)
    got = d.evaluate(values)
    ref = jacobian_fd(rows_1d(fun_of(case.expr, case.shapes)), values, wrt)
    close(got, ref, what=f"d({case.expr})/d{wrt} = {d.text}")
    assert sympy_sizes(d.shape) == ref.shape, f"Derivative.shape {d.shape} vs {ref.shape}"


@pytest.mark.parametrize("case,wrt", params("vjp"))
def test_vjp_matches_fd(case, wrt):
    values = sample(case.shapes, case.domain)
    out = np.asarray(case.f(values))
    G = np.random.default_rng(1).standard_normal(out.shape)
    G = float(G) if out.ndim == 0 else G
    r = matcalc.vjp(case.expr, wrt, upstream="G", shapes=case.shapes)
    got = r.evaluate({**values, "G": G})
    fun = fun_of(case.expr, case.shapes)
    ref = jacobian_fd(lambda v: np.sum(G * fun(v)), values, wrt)
    close(got, ref, what=f"vjp({case.expr}, {wrt}) = {r.text}")
    # the backprop rule's text is an expression in the variables and G
    close(matcalc.evaluate(r.text, {**values, "G": G}, shapes={**case.shapes, "G": _out_dims(case)}),
          got, rtol=1e-9, atol=1e-10, what=f"text of vjp: {r.text}")


def rows_1d(fun):
    """fun with a row-vector value as its 1-D vector: API.md lays out a row output's derivative
    as jax.jacobian does for the function written with 1-D vectors (x.T is x)."""
    def f(v):
        y = np.asarray(fun(v))
        return y.reshape(-1) if y.ndim == 2 and y.shape[0] == 1 else y
    return f


def _out_dims(case):
    return matcalc.parse(case.expr, shapes=case.shapes).expr.shape


@pytest.mark.parametrize("case,wrt", params("hessian", lambda c, w: c.id in SCALAR_CASES))
def test_hessian_matches_fd(case, wrt):
    values = sample(case.shapes, case.domain)
    h = matcalc.hessian(case.expr, wrt, shapes=case.shapes)
    got = h.evaluate(values)
    # second differences of the numpy reference (test_evaluate_matches_numpy ties it to
    # matcalc.evaluate); ~4 * size**2 evaluations, too many to parse the text each time
    ref = hessian_fd(case.f, values, wrt)
    close(got, ref, rtol=H_RTOL, atol=H_ATOL, what=f"hessian({case.expr}, {wrt}) = {h.text}")
    k = int(round(np.sqrt(got.size)))
    flat = got.reshape(k, k)
    scale = max(1.0, float(np.max(np.abs(flat))))
    np.testing.assert_allclose(flat, flat.T, rtol=0, atol=1e-9 * scale, err_msg="hessian not symmetric")
    if got.ndim <= 2:   # scalar or vector variable: the text is the Hessian itself
        close(matcalc.evaluate(h.text, values, shapes=case.shapes), got, rtol=1e-9, atol=1e-10,
              what=f"text of hessian: {h.text}")


def _two_axes(case, wrt):
    return out_ndim(case) + len(case.shapes[wrt]) <= 2


@pytest.mark.parametrize("case,wrt", params("text", _two_axes))
def test_text_round_trip(case, wrt):
    values = sample(case.shapes, case.domain)
    d = matcalc.diff(case.expr, wrt, shapes=case.shapes)
    back = matcalc.evaluate(d.text, values, shapes=case.shapes)
    close(back, d.evaluate(values), rtol=1e-9, atol=1e-10, what=f"text {d.text!r}")


# products of dimensions that naming defaults cannot split: vec(X)ᵀ (B ⊗ A) vec(X) types with A
# n×n and B m×m as well as the other way round, kron(a, b) of length m·n either way
AMBIGUOUS_DEFAULTS = {"kron-quad", "unvec-outer", "unvec-grad"}


@pytest.mark.parametrize("case,wrt", params("text-defaults", lambda c, w: _two_axes(c, w) and fits_defaults(c.shapes)
                                            and c.id not in AMBIGUOUS_DEFAULTS))
def test_text_round_trip_defaults(case, wrt):
    """With shapes=None (naming defaults and inference) the derivative and its text agree with FD."""
    values = sample(case.shapes, case.domain)
    d = matcalc.diff(case.expr, wrt)
    got = d.evaluate(values)
    close(got, jacobian_fd(rows_1d(fun_of(case.expr, None)), values, wrt), what=f"defaults: {d.text}")
    back = rows_1d(lambda v: matcalc.evaluate(d.text, v))(values) if got.ndim == 1 else matcalc.evaluate(d.text, values)
    close(back, got, rtol=1e-9, atol=1e-10, what=f"text {d.text!r} (shapes=None)")


# ---------------------------------------------------------------- layouts
LAYOUT_CASES = [
    # id, expr, wrt, shapes, kinds  (out rank, wrt rank)
    ("scalar-by-scalar", "alpha ** 2 * beta", "alpha", {"alpha": S, "beta": S}),
    ("scalar-by-vector", "sum(exp(x) * y)", "x", {"x": N, "y": N}),
    ("scalar-by-matrix", "a.T @ X @ b", "X", {"a": M, "X": MN, "b": N}),
    ("scalar-by-matrix-tr", "tr(A @ X)", "X", {"A": NM, "X": MN}),
    ("vector-by-vector", "tanh(A @ x)", "x", {"A": MN, "x": N}),
    ("vector-by-vector-sq", "softmax(x)", "x", {"x": N}),
    ("vector-by-scalar", "alpha * x", "alpha", {"alpha": S, "x": M}),
    ("matrix-by-scalar", "exp(alpha * X)", "alpha", {"alpha": S, "X": MN}),
]


def _layout_expected(jac, out_nd, wrt_nd, layout):
    if layout == "numerator" and out_nd == 0 and wrt_nd == 2:
        return jac.T
    if layout == "denominator" and out_nd == 1 and wrt_nd == 1:
        return jac.T
    return jac


@pytest.mark.parametrize("layout", ["mixed", "numerator", "denominator"])
@pytest.mark.parametrize("lc", LAYOUT_CASES, ids=[c[0] for c in LAYOUT_CASES])
def test_layouts(lc, layout):
    _, expr, wrt, shapes = lc
    values = sample(shapes)
    fun = fun_of(expr, shapes)
    jac = jacobian_fd(fun, values, wrt)
    out_nd = np.ndim(fun(values))
    wrt_nd = len(shapes[wrt])
    expected = _layout_expected(jac, out_nd, wrt_nd, layout)
    d = matcalc.diff(expr, wrt, shapes=shapes, layout=layout)
    got = d.evaluate(values)
    close(got, expected, what=f"{layout}: {d.text}")
    assert sympy_sizes(d.shape) == expected.shape, f"{layout}: Derivative.shape {d.shape}"
    back = matcalc.evaluate(d.text, values, shapes=shapes)
    close(back, got, rtol=1e-9, atol=1e-10, what=f"{layout} text {d.text!r}")


def test_layout_shapes_symbolic():
    """The documented shapes, as sympy dimensions."""
    m, n = (sympy.Symbol(s, positive=True, integer=True) for s in "mn")
    d = lambda e, w, s, lay: matcalc.diff(e, w, shapes=s, layout=lay).shape  # noqa: E731
    s1 = {"a": M, "X": MN, "b": N}
    assert d("a.T @ X @ b", "X", s1, "mixed") == (m, n)
    assert d("a.T @ X @ b", "X", s1, "numerator") == (n, m)
    assert d("a.T @ X @ b", "X", s1, "denominator") == (m, n)
    s2 = {"A": MN, "x": N}
    assert d("A @ x", "x", s2, "mixed") == (m, n)
    assert d("A @ x", "x", s2, "numerator") == (m, n)
    assert d("A @ x", "x", s2, "denominator") == (n, m)
    s3 = {"x": N, "y": N}
    for lay in ("mixed", "numerator", "denominator"):
        assert d("dot(x, y)", "x", s3, lay) == (n,)


# ---------------------------------------------------------------- absent variables
ABSENT = [
    # expr, wrt, shapes
    ("sum(x)", "y", {"x": N, "y": M}),
    ("alpha * beta", "gamma", {"alpha": S, "beta": S, "gamma": S}),
    ("x", "y", {"x": N, "y": M}),
    ("x", "alpha", {"x": N, "alpha": S}),
    ("sum(X)", "W", {"X": MN, "W": NK}),
    ("X", "alpha", {"X": MN, "alpha": S}),
    ("X @ w", "b", {"X": MN, "w": N, "b": K}),
    ("X * Y", "W", {"X": MN, "Y": MN, "W": NK}),
    ("tr(X)", "alpha", {"X": NN, "alpha": S}),
    ("alpha * x", "Y", {"alpha": S, "x": N, "Y": MN}),
]


@pytest.mark.parametrize("expr,wrt,shapes", ABSENT, ids=[f"{e}-d{w}" for e, w, _ in ABSENT])
def test_absent_variable_gives_zeros(expr, wrt, shapes):
    values = sample(shapes)
    out_shape = np.shape(matcalc.evaluate(expr, values, shapes=shapes))
    wrt_shape = concrete(shapes[wrt])
    d = matcalc.diff(expr, wrt, shapes=shapes)
    got = d.evaluate(values)
    assert got.shape == out_shape + wrt_shape
    assert np.all(got == 0)
    assert sympy_sizes(d.shape) == out_shape + wrt_shape
    if len(out_shape) + len(wrt_shape) <= 2:
        back = matcalc.evaluate(d.text, values, shapes=shapes)
        close(back, got, what=f"text {d.text!r}")
    G = np.ones(out_shape)
    r = matcalc.vjp(expr, wrt, shapes=shapes)
    gv = r.evaluate({**values, "G": float(G) if G.ndim == 0 else G})
    assert gv.shape == wrt_shape and np.all(gv == 0)
    if out_shape == ():
        h = matcalc.hessian(expr, wrt, shapes=shapes).evaluate(values)
        assert h.shape == wrt_shape + wrt_shape and np.all(h == 0)


# ---------------------------------------------------------------- regressions of fixed bugs
@pytest.mark.parametrize("expr,wrt,shapes", [
    ("sum(relu(x))", "x", {"x": N}),
    ("sum(abs(x))", "x", {"x": N}),
    ("dot(relu(x), y)", "x", {"x": N, "y": N}),
    ("sum(relu(X))", "X", {"X": MK}),
])
def test_hessian_through_step_sign(expr, wrt, shapes):
    """Hessians through relu/abs: zero where they exist (once raised MatcalcError)."""
    values = sample(shapes, {wrt: "awayzero"})
    h = matcalc.hessian(expr, wrt, shapes=shapes)
    ref = hessian_fd(fun_of(expr, shapes), values, wrt)
    close(h.evaluate(values), ref, rtol=H_RTOL, atol=H_ATOL)


@pytest.mark.parametrize("expr,wrt,values", [
    ("sum(x)", "x", {"x": np.arange(1.0, 4.0)}),
    ("x + y", "x", {"x": np.arange(1.0, 4.0), "y": np.ones(3)}),
    ("mean(X @ w)", "w", {"X": np.arange(12.0).reshape(4, 3), "w": np.ones(3)}),
    ("X + alpha", "alpha", {"X": np.arange(12.0).reshape(4, 3), "alpha": 2.0}),
    ("dot(x, y) * z", "z", {"x": np.ones(3), "y": np.arange(3.0), "z": np.ones(2)}),
    ("x + ones(n)", "x", {"x": np.ones(3)}),
], ids=["sum-x", "x+y", "mean-Xw", "X+alpha", "dot-z", "x+ones(n)"])
def test_text_round_trip_without_shapes_names_dims(expr, wrt, values):
    """With shapes=None the text must name sizes the re-parse can bind (eye(len(x)) etc.)."""
    d = matcalc.diff(expr, wrt)
    close(matcalc.evaluate(d.text, values), d.evaluate(values), what=f"text {d.text!r}")


# ---------------------------------------------------------------- reduced known bugs
BUG_TEXT_SCALAR_AS_VECTOR = (
    "matcalc bug: a scalar expression that the simplifier leaves with a vector shape (a sum of "
    "scalars plus a zero or cancelling vector, e.g. alpha + beta + zeros(n), beta + v - v) is "
    "printed in .text as the bare scalar, without '* ones(n)': the text re-parses as a scalar "
    "(round trip gives shape () instead of (n,)), and inside softmax it does not parse at all. "
    "The values of d.evaluate are right. Minimal: diff('dot(alpha + beta + zeros(n), u)', 'u')"
    ".text == 'alpha + beta'; diff('sum(softmax(2 + beta + zeros(n)) * u)', 'u').text == "
    "'softmax(beta + 2)' -> ShapeError 'softmax takes a vector, ... but beta + 2 is a scalar'")


@pytest.mark.parametrize("expr,wrt", [
    ("dot(alpha + beta + zeros(n), u)", "u"),
    ("sum(softmax(2 + beta + zeros(n)) * u)", "u"),
    ("sum(softmax(2 + beta + v - v) * u)", "beta"),
])
def test_bug_text_of_scalar_with_vector_shape(expr, wrt):
    shapes = {"alpha": S, "beta": S, "u": N, "v": N}
    values = sample(shapes)
    d = matcalc.diff(expr, wrt, shapes=shapes)
    got = d.evaluate(values)
    close(got, jacobian_fd(fun_of(expr, shapes), values, wrt), what=f"d/d{wrt} {expr}")
    close(matcalc.evaluate(d.text, values, shapes=shapes), got, rtol=1e-9, atol=1e-10,
          what=f"text {d.text!r}")


# found by the property test with det(Z @ ones(m, n)) (rank 1), fixed: the derivative of det is
# written det(X) * inv(X).T, and d.evaluate raised 'inv: Singular matrix' at a singular X, where det
# is smooth and its gradient is the transposed adjugate; now every channel computes det(A) A⁻¹ as
# adj(A) (matcalc/adjugate.py; more channels and ranks in tests/test_adjugate.py)
@pytest.mark.parametrize("expr", ["det(X)", "det(X) ** 2", "det(X @ X)"])
def test_det_gradient_at_singular_matrix(expr):
    shapes = {"X": NN}
    values = {"X": np.diag([1.0, 1.0, 0.0])}
    d = matcalc.diff(expr, "X", shapes=shapes)
    close(d.evaluate(values), jacobian_fd(fun_of(expr, shapes), values, "X"), what=expr)
