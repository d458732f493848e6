"""`Record`: a light stand-in for `@dataclass(eq=False)` on the classes matcalc builds while it is
imported (operator declarations, identities, parse results, syntax nodes).

`dataclasses` writes each class's `__init__` and `__repr__` as source text and compiles it at
every start, about half a millisecond a class; a record shares one `__init__` (the fields in
order, positional or by keyword, with the class's defaults) and one `__repr__` (like a
dataclass's). Equality is identity, as with `eq=False`. A field whose default must be fresh for
every instance names its factory in `_factories`; a field left out of the repr is listed in
`_hidden`.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar


class Record:
    """Subclass it and annotate the fields (with their defaults), as for a dataclass."""

    _fields: ClassVar[tuple[str, ...]] = ()
    _defaults: ClassVar[dict[str, Any]] = {}
    _factories: ClassVar[dict[str, Callable[[], Any]]] = {}
    _hidden: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        fields: list[str] = []
        for klass in reversed(cls.__mro__):
            for name, kind in klass.__dict__.get("__annotations__", {}).items():
                if name not in fields and not str(kind).startswith("ClassVar"):
                    fields.append(name)
        cls._fields = tuple(fields)
        cls._defaults = {n: cls.__dict__[n] for n in fields if n in cls.__dict__}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        fields = self._fields
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__}() takes {len(fields)} arguments, {len(args)} given")
        unknown = set(kwargs).difference(fields)
        if unknown:
            raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {sorted(unknown)[0]!r}")
        values = self.__dict__
        for name, value in zip(fields, args):
            if name in kwargs:
                raise TypeError(f"{type(self).__name__}() got multiple values for argument {name!r}")
            values[name] = value
        for name in fields[len(args):]:
            if name in kwargs:
                values[name] = kwargs[name]
            elif name in self._factories:
                values[name] = self._factories[name]()
            elif name in self._defaults:
                values[name] = self._defaults[name]
            else:
                raise TypeError(f"{type(self).__name__}() missing required argument {name!r}")

    def __repr__(self) -> str:
        values = vars(self)
        shown = ", ".join(f"{n}={values[n]!r}" for n in self._fields if n not in self._hidden)
        return f"{type(self).__qualname__}({shown})"
