"""Matrix-chain ordering: the cheapest association of a product A1 @ A2 @ … @ Ak.

Generated code multiplies in this order: a product with a vector or an outer product in it
is evaluated matrix-vector first (`inv(S).T @ x @ x.T @ inv(S).T` becomes the outer product of
`inv(S).T @ x` and `x.T @ inv(S).T`: O(n²) instead of O(n³)). Sizes are the factors' known
dimensions; a symbolic dimension counts as SYMBOLIC (large), a vector has one column.
"""
from __future__ import annotations

from .chains import _ends_shape
from .expr import as_2d, dim_factors

SYMBOLIC = 1000   # the assumed size of a dimension known only by name
MAX_DP = 48       # longer chains (O(k³) to order) are folded left to right


def size(d) -> int:
    """The assumed number of entries along a dimension."""
    k = 1
    for f in dim_factors(d):
        k *= f if isinstance(f, int) else SYMBOLIC
    return k


def product_shape(a: tuple, b: tuple) -> tuple:
    """The matcalc shape of a @ b (a scalar is 1×1, a column vector n×1, a row 1×n)."""
    if a == () or b == ():  # a 1×1 factor: (n×1)(1×1) is a column, (1×1)(1×n) a row
        return b if a == () else a
    return _ends_shape(a, b, as_2d(a)[0], as_2d(b)[1])


def best_order(shapes: list[tuple]):
    """The cheapest association as a tree (an index, or a pair of trees); None when folding left
    to right is as cheap (or the chain is too long to order)."""
    k = len(shapes)
    if k < 3 or k > MAX_DP:
        return None
    dims = [size(as_2d(s)[0]) for s in shapes] + [size(as_2d(shapes[-1])[1])]
    cost = [[0] * k for _ in range(k)]
    split = [[0] * k for _ in range(k)]
    for span in range(1, k):
        for i in range(k - span):
            j = i + span
            best, arg = None, j - 1
            for m in range(j - 1, i - 1, -1):  # ties go to the left fold: ((a b) c)
                c = cost[i][m] + cost[m + 1][j] + dims[i] * dims[m + 1] * dims[j + 1]
                if best is None or c < best:
                    best, arg = c, m
            cost[i][j], split[i][j] = best, arg

    def tree(i: int, j: int):
        if i == j:
            return i
        m = split[i][j]
        return (tree(i, m), tree(m + 1, j))
    left_fold = sum(dims[0] * dims[m + 1] * dims[m + 2] for m in range(k - 1))
    return None if cost[0][k - 1] >= left_fold else tree(0, k - 1)
