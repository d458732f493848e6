"""The page in a real browser: headless Chromium (Debian's package) driven by selenium, against a
live `matcalc serve` on 127.0.0.1. Skips where chromium, chromedriver or selenium are missing.

`MATCALC_SCREENSHOT=docs/screenshot.png python -m pytest tests/test_browser.py` also writes the
README's screenshot (by default the screenshot goes to a temporary directory)."""
from __future__ import annotations

import os
import shutil
import time
import urllib.parse
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the web extra (starlette, uvicorn) is not installed")
selenium = pytest.importorskip("selenium", reason="selenium is not installed (pip install selenium)")

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

from web_server import running_server  # noqa: E402

CHROMIUM = os.environ.get("MATCALC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = os.environ.get("MATCALC_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"

if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
    pytest.skip(f"no headless browser: needs chromium ({CHROMIUM}) and chromedriver ({DRIVER}); "
                "on Debian: apt-get install chromium chromium-driver", allow_module_level=True)

WAIT = 30


@pytest.fixture(scope="module")
def server():
    with running_server() as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM  # explicit paths: selenium-manager downloads nothing
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1200,1500", "--force-device-scale-factor=1", "--lang=en-US"):
        opts.add_argument(arg)
    drv = webdriver.Chrome(service=Service(DRIVER), options=opts)
    drv.set_page_load_timeout(WAIT)
    yield drv
    drv.quit()


def wait(drv, cond, what: str):
    try:
        return WebDriverWait(drv, WAIT, poll_frequency=0.05).until(lambda d: cond(d))
    except TimeoutException:
        raise AssertionError(f"timed out waiting for {what}") from None


def el(drv, id_: str):
    return drv.find_element(By.ID, id_)


def text_of(drv, id_: str) -> str:
    return drv.execute_script("return document.getElementById(arguments[0]).textContent", id_)


def tex_source(drv, id_: str) -> str:
    """The LaTeX that KaTeX rendered in an element (from its MathML annotation)."""
    return drv.execute_script(
        "const a = document.querySelector('#' + arguments[0] + ' annotation'); return a ? a.textContent : ''", id_)


def type_expr(drv, expr: str, submit: bool = True):
    box = el(drv, "expr")
    box.clear()
    box.send_keys(expr)
    if submit:
        box.send_keys(Keys.ENTER)


def shape_table(drv) -> dict:
    return drv.execute_script(  # in one step: the table is rebuilt as the expression changes
        "const out = {}; for (const r of document.querySelectorAll('#vars tbody tr[data-name]'))"
        " out[r.dataset.name] = r.querySelector('td.shape').textContent; return out")


def wait_text(drv, id_: str, want: str):
    wait(drv, lambda d: want in text_of(d, id_), f"{want!r} in #{id_} (it shows {text_of(drv, id_)!r})")


def test_gradient_typed_by_hand(server, browser):
    drv = browser
    drv.get(server + "/")
    assert drv.switch_to.active_element.get_attribute("id") == "expr"  # the box has the focus
    type_expr(drv, "sum((X@w - y)**2)", submit=False)
    wait(drv, lambda d: set(shape_table(d)) == {"X", "w", "y"}, "the variable table")
    assert shape_table(drv) == {"X": "m×n", "w": "n-vector", "y": "m-vector"}
    drv.find_element(By.ID, "wrt-w").click()
    wait_text(drv, "text-out", "2 * X.T @ (X @ w - y)")
    eq = el(drv, "equation")
    assert eq.find_elements(By.CSS_SELECTOR, ".katex")
    assert tex_source(drv, "equation") == r"\frac{\partial f}{\partial w} = 2 X^{T} \left(X w - y\right)"
    visible = eq.find_element(By.CSS_SELECTOR, ".katex-html").text.replace("\n", "")
    assert "2X" in visible and "(Xw−y)" in visible
    assert "m \\times n" in tex_source(drv, "shapes")
    assert "import numpy as np" in text_of(drv, "code-out")
    drv.find_element(By.CSS_SELECTOR, ".tab[data-backend=torch]").click()
    assert "import torch" in text_of(drv, "code-out")
    el(drv, "check").click()
    wait_text(drv, "check-result", "relative error")
    assert text_of(drv, "check-result").startswith("✓")
    query = urllib.parse.parse_qs(urllib.parse.urlparse(drv.current_url).query)
    assert query["expr"] == ["sum((X@w - y)**2)"] and query["wrt"] == ["w"]


def test_parse_error_shows_caret(server, browser):
    drv = browser
    drv.get(server + "/")
    type_expr(drv, "sum((X@w - y)**2")
    wait(drv, lambda d: el(d, "parse-error").is_displayed(), "the parse error under the input")
    lines = el(drv, "parse-error").text.split("\n")  # as shown: the caret block on lines of its own
    assert lines[0].startswith("ParseError: unexpected end of input at column 17")
    assert lines[-2] == "sum((X@w - y)**2" and lines[-1] == " " * 16 + "^"
    assert el(drv, "expr").get_attribute("aria-invalid") == "true"
    type_expr(drv, "sum((X@w - y)**2)")
    wait(drv, lambda d: not el(d, "parse-error").is_displayed(), "the error to go away")
    type_expr(drv, "x@y")
    wait(drv, lambda d: text_of(d, "parse-error").startswith("ShapeError: "), "the shape error under the input")
    assert not el(drv, "answer").is_displayed() and not el(drv, "derive-error").is_displayed()
    type_expr(drv, "X@w", submit=False)
    wait(drv, lambda d: set(shape_table(d)) == {"X", "w"}, "the variable table")
    drv.find_element(By.CSS_SELECTOR, "input[name=mode][value=hessian]").click()
    el(drv, "derive").click()
    wait(drv, lambda d: el(d, "derive-error").is_displayed(), "the error in the result")
    assert "hessian needs a scalar expression" in text_of(drv, "derive-error")


def test_examples_menu(server, browser):
    drv = browser
    drv.get(server + "/")
    wait(drv, lambda d: len(Select(el(d, "examples")).options) > 10, "the examples menu")
    Select(el(drv, "examples")).select_by_visible_text("Softmax cross-entropy by W (one-hot Y)")
    wait_text(drv, "text-out", "X.T @ (softmax(X @ W + b, axis=1) - Y)")
    row = drv.find_element(By.CSS_SELECTOR, "#vars tr[data-name=Y] select")
    assert Select(row).first_selected_option.get_attribute("value") == "rows_sum_to_one"
    Select(el(drv, "examples")).select_by_visible_text("x'*A*x by x")
    wait_text(drv, "text-out", "(A + A.T) @ x")
    assert Select(el(drv, "syntax")).first_selected_option.get_attribute("value") == "matrixcalculus"


def test_backprop_and_hessian_modes(server, browser):
    drv = browser
    drv.get(server + "/")
    type_expr(drv, "W@X", submit=False)
    wait(drv, lambda d: set(shape_table(d)) == {"W", "X"}, "the variable table")
    drv.find_element(By.ID, "wrt-W").click()
    wait_text(drv, "equation", "⊗")
    drv.find_element(By.CSS_SELECTOR, "input[name=mode][value=vjp]").click()
    wait_text(drv, "text-out", "G @ X.T")
    assert el(drv, "upstream-field").is_displayed() and not el(drv, "layout").is_enabled()
    up = el(drv, "upstream")
    up.clear()
    up.send_keys("D", Keys.ENTER)
    wait_text(drv, "text-out", "D @ X.T")
    type_expr(drv, "x.T@A@x", submit=False)
    wait(drv, lambda d: set(shape_table(d)) == {"x", "A"}, "the variable table")
    drv.find_element(By.CSS_SELECTOR, "input[name=mode][value=hessian]").click()
    wait_text(drv, "text-out", "A + A.T")
    assert "partial^2" in tex_source(drv, "equation")


def test_layout_and_dimensions(server, browser):
    drv = browser
    drv.get(server + "/?" + urllib.parse.urlencode({"expr": "tr(A@X)", "wrt": "X", "layout": "numerator"}))
    wait_text(drv, "text-out", "A")
    assert Select(el(drv, "layout")).first_selected_option.get_attribute("value") == "numerator"
    assert text_of(drv, "text-out").strip() == "A"
    Select(el(drv, "layout")).select_by_value("denominator")
    wait_text(drv, "text-out", "A.T")
    dims = drv.find_element(By.CSS_SELECTOR, "#vars tr[data-name=X] input.dims")
    dims.clear()
    dims.send_keys("3, 4", Keys.TAB)
    wait(drv, lambda d: shape_table(d).get("A") == "4×3", "A's shape from X's dimensions")
    wait(drv, lambda d: urllib.parse.parse_qs(urllib.parse.urlparse(d.current_url).query).get("shapes") == ["X=3,4"],
         "the dimensions in the URL")


def test_link_reproduces_a_derivation_and_screenshot(server, browser, tmp_path):
    drv = browser
    drv.get(server + "/?" + urllib.parse.urlencode({"expr": "X@W+b", "wrt": "W"}))
    wait_text(drv, "text-out", "kron(eye(cols(W)), X)")
    assert el(drv, "differential-box").is_displayed() and el(drv, "backprop-box").is_displayed()
    assert tex_source(drv, "backprop") == r"\frac{\partial L}{\partial W} = X^{T} G"
    assert drv.find_element(By.ID, "wrt-W").is_selected()
    drv.find_element(By.CSS_SELECTOR, "#steps-box summary").click()
    assert el(drv, "steps").is_displayed() and el(drv, "steps").find_elements(By.CSS_SELECTOR, ".katex")
    el(drv, "check").click()
    wait_text(drv, "check-result", "relative error")
    drv.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
    time.sleep(0.2)
    height = drv.execute_script("return document.documentElement.scrollHeight")
    drv.set_window_size(1200, min(height + 140, 2400))
    out = Path(os.environ.get("MATCALC_SCREENSHOT") or tmp_path / "screenshot.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    assert drv.save_screenshot(str(out)) and out.stat().st_size > 10_000
    drv.set_window_size(1200, 1500)


def test_link_keeps_a_variable_the_expression_lacks(server, browser):
    drv = browser
    drv.get(server + "/?" + urllib.parse.urlencode({"expr": "sum(x)", "wrt": "y"}))
    wait_text(drv, "text-out", "zeros(")
    assert drv.find_element(By.ID, "wrt-y").is_selected()
    assert el(drv, "warnings").is_displayed() and "y does not occur" in text_of(drv, "warnings")
    assert shape_table(drv)["y"].endswith("(not in the expression)")


def test_symmetric_type_makes_the_matrix_square(server, browser):
    drv = browser
    drv.get(server + "/?" + urllib.parse.urlencode({"expr": "x.T@A@y", "wrt": "y"}))
    wait_text(drv, "text-out", "A.T @ x")
    assert shape_table(drv)["A"] == "m×n"
    Select(drv.find_element(By.CSS_SELECTOR, "#vars tr[data-name=A] select")).select_by_value("symmetric")
    wait_text(drv, "text-out", "A @ x")
    assert shape_table(drv)["A"] == "m×m" and shape_table(drv)["y"] == "m-vector"
    query = urllib.parse.parse_qs(urllib.parse.urlparse(drv.current_url).query)
    assert query["symmetric"] == ["A"]


def test_keyboard_only(server, browser):
    drv = browser
    drv.get(server + "/")
    active = drv.switch_to.active_element
    active.send_keys("norm(X@W - Y)**2")
    wait(drv, lambda d: set(shape_table(d)) == {"X", "W", "Y"}, "the variable table")
    active.send_keys(Keys.ENTER)
    wait_text(drv, "text-out", "2 * X.T @ (X @ W - Y)")
    drv.switch_to.active_element.send_keys(Keys.TAB)
    assert drv.switch_to.active_element.get_attribute("id") == "derive"
    drv.switch_to.active_element.send_keys(Keys.TAB)
    assert drv.switch_to.active_element.get_attribute("id") == "syntax"
    # the API's 400 answers to bad input are logged by the browser as failed loads: not script errors
    errors = [e for e in drv.get_log("browser") if e["level"] == "SEVERE" and e.get("source") != "network"]
    assert not errors, errors
