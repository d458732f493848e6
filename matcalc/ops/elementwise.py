"""Element-wise functions, one line each: f'(x), numpy, sympy, LaTeX, and what differs from the
defaults (code `{ns}.name(x)` on every backend, unicode the name, any real argument)."""
from __future__ import annotations

from .lazy_numpy import np

from ..simplify import add, const, div, fn as F, mul, neg, pow_, sub
from .registry import elementwise

ONE, TWO, HALF, ZERO = const(1), const(2), const(0.5), const(0)

_INF = float("inf")


def _sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


def _step(x):
    return (np.asarray(x) > 0).astype(float)


def _rsqrt(u):
    return pow_(F("sqrt", u), const(-1))


elementwise("exp", bounds=(0.0, _INF), d=lambda x: F("exp", x), np=np.exp, sp="exp", latex=r"\exp", inverse="log")
elementwise("log", d=lambda x: pow_(x, const(-1)), np=np.log, sp="log", latex=r"\log", domain="positive", inverse="exp")
elementwise("sin", bounds=(-1.0, 1.0), d=lambda x: F("cos", x), np=np.sin, sp="sin", latex=r"\sin")
elementwise("cos", bounds=(-1.0, 1.0), d=lambda x: neg(F("sin", x)), np=np.cos, sp="cos", latex=r"\cos")
elementwise("tan", d=lambda x: add(ONE, pow_(F("tan", x), TWO)), np=np.tan, sp="tan", latex=r"\tan")
elementwise("tanh", bounds=(-1.0, 1.0), d=lambda x: sub(ONE, pow_(F("tanh", x), TWO)), np=np.tanh, sp="tanh", latex=r"\tanh")
elementwise("sigmoid", bounds=(0.0, 1.0), d=lambda x: mul(F("sigmoid", x), sub(ONE, F("sigmoid", x))), np=_sigmoid,
            sp=lambda s, x: 1 / (1 + s.exp(-x)), latex=r"\sigma", unicode="σ",
            code={"numpy": "_sigmoid({0})", "torch": "torch.sigmoid({0})", "jax": "jax.nn.sigmoid({0})"})
elementwise("relu", bounds=(0.0, _INF), d=lambda x: F("step", x), np=lambda x: np.maximum(x, 0.0), sp=lambda s, x: s.Max(x, 0),
            latex=r"\operatorname{relu}", code={"numpy": "{ns}.maximum({0}, 0.0)", "torch": "torch.relu({0})"},
            idempotent=True)
elementwise("abs", bounds=(0.0, _INF), d=lambda x: F("sign", x), np=np.abs, sp="Abs", latex=r"\left|{0}\right|", idempotent=True)
elementwise("sqrt", bounds=(0.0, _INF), d=lambda x: div(HALF, F("sqrt", x)), np=np.sqrt, sp="sqrt", latex=r"\sqrt{{{0}}}", index=r"\sqrt",
            domain="positive")
elementwise("softplus", bounds=(0.0, _INF), d=lambda x: F("sigmoid", x), np=lambda x: np.logaddexp(0.0, x),
            sp=lambda s, x: s.log(1 + s.exp(x)), latex=r"\operatorname{softplus}",
            code={"numpy": "{ns}.logaddexp(0.0, {0})", "torch": "torch.nn.functional.softplus({0})",
                  "jax": "jax.nn.softplus({0})"})
elementwise("sign", bounds=(-1.0, 1.0), d=lambda x: mul(ZERO, x), np=np.sign, sp="sign", latex=r"\operatorname{sign}", idempotent=True)
elementwise("step", bounds=(0.0, 1.0), d=lambda x: mul(ZERO, x), np=_step, sp=lambda s, x: s.Heaviside(x, 0), latex=r"\operatorname{step}",
            code={"numpy": "(({0}) > 0) * 1.0", "torch": "(({0}) > 0).to(torch.float64)"}, idempotent=True)
elementwise("arcsin", d=lambda x: _rsqrt(sub(ONE, pow_(x, TWO))), np=np.arcsin, sp="asin", latex=r"\arcsin", domain="unit")
elementwise("arccos", d=lambda x: neg(_rsqrt(sub(ONE, pow_(x, TWO)))), np=np.arccos, sp="acos", latex=r"\arccos", domain="unit")
elementwise("arctan", d=lambda x: pow_(add(ONE, pow_(x, TWO)), const(-1)), np=np.arctan, sp="atan", latex=r"\arctan")
elementwise("sinh", d=lambda x: F("cosh", x), np=np.sinh, sp="sinh", latex=r"\sinh")
elementwise("cosh", bounds=(1.0, _INF), d=lambda x: F("sinh", x), np=np.cosh, sp="cosh", latex=r"\cosh")
elementwise("arcsinh", d=lambda x: _rsqrt(add(pow_(x, TWO), ONE)), np=np.arcsinh, sp="asinh", latex=r"\operatorname{arcsinh}")
elementwise("log1p", d=lambda x: pow_(add(ONE, x), const(-1)), np=np.log1p, sp=lambda s, x: s.log(1 + x), latex=r"\log\left(1 + {0}\right)", domain="positive")
elementwise("expm1", d=lambda x: F("exp", x), np=np.expm1, sp=lambda s, x: s.exp(x) - 1, latex=r"\left(e^{{{0}}} - 1\right)")
