"""The built book read offline: formulas render and no page logs a JavaScript error.

Opens every page of ``_build/html`` (or ``$LILAW_BOOK_HTML``) in headless chromium with every network
request blocked (tests/browser/book.test.mjs): MathJax must come from the book itself
(``_static/mathjax``, sphinx-mathjax-offline) and typeset every formula (no raw ``\\(`` left), and no
page may raise a JavaScript error (sphinx-thebe's ``THEBE_JS_URL`` was declared twice on every page;
book/_ext/lilaw_book_fixes.py). Skipped when the book is not built (``make book``) or the browser
is missing (``make browser``).
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BROWSER_DIR = ROOT / "tests" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
NODE = shutil.which("node")
BOOK = Path(os.environ.get("LILAW_BOOK_HTML", ROOT / "_build" / "html"))


def test_book_renders_offline_without_js_errors():
    missing = [what for what, ok in (("/usr/bin/chromium", CHROMIUM.exists()), ("node", NODE is not None),
                                     ("playwright-core", (BROWSER_DIR / "node_modules" / "playwright-core").is_dir()),
                                     (f"a built book in {BOOK}", (BOOK / "index.html").is_file())) if not ok]
    if missing:
        pytest.skip("needs " + ", ".join(missing))
    assert (BOOK / "_static" / "mathjax" / "tex-chtml.js").is_file(), "MathJax is not served from the book"
    pages = sorted(p for p in BOOK.rglob("*.html") if "_static" not in p.parts)
    assert not any("cdn.jsdelivr.net/npm/mathjax" in p.read_text(encoding="utf-8", errors="ignore") for p in pages)
    proc = subprocess.run([NODE, str(BROWSER_DIR / "book.test.mjs"), "--root", str(BOOK), "--chromium", str(CHROMIUM)],
                          capture_output=True, text=True, timeout=600, cwd=BROWSER_DIR)
    print(proc.stdout[-6000:], proc.stderr[-3000:])
    assert proc.returncode == 0, f"offline book check failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    passed = re.search(r"^(\d+) passed, 0 failed$", proc.stdout, re.M)
    assert passed and int(passed.group(1)) >= 10, proc.stdout[-2000:]
