"""The static explorer in a real headless browser (Debian's chromium driven by playwright-core).

Builds a page with two explorers, computes with lilaw_edu the values every panel must show after
each slider move, and runs tests/browser/explorer.test.mjs on it. The same script checks the
explorers in the built book when ``_build/html`` (or ``$LILAW_BOOK_HTML``) holds pages with one.

Needs ``apt-get install -y chromium`` and ``npm ci --prefix tests/browser`` (``make browser``).
"""
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lilaw_edu.explain import region, static

ROOT = Path(__file__).resolve().parents[1]
BROWSER_DIR = ROOT / "tests" / "browser"
SCRIPT = BROWSER_DIR / "explorer.test.mjs"
CHROMIUM = Path("/usr/bin/chromium")
NODE = shutil.which("node")
_missing = [what for what, ok in (
    ("/usr/bin/chromium (apt-get install -y chromium)", CHROMIUM.exists()),
    ("node", NODE is not None),
    ("tests/browser/node_modules/playwright-core (npm ci --prefix tests/browser)",
     (BROWSER_DIR / "node_modules" / "playwright-core").is_dir()),
) if not ok]
pytestmark = pytest.mark.skipif(bool(_missing), reason="browser test needs " + ", ".join(_missing))


def pick_probes(num_classes, resolution, count=6):
    """Attainable grid nodes ``(i, j)`` with ``s_y > 0`` spread over the region, plus one on the diagonal."""
    axis = region.grid_axis(resolution)
    gs, gm = np.meshgrid(axis, axis)
    mask = region.feasible_mask(gs, gm, num_classes) & (gs > 0)
    j, i = np.nonzero(mask)
    chosen = [(int(i[k]), int(j[k])) for k in np.linspace(0, len(i) - 1, count).round().astype(int)]
    d = round(0.8 * (resolution - 1))
    return sorted(set(chosen + [(d, d)]), key=lambda p: (p[1], p[0]))


def line_end(k):
    """Where the line m = k·s_y leaves the unit square, as (s_y, m)."""
    return [1 / k, 1.0] if k > 1 else [1.0, k]


def expected_step(name, state, resolution, panels, controls, action=None, changed=(), unchanged=()):
    """What lilaw_edu says the explorer must show in ``state``."""
    a, b, d, c = state["alpha"], state["beta"], state["delta"], state["C"]
    grids = region.surfaces(a, b, d, c, resolution)
    axis = region.grid_axis(resolution)
    probes = []
    for i, j in pick_probes(c, resolution):
        vals = {k: float(v[0]) for k, v in region.values_at([axis[i]], [axis[j]], a, b, d, c).items()}
        colors = {k: static.panel_rgb(vals[k], *region.panel_range(k, grids[k])) for k in panels}
        probes.append({"i": i, "j": j, "s": float(axis[i]), "m": float(axis[j]), "values": vals,
                       "rgb": {k: rgb for k, (rgb, _) in colors.items()},
                       "rgb_ambiguous": {k: amb for k, (_, amb) in colors.items()}})
    weights = "alpha" in controls
    warnings = ([] if not weights else
                (["alpha<1"] if a < 1 else []) + (["delta<beta"] if d < b else []))
    return {"name": name, "state": dict(state), "action": action, "changed": list(changed),
            "unchanged": list(unchanged), "probes": probes, "panels": list(panels), "controls": list(controls),
            "ranges": {k: list(region.panel_range(k, grids[k])) for k in panels},
            "feasible_count": int(np.isfinite(grids["w"]).sum()),
            "lines": {p: line_end(state[p]) for p in ("alpha", "beta", "delta") if p in controls},
            "warnings": warnings, "readout": ["w_alpha", "w_beta", "w_delta", "w", "ce", "wce"] if weights else ["ce"]}


def expected_steps(config):
    """Slider moves (by fill and by keyboard) from an explorer's initial config, with Python's values."""
    n, panels, controls = config["resolution"], config["panels"], config["controls"]
    state = {k: config[k] for k in ("alpha", "beta", "delta", "C")}
    steps = [expected_step("initial", state, n, panels, controls, unchanged=panels)]
    others = {"alpha": ["w_beta", "w_delta"], "beta": ["w_alpha", "w_delta"], "delta": ["w_alpha", "w_beta"]}
    # alpha = 0.6 < 1 and then delta = 2.4 < beta = 7.9 make the explorer warn; the keys move alpha back over 1.
    targets = {"alpha": (0.6, 12.3), "beta": (7.9, 0.6), "delta": (2.4, 11.3), "C": (3, 12)}
    for param, (first, second) in targets.items():
        if param not in controls:
            continue
        state[param] = first if state[param] != first else second
        own = ["w_" + param, "w", "wce"] if param != "C" else panels
        steps.append(expected_step(f"{param}-fill", state, n, panels, controls,
                                   {"param": param, "via": "fill", "value": state[param]},
                                   changed=[k for k in own if k in panels], unchanged=others.get(param, [])))
    moves = [("alpha", "ArrowRight", 5, 0.1), ("delta", "ArrowLeft", 3, -0.1), ("beta", "ArrowRight", 2, 0.1),
             ("C", "ArrowLeft", 1, -1)]
    for param, key, count, step in moves:
        if param not in controls:
            continue
        state[param] = round(state[param] + count * step, 1) if param != "C" else state[param] + count * step
        own = ["w_" + param, "w", "wce"] if param != "C" else panels
        steps.append(expected_step(f"{param}-keys", state, n, panels, controls,
                                   {"param": param, "via": "keys", "key": key, "count": count},
                                   changed=[k for k in own if k in panels], unchanged=others.get(param, [])))
    return steps


def explorer_configs(page_html):
    """``(element id, config)`` of every static explorer in an HTML page."""
    pattern = (r'<div class="lilaw-explorer" id="([^"]+)"[^>]*>.*?'
               r'<script type="application/json" class="lilaw-ex-config">(.*?)</script>')
    return [(eid, json.loads(cfg)) for eid, cfg in re.findall(pattern, page_html, re.S)]


def run_browser(page, explorer_id, config, tmp_path, context="standalone"):
    expected = tmp_path / f"expected-{explorer_id}.json"
    expected.write_text(json.dumps({"steps": expected_steps(config)}))
    cmd = [NODE, str(SCRIPT), "--page", str(page), "--selector", f"[id='{explorer_id}']",
           "--expected", str(expected), "--chromium", str(CHROMIUM), "--context", context]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=BROWSER_DIR)
    print(proc.stdout, proc.stderr)
    assert proc.returncode == 0, f"browser test failed:\n{proc.stdout}\n{proc.stderr}"
    assert re.search(r"^\d+ passed, 0 failed$", proc.stdout, re.M)
    return proc.stdout


def test_static_explorers_in_headless_chromium(tmp_path):
    first = static.static_explorer_html(C=10)
    second = static.static_explorer_html(C=3, alpha=4.0, beta=1.0, delta=9.0, resolution=81)
    third = static.static_explorer_html(C=3, panels=("ce",), controls=("C",))  # chapter 02's region widget
    # The book's content column is about 750 px wide: the page holds the explorers in a column that narrow.
    page = tmp_path / "explorer.html"
    page.write_text(static.standalone_page('<main style="max-width: 750px"><h1>Three explorers on one page</h1>',
                                           first, second, third, "</main>"), encoding="utf-8")
    configs = explorer_configs(page.read_text(encoding="utf-8"))
    assert len(configs) == 3
    for explorer_id, config in configs:
        out = run_browser(page, explorer_id, config, tmp_path)
        assert "step C-keys" in out and out.count("✓ matches Python") == 3
        assert "step layout" in out


def book_pages():
    root = Path(os.environ.get("LILAW_BOOK_HTML", ROOT / "_build" / "html"))
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*.html") if "data-lilaw-explorer" in p.read_text(encoding="utf-8", errors="ignore"))


@pytest.mark.parametrize("page", book_pages() or [None], ids=lambda p: p.name if p else "no-built-book")
def test_explorers_in_built_book(page, tmp_path):
    if page is None:
        pytest.skip("no built book page with an explorer (run `make book` or set LILAW_BOOK_HTML)")
    configs = explorer_configs(page.read_text(encoding="utf-8"))
    assert configs, f"{page} mentions the explorer but no config was found"
    for explorer_id, config in configs:
        run_browser(page, explorer_id, config, tmp_path, context="book")
