"""Generated code for products: the cheapest association, a sum factor distributed when that is
cheaper, diag / Kronecker / commutation factors applied (never built to be multiplied).

Costs are multiply-add counts in the symbolic dimensions (matcalc.cost); a choice that depends on
sizes known only at run time (`U @ V.T @ V`: left to right when U has few rows, `U @ (V.T @ V)`
when V has few columns) becomes an `if` on the arrays' shapes in the generated code, at most
`MAX_BRANCH_DEPTH` choices deep (deeper ones take the estimate with every size `chain.SYMBOLIC`).
"""
from __future__ import annotations

import re

from .chain import SYMBOLIC, best_order, product_shape
from .bounds import entry_range
from .cost import Poly, choose, left_tree, matmul_cost, size, three, tree_cost
from .expr import as_2d

MAX_BRANCH_DEPTH = 2
_STRUCTURED = ("diag", "kron", "K")


class Products:
    """The product methods of CodeGen (matcalc.codegen)."""

    # ---- the product, its factors folded outward from an ordinary one
    def matmul(self, fs) -> str:
        """A product: runs of ordinary factors in their cheapest association (matcalc.chain);
        a sum factor distributed when cheaper; diag / kron / commutation factors applied."""
        split = self.distributed(fs)
        return split if split is not None else self.matmul_plain(fs)

    def matmul_plain(self, fs) -> str:
        """The product without distributing sums: diag / kron / K factors are applied to the
        first ordinary factor (folding outward from it); a product of such factors alone is
        built as one result-sized array (mixed products, permuted Kronecker products)."""
        pieces, run = [], []
        for f in list(fs) + [None]:
            if f is None or f.op in _STRUCTURED:
                pieces.extend([self.chain(run)] if len(run) > 1 else run)
                pieces, run = pieces + ([f] if f is not None else []), []
            else:
                run.append(f)
        pieces = self.combine_structured(self.gram(pieces))
        if len(pieces) == 1:
            return self.code[id(pieces[0])]
        j = next((i for i, p in enumerate(pieces) if p.op not in _STRUCTURED), 0)
        acc, acc_node, acc_shape = self.c(pieces[j]), pieces[j], pieces[j].shape
        for f in pieces[j + 1:]:
            acc = self.apply(acc, acc_node, acc_shape, f)
            acc_node, acc_shape = None, product_shape(acc_shape, f.shape)
        for f in reversed(pieces[:j]):
            acc = self.apply_left(f, acc if acc_node is None else self.c(acc_node), acc_shape)
            acc_node, acc_shape = None, product_shape(f.shape, acc_shape)
        return acc

    def apply_left(self, f, acc: str, acc_shape: tuple) -> str:
        """f @ acc for a diag / kron / commutation factor f and a computed product acc."""
        operand = acc if _is_operand(acc) else f"({acc})"
        if len(f.shape) == 1:  # a column (Kronecker or not) times a row: an outer product
            return self.outer(self.code[id(f)], operand)
        if f.op == "diag":
            v = self.c(f.args[0])
            return f"{v}[:, None] * {operand}" if len(acc_shape) == 2 and acc_shape[0] != 1 else f"{v} * {operand}"
        if f.op == "K":
            p, q = f.attr
            return f"{self.helper('_comm_apply')}({self.dim(p)}, {self.dim(q)}, {acc})"
        a, b = self.kron_parts(f)
        return f"{self.helper('_kron_apply')}({a}, {b}, {acc})"

    def gram(self, pieces: list) -> list:
        """Bᵀ diag(v) B with v ≥ 0 whatever the values (softmax, exp, squares, …) as the Gram
        matrix of sqrt(v) B: numpy multiplies an array by its own transpose as a symmetric
        rank-k update, half the work of a matrix product."""
        if self.backend != "numpy" or len(pieces) < 3:
            return pieces
        out: list = []
        for p in pieces:
            out.append(p)
            if len(out) >= 3 and out[-2].op == "diag" and out[-3].op == "T" and out[-3].args[0] is out[-1] \
                    and len(out[-1].shape) == 2 and not _is_row(out[-1].shape) and self.nonneg(out[-2].args[0]):
                b, dg, _ = out.pop(), out.pop(), out.pop()
                out.append(self.piece(f"{self.helper('_gram')}({self.code[id(b)]}, {self.code[id(dg.args[0])]})",
                                      (b.shape[1], b.shape[1])))
        return out

    def nonneg(self, v) -> bool:
        """Whether every entry of v is ≥ 0 whatever the variables' values (matcalc.bounds)."""
        return entry_range(v, self.signs)[0] >= 0

    def kron_parts(self, f) -> tuple[str, str]:
        """The 2-D codes of a Kronecker factor's two operands."""
        if isinstance(f, _Kron):
            return f.a, f.b
        return self.as2d(f.args[0]), self.as2d(f.args[1])

    # ---- products of structured factors alone
    def combine_structured(self, pieces: list) -> list:
        """Neighbouring structured factors as one: (A ⊗ B)(C ⊗ D) = AC ⊗ BD when the shapes
        agree; and when nothing ordinary is left to apply them to, (A ⊗ B) diag(v) (C ⊗ D),
        (A ⊗ B) K and K (A ⊗ B) built directly at the result's size."""
        out: list = []
        for p in pieces:
            out.append(p)
            while len(out) >= 2 and _is_kron(out[-2]) and _is_kron(out[-1]) and _compatible(out[-2], out[-1]):
                q = out.pop()
                out.append(self.mixed_product(out.pop(), q))
        if any(p.op not in _STRUCTURED for p in out):
            return out
        done: list = []
        for p in out:
            done.append(p)
            if len(done) >= 3 and _is_kron(done[-3]) and done[-2].op == "diag" and _is_kron(done[-1]) \
                    and _compatible(done[-3], done[-1]):
                r, dg, l_ = done.pop(), done.pop(), done.pop()
                (a, b), (c, d) = self.kron_parts(l_), self.kron_parts(r)
                done.append(self.piece(f"{self.helper('_kron_diag_kron')}({a}, {b}, {self.c(dg.args[0])}, {c}, {d})",
                                       product_shape(l_.shape, r.shape)))
            elif len(done) >= 2 and _is_kron(done[-2]) and done[-1].op == "K":
                k, kr = done.pop(), done.pop()
                a, b = self.kron_parts(kr)
                done.append(self.piece(f"{self.helper('_kron_comm')}({a}, {b}, {self.dim(k.attr[0])}, "
                                       f"{self.dim(k.attr[1])})", product_shape(kr.shape, k.shape)))
            elif len(done) >= 2 and done[-2].op == "K" and _is_kron(done[-1]):
                kr, k = done.pop(), done.pop()
                a, b = self.kron_parts(kr)
                done.append(self.piece(f"{self.helper('_comm_kron')}({self.dim(k.attr[0])}, "
                                       f"{self.dim(k.attr[1])}, {a}, {b})", product_shape(k.shape, kr.shape)))
        return done

    def mixed_product(self, left, right) -> "_Kron":
        """(A ⊗ B)(C ⊗ D) as AC ⊗ BD (an identity factor dropped)."""
        (a, b), (c, d) = self.kron_parts(left), self.kron_parts(right)
        (la, lb), (ra, rb) = _kron_nodes(left), _kron_nodes(right)
        k = _Kron(_times(a, la, c, ra), _times(b, lb, d, rb), product_shape(left.shape, right.shape),
                  tuple((as_2d(_kshape(left, i))[0], as_2d(_kshape(right, i))[1]) for i in (0, 1)))
        built = (f"torch.kron(({k.a}).contiguous(), ({k.b}).contiguous())" if self.backend == "torch"
                 else f"{self.b['ns']}.kron({k.a}, {k.b})")
        self.pieces.append(k)
        self.code[id(k)] = built if len(k.shape) == 2 and k.shape[0] != 1 else f"{built}.reshape(-1)"
        return k

    def piece(self, code: str, shape: tuple) -> "_Piece":
        """A computed array used as one ordinary factor of the product."""
        p = _Piece(shape)
        self.pieces.append(p)  # kept alive: its id keys self.code
        self.code[id(p)] = code
        return p

    # ---- a sum factor distributed
    def distributed(self, fs) -> str | None:
        """L @ (T1 + T2 + …) @ R as L @ T1 @ R + L @ T2 @ R when that is cheaper: always when every
        term is diagonal, rank one or Kronecker-structured (applied instead of built), and the
        product is a matrix sum times a vector; otherwise when the cost model says so
        (`(T - U @ V.T) @ V` as `T @ V - U @ (V.T @ V)`: no m×n temporary when V has few columns).
        Scalar factors of a term stay in front of its product."""
        for i, f in enumerate(fs):
            if f.op != "add" or len(f.shape) != 2 or _is_row(f.shape) or any(t.shape != f.shape for t in f.args):
                continue  # (a term broadcast over the sum is no factor of the product)
            terms = [_scalar_and_factor(t) for t in f.args]
            if _always_distribute(fs, i, terms):
                self.hoist([g for k, g in enumerate(fs) if k != i])
                return self.emit_distributed(fs, i, terms)
            lists = [[*fs[:i], *self.term_factors(t), *fs[i + 1:]] for _, t in terms]
            keep_cost, costs = self.product_cost(fs), [self.product_cost(lst) for lst in lists]
            if keep_cost is None or any(c is None for c in costs):
                continue
            out = product_shape(product_shape(fs[0].shape, f.shape) if i else f.shape, fs[-1].shape) \
                if len(fs) > 1 else f.shape
            keep = keep_cost if _is_temp(self.code[id(f)]) else keep_cost + self.sum_cost(f, terms)
            dist = Poly(mins=()) + size(out) * Poly({(): len(terms) - 1})
            for c in costs:
                dist = dist + c
            choice = self.decide(keep, dist)
            if choice is True:
                continue
            self.hoist([g for k, g in enumerate(fs) if k != i])
            if choice is False:
                return self.emit_distributed(fs, i, terms)
            return self.runtime_choice(keep, dist, lambda: self.matmul_plain(fs),
                                       lambda: self.emit_distributed(fs, i, terms))
        return None

    def emit_distributed(self, fs, i: int, terms) -> str:
        parts = []
        for c, t in terms:
            inner = self.matmul([*fs[:i], *self.term_factors(t), *fs[i + 1:]])
            if c is not None and c.op == "const" and float(c.attr) == -1.0 and parts:
                parts.append(f"- ({inner})")
            else:
                parts.append(("+ " if parts else "") + (f"({inner})" if c is None else f"{self.c(c)} * ({inner})"))
        return " ".join(parts)

    def term_factors(self, t) -> list:
        """A term's factors in a distributed product (a product computed already is one factor)."""
        return list(t.args) if t.op == "matmul" and not _is_temp(self.code[id(t)]) else [t]

    def hoist(self, factors) -> None:
        """Factors repeated in every term of a distributed product are computed once, before."""
        nodes = [a for g in factors for a in (g.args if g.op in ("diag", "kron") else () if g.op == "K" else (g,))]
        for g in nodes:
            code = self.code[id(g)]
            if not re.fullmatch(r"[A-Za-z_]\w*(\.T)?", code):
                self.ntemp += 1
                self.lines.append(f"_t{self.ntemp} = {code}")
                self.undo.append((id(g), code))  # inside a run-time branch: defined in that branch only
                self.code[id(g)] = f"_t{self.ntemp}"

    # ---- costs and choices
    def product_cost(self, fs) -> Poly | None:
        """Multiply-adds of the product as generated: each run of ordinary factors in its order,
        the runs' results multiplied left to right, a diag factor one scaling (None with a
        Kronecker or commutation factor)."""
        if any(f.op in ("kron", "K") for f in fs):
            return None
        total, run, acc, shape = Poly(), [], None, None
        for f in list(fs) + [None]:
            if f is not None:
                shape = f.shape if shape is None else product_shape(shape, f.shape)
            if f is not None and f.op != "diag":
                run.append(f)
                continue
            if run:
                total = total + self.chain_cost([g.shape for g in run])
                r = run[0].shape
                for g in run[1:]:
                    r = product_shape(r, g.shape)
                if acc is not None:
                    total = total + matmul_cost(acc, r)
                acc, run = (r if acc is None else product_shape(acc, r)), []
        n_diag = sum(f.op == "diag" for f in fs)
        return total + size(shape) * Poly({(): n_diag}) if n_diag else total

    def sum_cost(self, f, terms) -> Poly:
        """Multiply-adds of computing a sum of matrices (its products, scalings and additions)."""
        total = size(f.shape) * Poly({(): len(terms) - 1 + sum(c is not None for c, _ in terms)})
        for _, t in terms:
            if t.op == "matmul" and not _is_temp(self.code[id(t)]):
                c = self.product_cost(t.args)
                total = total + (c if c is not None else Poly())
        return total

    def chain_cost(self, shapes: list) -> Poly:
        if len(shapes) < 2:
            return Poly()
        if len(shapes) == 2:
            return matmul_cost(*shapes)
        if len(shapes) == 3:
            left, right = three(shapes)
            choice = self.decide(left, right)
            return left if choice is True else right if choice is False else Poly.min(left, right)
        tree = best_order(shapes)
        return tree_cost(tree, shapes)[0] if tree is not None else tree_cost(left_tree(len(shapes)), shapes)[0]

    def decide(self, a: Poly, b: Poly) -> bool | None:
        """choose(a, b), made now (every size SYMBOLIC) when run-time choices nest too deep."""
        c = choose(a, b)
        if c is None and self.branch_depth >= MAX_BRANCH_DEPTH:
            names = a.names() | b.names()
            env = dict.fromkeys(names, SYMBOLIC)
            return a.value(env) <= b.value(env)
        return c

    def runtime_choice(self, a: Poly, b: Poly, gen_a, gen_b) -> str:
        """Code computing gen_a() when cost a is at most cost b at the arrays' sizes, else gen_b()."""
        name = lambda x: self.dim_names.get(x, x)  # noqa: E731
        cond = f"{a.code(name)} <= {b.code(name)}"
        self.branch_depth += 1
        n0, u0 = len(self.lines), len(self.undo)
        ca = gen_a()
        la = self.lines[n0:]
        del self.lines[n0:]
        self.restore(u0)
        cb = gen_b()
        lb = self.lines[n0:]
        del self.lines[n0:]
        self.restore(u0)
        self.branch_depth -= 1
        if not la and not lb:
            return f"({ca} if {cond} else {cb})"
        self.ntemp += 1
        t = f"_t{self.ntemp}"
        self.lines += [f"if {cond}:", *("    " + ln for ln in la), f"    {t} = {ca}",
                       "else:", *("    " + ln for ln in lb), f"    {t} = {cb}"]
        return t

    def restore(self, mark: int) -> None:
        """Forget the temporaries hoisted since `mark` (they live in a branch that has ended)."""
        while len(self.undo) > mark:
            key, code = self.undo.pop()
            self.code[key] = code

    # ---- pairs and chains of ordinary factors
    def outer(self, a: str, b: str) -> str:
        """outer(a, b); a vector used twice (outer(u, u)) is computed once."""
        if a.strip("()") == b.strip("()") and not _is_name(a.strip("()")):
            self.ntemp += 1
            self.lines.append(f"_t{self.ntemp} = {a.strip('()') if _is_operand(a.strip('()')) else a}")
            a = b = f"_t{self.ntemp}"
        return self.f("outer", a=a, b=b)

    def apply(self, acc: str, acc_node, acc_shape: tuple, f) -> str:
        """acc @ f where acc or f may be a diag / kron / commutation factor (never built)."""
        one_d = _is_row(acc_shape)  # a row times a matrix: a vector-matrix product
        if len(acc_shape) == 1:  # a column times a row (f is 1×k, Kronecker or not): an outer product
            return self.outer(acc, self.code[id(f)])
        if acc_node is not None and acc_node.op == "diag":
            v = self.c(acc_node.args[0])
            return f"{v}[:, None] * {self.c(f)}" if len(f.shape) == 2 and f.shape[0] != 1 else f"{v} * {self.c(f)}"
        if f.op == "diag":
            return f"{acc} * {self.c(f.args[0])}"
        if acc_node is not None and acc_node.op in ("kron", "K") and f.op not in ("K", "kron"):
            return self.apply_left(acc_node, self.code[id(f)], f.shape)
        if f.op == "K":  # M K(p, q) = (K(q, p) Mᵀ)ᵀ: permute, never build K
            p, q = f.attr
            return (f"{self.helper('_comm_apply')}({self.dim(q)}, {self.dim(p)}, {acc})" if one_d else
                    f"{self.helper('_comm_apply')}({self.dim(q)}, {self.dim(p)}, ({acc}).T).T")
        if f.op == "kron":  # M (A ⊗ B) = ((Aᵀ ⊗ Bᵀ) Mᵀ)ᵀ
            a, b = self.kron_parts(f)
            at, bt = f"{a}.T", f"{b}.T"
            return (f"{self.helper('_kron_apply')}({at}, {bt}, {acc})" if one_d else
                    f"{self.helper('_kron_apply')}({at}, {bt}, ({acc}).T).T")
        return self.pair(acc, acc_shape, acc_node, self.c(f), f.shape, f)

    def pair(self, left: str, ls: tuple, ln, right: str, rs: tuple, rn) -> str:
        """left @ right for ordinary factors; `left` is a product-level code (no parentheses
        needed on the left of @), `right` an operand; ln / rn the nodes when they are factors."""
        if ls == () or rs == ():
            return f"{left} * {right}"
        if len(ls) == 1:  # a column times a row: the operands are 1-D in generated code
            return self.outer(left, right)
        if _is_column(ls) and _is_row(rs):  # an m×1 matrix times a row (1-D here): an outer product
            return self.outer(f"({left}).reshape(-1)", right)
        if _is_row(ls) and _is_column(rs):  # a row (1-D here) times an m×1 matrix: a number
            return f"({left}) @ {right}.reshape(-1)"
        if ln is not None and ln.op == "T" and len(ln.args[0].shape) == 2 and ln.args[0].shape[0] != 1:
            if len(rs) == 1:
                return f"{right} @ {self.c(ln.args[0])}"   # Aᵀ x as x @ A: no transpose
            if not _is_row(rs):
                return self.f("tmatmul", a=self.c(ln.args[0]), b=right)
        return f"{left} @ {right}"

    def chain(self, run: list) -> "_Piece":
        """A run of ordinary factors multiplied in the cheapest order, as one factor; three factors
        whose cheapest order depends on sizes known at run time are ordered at run time."""
        shapes = [f.shape for f in run]
        if len(run) == 3:
            left, right = three(shapes)
            choice = self.decide(left, right)
            if choice is None:
                code = self.runtime_choice(left, right, lambda: self.emit_tree(((0, 1), 2), run)[0],
                                           lambda: self.emit_tree((0, (1, 2)), run)[0])
                return self.piece(code, product_shape(product_shape(shapes[0], shapes[1]), shapes[2]))
            tree = None if choice else (0, (1, 2))
        else:
            tree = best_order(shapes)
        if tree is None:
            code, shape, node = self.c(run[0]), run[0].shape, run[0]
            for f in run[1:]:
                code, shape, node = self.pair(code, shape, node, self.c(f), f.shape, f), \
                    product_shape(shape, f.shape), None
        else:
            code, shape, _ = self.emit_tree(tree, run)
        return self.piece(code, shape)

    def emit_tree(self, t, run: list) -> tuple:
        """(code, shape, node or None) of a subtree of an association tree (depth ≤ chain.MAX_DP)."""
        if isinstance(t, int):
            return self.c(run[t]), run[t].shape, run[t]
        lc, ls, ln = self.emit_tree(t[0], run)
        rc, rs, rn = self.emit_tree(t[1], run)
        right = rc if rn is not None else f"({rc})"
        return self.pair(lc, ls, ln, right, rs, rn), product_shape(ls, rs), None


class _Piece:
    """A product computed as one factor of a longer product (a run between special factors)."""

    op = "chain"
    args = ()

    def __init__(self, shape: tuple):
        self.shape = shape


class _Kron:
    """A Kronecker factor made by the mixed-product rule: its operands' 2-D codes and shapes."""

    op = "kron"
    args = ()

    def __init__(self, a: str, b: str, shape: tuple, parts: tuple):
        self.a, self.b, self.shape, self.parts = a, b, shape, parts


def _is_kron(p) -> bool:
    return p.op == "kron"


def _kshape(p, i: int) -> tuple:
    return p.parts[i] if isinstance(p, _Kron) else as_2d(p.args[i].shape)


def _kron_nodes(p) -> tuple:
    return (None, None) if isinstance(p, _Kron) else p.args


def _compatible(left, right) -> bool:
    """Whether (A ⊗ B)(C ⊗ D) = AC ⊗ BD: A's columns are C's rows and B's columns D's rows."""
    return all(as_2d(_kshape(left, i))[1] == as_2d(_kshape(right, i))[0] for i in (0, 1))


def _times(a: str, an, c: str, cn) -> str:
    """The code of a @ c for two 2-D operands; an identity factor is dropped."""
    if an is not None and an.op == "eye":
        return c
    if cn is not None and cn.op == "eye":
        return a
    return f"({a} @ {c})"


def _always_distribute(fs, i: int, terms) -> bool:
    """Every term is diagonal, rank one or Kronecker-structured (each applied to the rest of the
    product costs less than building the sum), or the product is a matrix sum times a vector."""
    structured = all(t.op in ("diag", "kron") or (t.op == "matmul" and (
        any(len(a.shape) == 1 for a in t.args[:-1]) or any(a.op in ("kron", "K") for a in t.args)))
        for _, t in terms)
    return structured or (len(fs) == 2 and i == 0 and len(fs[1].shape) == 1)


def _scalar_and_factor(t) -> tuple:
    """(scalar factor or None, the rest) of a term: c * M with c a scalar node."""
    if t.op == "mul" and len(t.args) == 2:
        a, b = t.args
        if a.shape == () and b.shape != ():
            return a, b
        if b.shape == () and a.shape != ():
            return b, a
    return None, t


def _is_temp(code: str) -> bool:
    return re.fullmatch(r"_t\d+", code) is not None


def _is_name(s: str) -> bool:
    return re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", s) is not None


def _is_operand(s: str) -> bool:
    """Whether generated code `s` binds tighter than any binary operator: a name, a number, a
    call, an attribute or a subscript (binary operators are always written between spaces)."""
    if s.startswith("-") or not s:
        return False
    depth = 0
    for ch in s:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == " " and depth == 0:
            return False
    return True


def _is_row(shape: tuple) -> bool:
    return len(shape) == 2 and shape[0] == 1


def _is_column(shape: tuple) -> bool:
    """An m×1 matrix (keepdims): 2-D in generated code, unlike a vector."""
    return len(shape) == 2 and shape[1] == 1 and shape[0] != 1
