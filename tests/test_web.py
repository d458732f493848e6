"""`matcalc serve`'s JSON API and static files, through Starlette's ASGI test client; and one
measurement against a live server: 20 concurrent requests, one pathological, the others prompt."""
from __future__ import annotations

import concurrent.futures
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the web extra (starlette, uvicorn) is not installed")
pytest.importorskip("httpx", reason="httpx (Starlette's test client) is not installed")

with warnings.catch_warnings():  # newer Starlette prefers httpx2 for its test client; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

import matcalc  # noqa: E402
from matcalc.web import service  # noqa: E402
from matcalc.web.app import STATIC, create_app  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app()) as c:
        yield c


def derive(client, **body):
    r = client.post("/api/derive", json=body)
    return r.status_code, r.json()


# ---- derive: modes, layouts, syntaxes, options ----------------------------------------------------

def test_derive_gradient_has_every_piece(client):
    status, out = derive(client, expr="sum((X@w - y)**2)", wrt="w")
    assert status == 200
    d = matcalc.diff("sum((X@w - y)**2)", "w")
    for key, value in d.to_json().items():  # the keys of --format json, same values
        assert out[key] == value
    assert out["latex"] == r"2 X^{T} \left(X w - y\right)" and out["text"] == "2 * X.T @ (X @ w - y)"
    assert out["equation"] == d.equation_latex
    assert out["variable_dims"] == {"X": ["m", "n"], "w": ["n"], "y": ["m"]}
    assert out["steps_latex"] == d.steps_latex and out["steps"][0]["rule"]
    assert out["index"] == d.index_latex
    assert set(out["code"]) == {"numpy", "torch", "jax"} and out["code_errors"] == {}
    assert "import torch" in out["code"]["torch"] and "import jax" in out["code"]["jax"]
    assert out["backprop"] is None and out["mode"] == "diff"
    assert "mathbb{R}^{m \\times n}" in out["shapes_latex"]


def test_derive_passes_the_engines_warnings(client):
    status, out = derive(client, expr="sum(W@x)", wrt="w")
    assert status == 200 and out["warnings"] == matcalc.diff("sum(W@x)", "w").warnings
    assert "did you mean W?" in out["warnings"][0]


def test_derive_vec_jacobian_has_differential_and_backprop(client):
    status, out = derive(client, expr="X@W+b", wrt="W")
    assert status == 200 and out["vec_jacobian"] is True
    assert out["latex"] == r"I_{p} \otimes X" and out["shape"] == ["m", "p", "n", "p"]
    assert out["differential"] == "dF = X @ dW" and out["differential_latex"] == r"\mathrm{d}F = X \mathrm{d}W"
    assert out["backprop"]["text"] == "X.T @ G" and out["backprop"]["upstream"] == "G"


@pytest.mark.parametrize("upstream, text", [(None, "G @ X.T"), ("D", "D @ X.T")])
def test_derive_vjp(client, upstream, text):
    body = dict(expr="W@X", wrt="W", mode="vjp")
    if upstream:
        body["upstream"] = upstream
    status, out = derive(client, **body)
    assert status == 200 and out["kind"] == "vjp" and out["text"] == text
    assert out["upstream"] == (upstream or "G")


def test_derive_hessian(client):
    status, out = derive(client, expr="x.T@A@x", wrt="x", mode="hessian")
    assert status == 200 and out["kind"] == "hessian" and out["text"] == "A + A.T"


@pytest.mark.parametrize("layout", ["mixed", "numerator", "denominator"])
@pytest.mark.parametrize("expr, wrt", [("A@x", "x"), ("tr(A@X)", "X")])
def test_derive_layouts(client, layout, expr, wrt):
    status, out = derive(client, expr=expr, wrt=wrt, layout=layout)
    want = matcalc.diff(expr, wrt, layout=layout)
    assert status == 200 and out["layout"] == layout
    assert out["text"] == want.text and out["shape"] == [str(d) for d in want.dims]


def test_derive_matrixcalculus_syntax(client):
    status, out = derive(client, expr="x'*A*x", wrt="x", syntax="matrixcalculus")
    assert status == 200 and out["text"] == "(A + A.T) @ x" and out["syntax"] == "matrixcalculus"
    status, out = derive(client, expr="x'*A*x", wrt="x", syntax="matrixcalculus", mode="hessian")
    assert status == 200 and out["text"] == "A + A.T"


def test_derive_shapes_symbolic_and_concrete(client):
    status, out = derive(client, expr="X@w", wrt="w", shapes={"X": ["p", "q"]})
    assert status == 200 and out["variable_dims"]["w"] == ["q"]
    status, out = derive(client, expr="sum(X@w)", wrt="w", shapes={"X": [3, 4], "w": [4], "c": []})
    assert status == 200 and out["variable_dims"] == {"X": [3, 4], "w": [4]}
    status, out = derive(client, expr="c*sum(w)", wrt="c", shapes={"c": []})
    assert status == 200 and out["variable_dims"]["c"] == []


def test_derive_facts(client):
    status, out = derive(client, expr="-sum(Y*log(softmax(X@W+b, axis=1)))", wrt="W", assume=["rows_sum_to_one=Y"])
    assert status == 200 and out["text"] == "X.T @ (softmax(X @ W + b, axis=1) - Y)"
    assert out["facts"] == ["rows_sum_to_one=Y"]
    status, out = derive(client, expr="-sum(Y*log(softmax(X@W+b, axis=1)))", wrt="W", assume="rows_sum_to_one=Y")
    assert status == 200 and out["text"] == "X.T @ (softmax(X @ W + b, axis=1) - Y)"
    status, out = derive(client, expr="x.T@A@x", wrt="x", symmetric=["A"])
    assert status == 200 and out["text"] == "2 * A @ x"


def test_check_endpoint(client):
    r = client.post("/api/check", json={"expr": "sum((X@w - y)**2)", "wrt": "w"})
    out = r.json()
    assert r.status_code == 200 and out["ok"] is True and out["max_rel_error"] < 1e-6
    assert out["exact"] is True and "central differences" in out["summary"] and out["sizes"]
    r = client.post("/api/check", json={"expr": "X@W+b", "wrt": "W", "mode": "vjp"})
    assert r.status_code == 200 and r.json()["ok"] is True


@pytest.mark.parametrize("body, words", [
    ({"expr": "sum(X@w)", "wrt": "w", "shapes": {"X": [1000, 1000]}}, "X would hold 1000000"),
    ({"expr": "sum(x)", "wrt": "x", "shapes": {"x": [5000]}}, "x would hold 5000"),
    ({"expr": "sum(exp(x))", "wrt": "x", "mode": "hessian", "shapes": {"x": [200]}}, "at most 100"),
])
def test_check_refuses_sizes_that_would_exhaust_the_server(client, body, words):
    r = client.post("/api/check", json=body)
    assert r.status_code == 400 and r.json()["kind"] == "RequestError" and words in r.json()["error"]
    assert client.post("/api/derive", json=body).status_code == 200  # deriving is symbolic: any size


def test_parse_endpoint(client):
    r = client.post("/api/parse", json={"expr": "X@W+b"})
    out = r.json()
    assert r.status_code == 200 and out["shape"] == ["m", "p"] and "rows_sum_to_one" in out["facts"]
    assert [(v["name"], v["dims"], v["shape"]) for v in out["variables"]] == [
        ("X", ["m", "n"], "m×n"), ("W", ["n", "p"], "n×p"), ("b", ["p"], "p-vector")]
    r = client.post("/api/parse", json={"expr": "x'*A*x", "syntax": "matrixcalculus", "shapes": {"x": ["k"]}})
    assert r.status_code == 200 and r.json()["variables"][1]["dims"] == ["k", "k"]
    r = client.post("/api/parse", json={"expr": "sum(x)", "wrt": "Z"})
    assert r.status_code == 200 and r.json()["variables"][1] == {
        "name": "Z", "latex": "Z", "dims": ["m", "n"], "shape": "m×n", "used": False}
    r = client.post("/api/parse", json={"expr": "X@"})
    assert r.status_code == 400 and r.json()["kind"] == "ParseError" and r.json()["column"] == 3


EXAMPLES = __import__("json").loads((STATIC / "examples.json").read_text())


@pytest.mark.parametrize("ex", EXAMPLES, ids=[e["label"] for e in EXAMPLES])
def test_every_example_of_the_menu_derives_and_checks(client, ex):
    facts = {}
    for name, kind in ex.get("types", {}).items():
        if kind == "symmetric":
            facts.setdefault("symmetric", []).append(name)
        else:
            facts.setdefault("assume", []).append(f"{kind}={name}")
    body = dict(expr=ex["expr"], wrt=ex["wrt"], mode=ex.get("mode", "diff"), syntax=ex.get("syntax", "matcalc"), **facts)
    r = client.post("/api/derive", json=body)
    assert r.status_code == 200, r.json()
    assert not r.json().get("errors"), r.json()["errors"]
    r = client.post("/api/check", json=body)
    assert r.status_code == 200 and r.json()["ok"], r.json()


# ---- errors -------------------------------------------------------------------------------------

def test_parse_error_has_caret_and_column(client):
    status, out = derive(client, expr="sum((X@w - y)**2", wrt="w")
    assert status == 400 and out["kind"] == "ParseError"
    assert out["column"] == 17 and out["caret"] == "sum((X@w - y)**2\n" + " " * 16 + "^"
    assert "column 17" in out["error"] and "\n" not in out["error"]
    status, out = derive(client, expr="x $ y", wrt="x")
    assert status == 400 and out["kind"] == "ParseError" and out["column"] == 3


@pytest.mark.parametrize("body, kind, words", [
    ({"expr": "X@w + z", "wrt": "w", "shapes": {"X": [2, 4], "z": [3]}}, "ShapeError", "X"),
    ({"expr": "x@y", "wrt": "x"}, "ShapeError", "@"),
    ({"expr": "sum(X@w)", "wrt": "1x"}, "MatcalcError", "wrt"),
    ({"expr": "X@w", "wrt": "w", "mode": "hessian"}, "MatcalcError", "scalar"),
    ({"expr": "W@X", "wrt": "W", "mode": "vjp", "upstream": "X"}, "MatcalcError", "upstream"),
    ({"expr": "x.T@A@x", "wrt": "x", "symmetric": ["x"]}, "MatcalcError", "square"),
    ({"expr": "x.T@A@x", "wrt": "x", "assume": ["bogus=A"]}, "MatcalcError", "unknown fact"),
    ({"wrt": "x"}, "RequestError", "expr"),
    ({"expr": "x"}, "RequestError", "wrt"),
    ({"expr": 3, "wrt": "x"}, "RequestError", "string"),
    ({"expr": "x", "wrt": "x", "mode": "grad"}, "RequestError", "mode"),
    ({"expr": "x", "wrt": "x", "layout": "sideways"}, "RequestError", "layout"),
    ({"expr": "x", "wrt": "x", "syntax": "latex"}, "RequestError", "syntax"),
    ({"expr": "x", "wrt": "x", "shapes": {"x": [0]}}, "RequestError", "positive"),
    ({"expr": "x", "wrt": "x", "shapes": {"x": [1, 2, 3]}}, "RequestError", "two"),
    ({"expr": "x", "wrt": "x", "shapes": {"x": [True]}}, "RequestError", "dimension"),
    ({"expr": "x", "wrt": "x", "shapes": ["x"]}, "RequestError", "shapes"),
    ({"expr": "x", "wrt": "x", "symmetric": 5}, "RequestError", "symmetric"),
    ({"expr": "x", "wrt": "x", "eval": "__import__('os')"}, "RequestError", "unknown key"),
])
def test_error_kinds(client, body, kind, words):
    r = client.post("/api/derive", json=body)
    out = r.json()
    assert r.status_code == 400, out
    assert set(out) >= {"error", "kind"} and out["kind"] == kind and words in out["error"]
    assert "Traceback" not in out["error"]


def test_malformed_requests(client):
    r = client.post("/api/derive", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["kind"] == "RequestError"
    r = client.post("/api/derive", content=b"\xff\xfe", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["kind"] == "RequestError"
    r = client.post("/api/derive", json=["x", "x"])
    assert r.status_code == 400 and r.json()["kind"] == "RequestError"
    r = client.post("/api/derive", content=b'{"expr": "x", "wrt": "x"}', headers={"content-type": "text/plain"})
    assert r.status_code == 415 and r.json()["kind"] == "UnsupportedMediaType"
    r = client.get("/api/derive")
    assert r.status_code == 405 and "error" in r.json()
    r = client.post("/api/derive", content=b"[" * 30000 + b"]" * 30000, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["kind"] == "RequestError"
    r = client.get("/static/../app.py")
    assert r.status_code == 404 and "import" not in r.text
    r = client.get("/api/nothing")
    assert r.status_code == 404 and r.json()["kind"] == "NotFound"


def test_body_limit(client):
    big = b'{"expr": "' + b"x+" * 40000 + b'x", "wrt": "x"}'
    r = client.post("/api/derive", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["kind"] == "RequestTooLarge"

    def chunks():  # no Content-Length: the limit holds while reading
        for _ in range(100):
            yield b" " * 1024
    r = client.post("/api/derive", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["kind"] == "RequestTooLarge"
    with TestClient(create_app(max_body=100)) as small:
        r = small.post("/api/derive", json={"expr": "sum(X@w)" + " " * 100, "wrt": "w"})
        assert r.status_code == 413


def test_budget_is_passed_and_budget_error_answers_400(monkeypatch):
    seen = {}

    def fake_diff(expr, wrt, *, shapes=None, layout="mixed", assume=None, symmetric=None, syntax="matcalc",
                  budget=None):
        seen["budget"] = budget
        raise matcalc.BudgetError("the derivation went past its work budget of 0.25 s")
    monkeypatch.setattr(matcalc, "diff", fake_diff)
    with TestClient(create_app(budget=0.25)) as c:
        r = c.post("/api/derive", json={"expr": "sum(X@w)", "wrt": "w"})
    assert seen["budget"] == 0.25
    assert r.status_code == 400 and r.json()["kind"] == "BudgetError"


def test_wall_clock_timeout_answers_503(monkeypatch):
    real = matcalc.diff

    def slow(*args, **kwargs):
        time.sleep(1.5)
        return real(*args, **kwargs)
    monkeypatch.setattr(matcalc, "diff", slow)
    with TestClient(create_app(budget=None, timeout=0.3)) as c:
        t = time.perf_counter()
        r = c.post("/api/derive", json={"expr": "sum(X@w)", "wrt": "w"})
        assert time.perf_counter() - t < 1.4
    assert r.status_code == 503 and r.json()["kind"] == "TimeoutError" and "took too long" in r.json()["error"]


def test_generated_code_is_never_run(client, monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the server compiled generated code")
    monkeypatch.setattr(matcalc.Derivative, "compile", refuse)
    monkeypatch.setattr("builtins.exec", refuse, raising=True)
    status, out = derive(client, expr="tanh(X@W)", wrt="W", mode="vjp")
    assert status == 200 and "def derivative" in out["code"]["numpy"]


def test_code_error_of_one_backend_is_reported_not_raised(client, monkeypatch):
    real = matcalc.Derivative.to_python

    def to_python(self, backend="numpy", name="derivative"):
        if backend == "jax":
            raise matcalc.InternalError("no jax rule for this operator")
        return real(self, backend, name)
    monkeypatch.setattr(matcalc.Derivative, "to_python", to_python)
    status, out = derive(client, expr="sum(exp(X@w))", wrt="w")
    assert status == 200 and set(out["code"]) == {"numpy", "torch"}
    assert out["code_errors"]["jax"]["kind"] == "InternalError"


def test_trusted_hosts():
    app = create_app(allowed_hosts=["127.0.0.1", "localhost"])
    with TestClient(app, base_url="http://attacker.example") as c:
        assert c.post("/api/derive", json={"expr": "x", "wrt": "x"}).status_code == 400
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        assert c.post("/api/derive", json={"expr": "sum(x)", "wrt": "x"}).status_code == 200


# ---- the page and its files ---------------------------------------------------------------------

def test_page_and_static_files(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    html = r.text
    for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert not re.match(r"(https?:)?//", ref), f"the page loads {ref} from the network"
        if ref.startswith("/static/"):
            assert client.get(ref).status_code == 200, ref
    for path in ("/static/app.js", "/static/style.css", "/static/katex/katex.min.js",
                 "/static/katex/katex.min.css", "/static/katex/LICENSE"):
        r = client.get(path)
        assert r.status_code == 200 and r.content, path
    assert "MIT" in client.get("/static/katex/LICENSE").text
    assert client.get("/?expr=sum(x)&wrt=x").status_code == 200


def test_katex_fonts_are_served_locally(client):
    css = client.get("/static/katex/katex.min.css").text
    fonts = sorted(set(re.findall(r"url\((fonts/[^)]+\.woff2)\)", css)))
    assert len(fonts) >= 15
    for font in fonts:
        r = client.get("/static/katex/" + font)
        assert r.status_code == 200 and r.content[:4] == b"wOF2", font
    assert "http" not in client.get("/static/app.js").text.replace("HTTP ${", "")


def test_package_data_covers_every_static_file():
    """What `pip install .` ships: every file under static/ matches a package-data glob."""
    import fnmatch
    import tomllib
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["matcalc.web"]
    files = [p.relative_to(STATIC.parent).as_posix() for p in STATIC.rglob("*") if p.is_file()]
    assert files
    missing = [f for f in files if not any(fnmatch.fnmatch(f, g) and f.count("/") == g.count("/") for g in data)]
    assert not missing, f"not shipped by pip install: {missing}"


def test_cli_diff_does_not_import_the_web_stack():
    code = ("import sys; from matcalc.cli import main; main(['diff', 'X@W+b', 'W', '-q']); "
            "print('starlette' in sys.modules, 'uvicorn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert out.strip().endswith("False False")


def test_cli_serve_help(capsys):
    from matcalc.cli import main
    assert main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--port" in out and "--host" in out and "--open" in out and "127.0.0.1" in out


# ---- a live server: concurrency ----------------------------------------------------------------

NORMAL = [("sum((X@w - y)**2)", "w", "diff"), ("X@W+b", "W", "diff"), ("W@X", "X", "vjp"),
          ("x.T@A@x", "x", "hessian"), ("logdet(X)", "X", "diff"), ("tanh(X@W)", "W", "vjp"),
          ("norm(X@W - Y)**2", "W", "diff"), ("sum(exp(X@w))", "w", "hessian"), ("tr(A@X@B)", "X", "diff"),
          ("softmax(x)", "x", "diff")]


SQUARINGS = "sum(t30) where t1 = X@X; " + "; ".join(f"t{i} = t{i - 1}@t{i - 1}" for i in range(2, 31))


def test_concurrent_requests_stay_prompt_beside_a_pathological_one():
    """20 requests at once against a real server (budget 1 s, so a 2 s wall-clock limit): one is
    the Hessian of a 30-fold squaring (X^(2^30) by `where` bindings), which takes several seconds
    alone (a 100-layer network was the example until derivations and steps became linear in the
    depth: it now answers within the budget); the 19 others answer
    promptly, with the same results as alone, and the pathological one answers with a clear error
    (BudgetError from the engine's budget, or the server's timeout)."""
    from web_server import post, running_server
    bodies = [dict(expr=e, wrt=w, mode=m) for e, w, m in (NORMAL * 2)[:19]]
    alone = {i: service.derive(dict(b))["text"] for i, b in enumerate(bodies)}
    with running_server("--budget", "1") as url:
        post(url, "/api/derive", bodies[0])  # warm up

        def burst(pathological: bool):
            start = time.perf_counter()

            def timed(i, body):
                status, out = post(url, "/api/derive", body)
                return i, status, out, time.perf_counter() - start

            with concurrent.futures.ThreadPoolExecutor(20) as ex:
                slow = ex.submit(timed, -1, {"expr": SQUARINGS, "wrt": "X", "mode": "hessian"}) if pathological else None
                time.sleep(0.05)  # the pathological request is first in line
                fast = [ex.submit(timed, i, b) for i, b in enumerate(bodies)]
                return [f.result() for f in fast], slow.result() if slow else None

        baseline, _ = burst(False)
        results, (_, slow_status, slow_out, slow_time) = burst(True)
    base = sorted(t for *_, t in baseline)
    times = sorted(t for *_, t in results)
    print(f"\n19 requests at once: alone median {base[9]:.2f} s, max {base[-1]:.2f} s; beside a pathological one: "
          f"median {times[9]:.2f} s, max {times[-1]:.2f} s; the pathological one: {slow_status} "
          f"{slow_out.get('kind')} after {slow_time:.2f} s")
    for i, status, out, _ in results + baseline:
        assert status == 200, out
        assert out["text"] == alone[i]
    assert times[-1] < 5.0
    assert slow_status in (400, 503) and slow_out["kind"] in ("BudgetError", "TimeoutError")
