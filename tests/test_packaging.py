"""Every package of matcalc is listed in pyproject.toml: CI installs non-editable, where an
unlisted subpackage (matcalc.ops) is silently left out of the wheel."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_subpackage_is_installed():
    text = (ROOT / "pyproject.toml").read_text()
    listed = set(re.findall(r'"(matcalc[\w.]*)"', text.split("packages =", 1)[1].split("\n", 1)[0]))
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "matcalc").rglob("__init__.py")}
    assert found <= listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"
