"""The package's architecture, checked.

* ``lint-imports`` (import-linter, contracts in ``pyproject.toml``) keeps the layers
  cli > experiments > training > {noise, datasets, models, metrics, scores, explain} > core > _internal,
  and fails when a forbidden import is planted;
* no import cycle between modules (grimp's graph, function-level imports included);
* the rules import-linter cannot express: third-party imports at module level are only the
  required dependencies (optional ones such as ``cv2`` or ``pandas`` are imported inside the
  function that needs them); no underscore name is imported across subpackages;
* size: no module over 400 lines, no function over 60 lines besides its docstring (data tables excepted).
"""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "lilaw_edu"
LINT = Path(sys.executable).with_name("lint-imports")

# Distributions in pyproject's `dependencies`, by import name. Anything else third-party is optional.
REQUIRED = {"torch", "torchvision", "numpy", "scipy", "sklearn", "matplotlib", "tqdm"}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
# Literal data, not logic: transcribed paper tables.
SIZE_EXEMPT = {"lilaw_edu/core/paper.py"}


def package_modules(root: Path = PKG):
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def module_level_imports(tree: ast.Module):
    """Import nodes executed when the module is imported (function bodies excluded)."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        else:
            stack.extend(ast.iter_child_nodes(node))


def optional_imports_at_module_level(path: Path) -> list:
    """``(line, name)`` for every module-level import of a package that is neither stdlib,
    a required dependency nor ``lilaw_edu`` itself."""
    allowed = set(sys.stdlib_module_names) | REQUIRED | {"lilaw_edu", "__future__"}
    found = []
    for node in module_level_imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                continue
            names = [node.module]
        else:
            names = [a.name for a in node.names]
        found += [(node.lineno, n) for n in names if n.split(".")[0] not in allowed]
    return sorted(found)


def subpackage_of(module: str) -> str:
    """``lilaw_edu.noise.maps`` -> ``noise``; top-level modules are their own unit."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def module_name(path: Path, root: Path = PKG) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def private_names_crossing(path: Path, root: Path = PKG) -> list:
    """``(line, module, name)`` for ``from lilaw_edu.X... import _name`` where X is another subpackage."""
    here = subpackage_of(module_name(path, root))
    bad = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith("lilaw_edu."):
            if subpackage_of(node.module) == here:
                continue
            bad += [(node.lineno, node.module, a.name) for a in node.names if a.name.startswith("_")]
    return bad


def code_lines(node) -> int:
    """Lines of a function without its docstring (numpydoc docstrings are documentation, not logic)."""
    length = node.end_lineno - node.lineno + 1
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        length -= first.end_lineno - first.lineno + 1
    return length


def oversized(path: Path) -> list:
    text = path.read_text(encoding="utf-8")
    out = []
    if len(text.splitlines()) > MAX_MODULE_LINES:
        out.append(("module", len(text.splitlines())))
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = code_lines(node)
            if length > MAX_FUNCTION_LINES:
                out.append((node.name, length))
    return out


# ----------------------------------------------------------------------------- tests
def run_lint(cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = None
    if pythonpath is not None:
        import os
        env = dict(os.environ, PYTHONPATH=str(pythonpath))
    return subprocess.run([str(LINT), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_import_contracts_hold():
    out = run_lint(ROOT)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "broken" in out.stdout and " 0 broken" in out.stdout


def test_import_contracts_catch_a_planted_violation(tmp_path):
    shutil.copytree(PKG, tmp_path / "lilaw_edu", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "lilaw_edu" / "core" / "losses.py"
    target.write_text(target.read_text(encoding="utf-8") + "\nfrom lilaw_edu import cli  # planted\n",
                      encoding="utf-8")
    out = run_lint(tmp_path, pythonpath=tmp_path)
    assert out.returncode != 0
    assert "lilaw_edu.core.losses -> lilaw_edu.cli" in out.stdout


def test_no_import_cycles():
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("lilaw_edu")
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported != module and not imported.startswith(module + "."):
                chain = graph.find_shortest_chain(importer=imported, imported=module)
                if chain and not module.startswith(imported + "."):
                    cycles.append((module, *chain))
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_optional_dependencies_are_imported_lazily():
    offenders = {str(p.relative_to(ROOT)): found for p in package_modules()
                 if (found := optional_imports_at_module_level(p))}
    assert not offenders, offenders


def test_lazy_import_checker_can_fail(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("import os\nimport cv2\ntry:\n    import pandas as pd\nexcept ImportError:\n    pd = None\n"
                   "def f():\n    import ipywidgets\n", encoding="utf-8")
    assert [n for _, n in optional_imports_at_module_level(bad)] == ["cv2", "pandas"]


def test_no_private_name_crosses_a_subpackage():
    offenders = {str(p.relative_to(ROOT)): found for p in package_modules()
                 if (found := private_names_crossing(p))}
    assert not offenders, offenders


def test_private_name_checker_can_fail(tmp_path):
    pkg = tmp_path / "lilaw_edu" / "training"
    pkg.mkdir(parents=True)
    mod = pkg / "x.py"
    mod.write_text("from lilaw_edu.noise.checks import _check_rate, check_rate\n"
                   "from lilaw_edu.training.config import _private\n", encoding="utf-8")
    assert private_names_crossing(mod, tmp_path / "lilaw_edu") == [(1, "lilaw_edu.noise.checks", "_check_rate")]


def test_modules_and_functions_stay_small():
    offenders = {str(p.relative_to(ROOT)): found for p in package_modules()
                 if str(p.relative_to(ROOT)) not in SIZE_EXEMPT and (found := oversized(p))}
    assert not offenders, offenders


def test_public_api_imports_from_the_top_level():
    code = ("from lilaw_edu import (LiLAW, weight_components, lilaw_weights, inject_label_noise, "
            "inject_input_noise, load_dataset, fit, TrainConfig, config_from_preset)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
