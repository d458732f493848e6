"""`np` for the operator declarations without importing numpy: `np.tanh` is a stand-in that
imports numpy on its first call, so a command that only prints text (`--format text`) never
loads numpy, while every declaration still names its numpy function in one line."""
from __future__ import annotations


class _Attr:
    """numpy.<name>, resolved on first use."""

    __slots__ = ("name", "real")

    def __init__(self, name: str):
        self.name, self.real = name, None

    def resolve(self):
        if self.real is None:
            import numpy
            self.real = getattr(numpy, self.name)
        return self.real

    def __call__(self, *args, **kwargs):
        return self.resolve()(*args, **kwargs)

    def __getattr__(self, attr: str):  # np.linalg.inv
        return getattr(self.resolve(), attr)


class _Numpy:
    def __getattr__(self, name: str) -> _Attr:
        if name.startswith("__"):
            raise AttributeError(name)
        got = _Attr(name)
        setattr(self, name, got)
        return got


np = _Numpy()
