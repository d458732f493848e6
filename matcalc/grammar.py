"""Parsing: the Lark grammar in `grammar/matcalc.lark` and a Transformer that builds `Raw` trees.

The parsers come from `standalone_parser.py`, generated from the grammar files by
`python -m matcalc.parser_gen` (lark's standalone LALR runtime and tables: importing it is much
cheaper than importing lark and loading tables, and nothing is written to a cache directory).

A `Raw` tree is the syntax as written (with source spans for error messages); `shapes.py`
types it and `build.py` turns it into the interned expression graph.
"""
from __future__ import annotations

import re

from . import standalone_parser
from .errors import MatcalcError, ParseError, caret, position
from .records import Record
from .standalone_parser import (Lark, Token, Transformer, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput,
                                UnexpectedToken, VisitError)

#: Limits that bound the work done on one input; raise them if you need bigger expressions.
LIMITS = {"max_length": 100_000, "max_depth": 2000, "max_tokens": 50_000, "max_name_length": 256}


def check_name_length(name: str, what: str, where: str = "") -> None:
    """A name longer than LIMITS['max_name_length'] is refused: every text naming it must still
    fit in LIMITS['max_length'] and parse back."""
    if len(name) > LIMITS["max_name_length"]:
        raise ParseError(f"{what} {name[:20]}…{where} has {len(name)} characters; a name has at most "
                         f"{LIMITS['max_name_length']} (matcalc.grammar.LIMITS['max_name_length'])")
_TOKEN = re.compile(r"[A-Za-z0-9_.]+|\*\*|\S")  # about one match per token, to count them fast


class Raw(Record):
    """A node of the parsed syntax: `op` is a grammar rule name, `span` the source columns."""

    op: str
    args: tuple = ()
    attr: object = None
    span: tuple[int, int] = (0, 0)
    depth: int = 1
    kwargs: dict
    height: int = 1  # the height of the tree below (walks bound their recursion by it)

    def __init__(self, op: str, args: tuple = (), attr: object = None, span: tuple[int, int] = (0, 0),
                 depth: int = 1, kwargs: dict | None = None, height: int = 1) -> None:
        self.op, self.args, self.attr, self.span, self.depth, self.height = op, args, attr, span, depth, height
        self.kwargs = {} if kwargs is None else kwargs


#: the input languages (see `parser_gen.SYNTAXES` for their grammar files)
SYNTAXES = tuple(standalone_parser.TABLES)


def _span(children) -> tuple[int, int]:
    """The source columns of a rule's children (they come in source order)."""
    lo = hi = None
    for c in children:
        s = c.span if isinstance(c, Raw) else (c.start_pos, c.end_pos) if isinstance(c, Token) else None
        if s:
            lo = s[0]
            break
    for c in reversed(children):
        s = c.span if isinstance(c, Raw) else (c.start_pos, c.end_pos) if isinstance(c, Token) else None
        if s:
            hi = s[1]
            break
    return (lo or 0, hi or 0)


#: binary operators whose left operand continues a chain (`a + b - c`, `A @ B * c`): a long
#: left-leaning chain is a list, not nesting, so its left operand adds no depth
CHAINS = frozenset(("add", "sub", "matmul", "mcmul", "mul", "div"))


def _node(op, children, attr=None, kwargs=None) -> Raw:
    subs = [c for c in children if isinstance(c, Raw)]
    if op in CHAINS:
        a, b = subs
        depth = a.depth if a.depth > b.depth else b.depth + 1
        height = 1 + (a.height if a.height > b.height else b.height)
    else:
        depth = 1 + max((c.depth for c in subs), default=0)
        height = 1 + max((c.height for c in subs), default=0)
    if depth > LIMITS["max_depth"]:
        raise _TooDeep(_span(children))
    return Raw(op, tuple(subs), attr, _span(children), depth, kwargs or {}, height)


#: a recursive walk over a Raw tree descends at most this many levels (see `staged`)
STAGE = 48


def staged(root: Raw, visit, kids) -> None:
    """Bound the recursion of a recursive walk over a deep Raw tree.

    `kids(r)` yields `(child, step)` pairs: the children the walk recurses into, `step` 1 where
    the walk recurses and 0 where it iterates (the left operand of a chain it walks in a loop).
    `visit` (the walk itself, memoised per node) is called on every node that lies a multiple of
    STAGE levels below `root`, deepest first, with an explicit stack: a recursive call then meets
    an already visited node within STAGE levels, whatever the depth of the input."""
    if root.height <= STAGE:
        return
    order, stack = [], [(root, 0, None, False)]
    while stack:
        r, dist, parent_dist, done = stack.pop()
        if done:
            if r is not root and dist % STAGE == 0 and dist != parent_dist:
                order.append(r)
            continue
        stack.append((r, dist, parent_dist, True))
        for child, step in kids(r):
            stack.append((child, dist + step, dist, False))
    for r in order:
        visit(r)


class _Misplaced(Exception):
    """A call's arguments in a wrong order or repeated: the message and the columns to point at."""

    def __init__(self, msg, span, at=False):
        self.msg, self.span, self.at = msg, span, at


class _TooLarge(Exception):
    def __init__(self, tok):
        self.tok = tok


class _TooDeep(Exception):
    def __init__(self, span):
        self.span = span


class ToRaw(Transformer):
    """Builds `Raw` nodes; each method is named after the grammar rule it handles."""

    def number(self, c):
        tok = c[0]
        value = float(tok)
        if value != value or value in (float("inf"), float("-inf")):
            raise _TooLarge(tok)
        return _node("num", c, attr=value)

    def var(self, c):
        return _node("var", c, attr=str(c[0]))

    def add(self, c):
        return _node("add", c)

    def sub(self, c):
        return _node("sub", c)

    def matmul(self, c):
        return _node("matmul", c)

    def mcmul(self, c):
        return _node("mcmul", c)

    def mcpow(self, c):
        return _node("mcpow", c)

    def mul(self, c):
        return _node("mul", c)

    def div(self, c):
        return _node("div", c)

    def neg(self, c):
        return _node("neg", c)

    def pos(self, c):
        return c[1]

    def paren(self, c):
        inner = c[1]
        inner.span = (c[0].start_pos, c[2].end_pos)
        return inner

    def pow(self, c):
        return _node("pow", c)

    def transpose(self, c):
        return _node("T", c)

    def kwarg(self, c):
        return ("kwarg", str(c[0]), c[2], (c[0].start_pos, c[0].end_pos))

    def args(self, c):
        return [a for a in c if not (isinstance(a, Token) and a.type == "COMMA")]

    def call(self, c):
        name = c[0]
        arglist = c[2] if isinstance(c[2], list) else []
        pos, kw, kw_spans = [], {}, {}
        for a in arglist:
            if isinstance(a, tuple):
                if a[1] in kw:
                    raise _Misplaced(f"{name}(): keyword '{a[1]}' given twice", a[3], True)
                kw[a[1]] = a[2]
                kw_spans[a[1]] = a[3]
            else:
                if kw:
                    raise _Misplaced(f"{name}(): a positional argument follows a keyword argument", a.span)
                pos.append(a)
        node = _node("call", [name, *pos, *kw.values(), c[-1]], attr=str(name), kwargs=kw)
        node.args = tuple(pos)
        node.name_span = (name.start_pos, name.end_pos)
        node.kwarg_spans = kw_spans
        return node

    def binding(self, c):
        return (str(c[0]), c[2], (c[0].start_pos, c[0].end_pos))

    def program(self, c):
        body = c[0]
        binds = [b for b in c[1:] if isinstance(b, tuple)]
        if not binds:
            return body
        return Raw("where", (body,), tuple(binds), body.span, body.depth,
                   height=1 + max(body.height, *(b[1].height for b in binds)))


_PARSERS: dict[str, Lark] = {}


def _parser(syntax: str = "matcalc") -> Lark:
    """The LALR parser of a syntax, loaded from the generated tables once per process."""
    p = _PARSERS.get(syntax)
    if p is None:
        p = _PARSERS[syntax] = standalone_parser.load(syntax, transformer=ToRaw())
    return p


_OPERAND_WORDS = {"LPAR": "'('", "MINUS": "'-'", "NAME": "a name", "NUMBER": "a number"}
_OPERATORS = ("+", "-", "*", "/", "@", "**", ".*", "./", "^", ".^")
_AFTER = ((".T", "'.T'"), ("'", "\"'\""), (")", "')'"), (",", "','"), (";", "';'"), ("=", "'='"))


def _expected(exp, syntax: str = "matcalc") -> str:
    """', expected …' for the tokens the parser accepts (lark's terminal names made readable)."""
    exp = set(exp)
    if not exp:
        return ""
    if "NAME" in exp or "NUMBER" in exp:  # an operand is missing
        return ", expected " + " or ".join(sorted(w for t, w in _OPERAND_WORDS.items() if t in exp))
    if exp <= {"NAME", "EQUAL", "$END"} or exp == {"EQUAL"}:
        return ", expected " + " or ".join(sorted({"NAME": "a name", "EQUAL": "'='", "$END": "the end"}[t]
                                                  for t in exp))
    symbols = {t.name: t.pattern.value for t in _parser(syntax).terminals if t.pattern.type == "str"}
    shown = {symbols[t] for t in exp if t in symbols}
    parts = []
    ops = [o for o in _OPERATORS if o in shown]
    if ops:
        parts.append(f"an operator ({' '.join(ops)})")
    parts += [w for sym, w in _AFTER if sym in shown]
    if "_WHERE" in exp:
        parts.append("'where'")
    if "$END" in exp:
        parts.append("the end")
    if not parts:
        return ""
    return ", expected " + (", ".join(parts[:-1]) + " or " + parts[-1] if len(parts) > 1 else parts[0])


def parse_raw(text: str, syntax: str = "matcalc") -> Raw:
    """Parse `text` into a `Raw` tree; every failure is a `ParseError` with a caret line."""
    if syntax not in SYNTAXES:
        raise ParseError(f"syntax must be one of {', '.join(SYNTAXES)}, not {syntax!r}")
    if not isinstance(text, str):
        raise ParseError(f"the expression must be a string, not {type(text).__name__}")
    if len(text) > LIMITS["max_length"]:
        raise ParseError(f"the expression has {len(text)} characters; the limit is "
                         f"{LIMITS['max_length']} (matcalc.grammar.LIMITS['max_length'])")
    long_name = re.search(r"(?<![A-Za-z0-9_.])[A-Za-z_][A-Za-z0-9_]{%d,}" % LIMITS["max_name_length"], text)
    if long_name:
        check_name_length(long_name.group(0), "the name", f" at {position(text, long_name.start())}")
    tokens = sum(1 for _ in _TOKEN.finditer(text))
    if tokens > LIMITS["max_tokens"]:  # lark takes ~20 µs a token: bound the time before it starts
        raise ParseError(f"the expression has about {tokens} tokens; the limit is {LIMITS['max_tokens']} "
                         f"(matcalc.grammar.LIMITS['max_tokens'])")
    bad = next((i for i, ch in enumerate(text) if (ord(ch) < 32 and ch not in "\t\n\r")
                or (ord(ch) > 126 and not ch.isspace())), None)
    if bad is not None:
        raise ParseError(f"unexpected character {text[bad]!r} at {position(text, bad)}\n{caret(text, bad)}")
    if not text.strip():
        raise ParseError("the expression is empty")
    try:
        return _parser(syntax).parse(text)
    except UnexpectedInput as e:
        raise _syntax_error(text, e, syntax) from None
    except VisitError as e:
        raise _raw_error(text, e.orig_exc) from None
    except (_TooDeep, _TooLarge, _Misplaced) as e:
        raise _raw_error(text, e) from None
    except RecursionError:
        raise ParseError("the expression nests too deeply") from None


def _syntax_error(text: str, e: UnexpectedInput, syntax: str) -> ParseError:
    """lark's error as a ParseError: where (line and column in a text of several lines), what was
    expected (the tokens the parser accepts there, not its whole LALR state), and a caret."""
    if isinstance(e, UnexpectedCharacters):
        pos = e.pos_in_stream
        return ParseError(f"unexpected character {text[pos]!r} at {position(text, pos)}{habit_hint(text, pos)}\n"
                          f"{caret(text, pos)}")
    expected = getattr(e, "expected", None) or ()
    if isinstance(e, UnexpectedToken):
        try:
            expected = e.interactive_parser.accepts() or expected
        except Exception:  # noqa: BLE001 - only a better list of expected tokens is lost
            pass
    if isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END"):
        pos = len(text.rstrip())
        return ParseError(f"unexpected end of input at {position(text, pos)}{_expected(expected, syntax)}\n"
                          f"{caret(text, pos)}")
    if isinstance(e, UnexpectedToken):
        pos = e.token.start_pos if e.token.start_pos is not None else len(text)
        return ParseError(f"unexpected {str(e.token)!r} at {position(text, pos)}{_expected(expected, syntax)}\n"
                          f"{caret(text, pos, pos + len(str(e.token)))}")
    return ParseError(f"cannot parse the expression: {e}")  # pragma: no cover - other lark input errors


def _raw_error(text: str, inner: BaseException) -> MatcalcError:
    if isinstance(inner, _TooDeep):
        return ParseError(f"the expression nests deeper than {LIMITS['max_depth']} levels "
                          f"(matcalc.grammar.LIMITS['max_depth'])")
    if isinstance(inner, _TooLarge):
        pos = inner.tok.start_pos
        return ParseError(f"the number {inner.tok} is too large at {position(text, pos)}\n"
                          f"{caret(text, pos, pos + len(inner.tok))}")
    if isinstance(inner, _Misplaced):
        where = f" at {position(text, inner.span[0])}" if inner.at else ""
        return ParseError(f"{inner.msg}{where}\n{caret(text, *inner.span)}")
    if isinstance(inner, MatcalcError):
        return inner
    return ParseError(f"cannot parse the expression: {inner}")


#: habits from other languages: the character -> what matcalc writes instead
HABITS = {"^": "** for a power (x**2)", "'": ".T for a transpose"}


def habit_hint(text: str, pos: int) -> str:
    """'; did you mean ...?' when the unexpected character is another language's habit."""
    ch = text[pos] if pos < len(text) else ""
    if ch not in HABITS:
        return ""
    if ch == "'":
        operand = re.search(r"([A-Za-z][A-Za-z0-9_]*|\))\s*$", text[:pos])
        if operand and operand.group(1) != ")":
            return f"; did you mean {operand.group(1)}.T (the transpose)?"
    if ch == "^":
        base = re.search(r"([A-Za-z0-9_.]+|\))\s*$", text[:pos])
        expo = re.match(r"\s*([A-Za-z0-9_.]+)", text[pos + 1:])
        if base and expo and base.group(1) != ")":
            return f"; did you mean {base.group(1)}**{expo.group(1)}?"
    return f"; did you mean {HABITS[ch]}?"


def _distance(a: str, b: str) -> int:
    """Damerau-Levenshtein distance (a swap of neighbours counts one edit)."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


_SYNONYMS = {"transpose": "X.T (write .T after the operand)", "trace": "tr", "identity": "eye",
             "avg": "mean", "average": "mean", "logdeterminant": "logdet", "inner": "dot", "determinant": "det", "inverse": "inv",
             "lse": "logsumexp", "logistic": "sigmoid"}


def suggest(name: str, known) -> str:
    """A '; did you mean ...?' hint for a misspelled function name, or '' (no far-fetched guesses)."""
    low = name.lower()
    targets = {k: k for k in known}
    targets.update(_SYNONYMS)
    if low in targets and low != name:
        return f"; did you mean {targets[low]}?"
    if low in _SYNONYMS:
        return f"; did you mean {_SYNONYMS[low]}?"
    if len(low) < 3:
        return ""
    import difflib
    best = min(targets, key=lambda k: (_distance(low, k), len(k) != len(low), difflib.SequenceMatcher(None, low, k).ratio() * -1))
    if _distance(low, best) <= max(1, len(low) // 3):
        return f"; did you mean {targets[best]}?"
    return ""
