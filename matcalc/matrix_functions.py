"""The matrix functions' constructors: trace, determinant, log-determinant, inverse, norm,
diag, softmax and logsumexp — folding only; their identities (`det(X⁻¹) = 1/det X`, …) are
in `identities.py`. Import them through `matcalc.simplify`, which re-exports them.
"""
from __future__ import annotations

from . import identities as I
from .expr import Node, make
from .simplify import const, eye, is_zero, numel, ones


def tr(a: Node) -> Node:
    if a.op == "eye":
        return numel(a.shape[0])
    if is_zero(a):
        return const(0)
    return I.apply("tr", a) or make("tr", (a,), None, ())


def det(a: Node) -> Node:
    if a.op == "eye":
        return const(1)
    return I.apply("det", a) or make("det", (a,), None, ())


def logdet(a: Node) -> Node:
    if a.op == "eye":
        return const(0)
    return I.apply("logdet", a) or make("logdet", (a,), None, ())


def inv(a: Node) -> Node:
    if a.op == "eye":
        return a
    return I.apply("inv", a) or make("inv", (a,), None, a.shape)


def norm(a: Node) -> Node:
    return I.apply("norm", a) or make("norm", (a,), None, ())


def diag(a: Node) -> Node:
    """diag(vector) is a diagonal matrix; diag(square matrix) the vector of its diagonal."""
    if len(a.shape) == 1:
        if a.op == "ones":
            return eye(a.shape[0])
        if a.op == "vec" and a.args[0].op == "ones":
            return eye(a.shape[0])
        return make("diag", (a,), None, (a.shape[0], a.shape[0]))
    if a.shape == ():
        return a
    if a.op == "eye":
        return ones((a.shape[0],))
    return I.apply("diag", a) or make("diagv", (a,), None, (a.shape[0],))


def softmax(a: Node, axis: int | None = None) -> Node:
    return make("softmax", (a,), axis, a.shape)


def logsumexp(a: Node, axis: int | None = None) -> Node:
    if axis is None:
        return make("logsumexp", (a,), None, ())
    m, n = a.shape
    return make("logsumexp", (a,), axis, (n,) if axis == 0 else (m,))
