"""The release: sdist and wheel build, ``twine check``, and the wheel installed into a fresh virtual environment.

The build runs on a copy of the source tree (the files git tracks or would track), so it neither writes into
the checkout nor picks up ignored files. The wheel is installed NOT editable into a new venv made with
``--without-pip`` (pip of this interpreter installs into it with ``--python``, offline, ``--no-deps``). Its
dependencies (torch, numpy, ...) come from this interpreter's site-packages through a ``.pth`` line: a path
line only extends ``sys.path`` and does not run the ``.pth`` files there, so the editable install of
``lilaw_edu`` in ``.venv`` stays inactive and cannot shadow the wheel's copy (each test checks
``lilaw_edu.__file__``). Commands run from a temporary directory outside the repository.

Also checked here: ``CITATION.cff`` against the Citation File Format 1.2.0 JSON schema
(``tests/data/cff-1.2.0.schema.json``: the schema of the Citation File Format authors, CC BY 4.0, copied
unchanged from the ``cffconvert`` 2.0.0 wheel on PyPI, file sha256 ``0b8d2214...c169b``; ``cffconvert``
itself requires ``jsonschema<4``, which conflicts with the book's Jupyter stack, so it cannot be installed here),
and that the version is written in one place and repeated correctly where it must be.
"""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PUBLIC_API = ("LiLAW", "weight_components", "lilaw_weights", "inject_label_noise", "inject_input_noise",
              "load_dataset", "fit", "TrainConfig", "config_from_preset")
ASSETS = ("lilaw_edu/explain/assets/explorer.js", "lilaw_edu/explain/assets/explorer.css")
NOT_SHIPPED = ("results/", "book/", "tests/", "data_scripts/", "benchmarks/", ".github/", ".ci/")


def source_version() -> str:
    """``__version__`` as written in lilaw_edu/__init__.py (read, not imported)."""
    tree = ast.parse((REPO / "lilaw_edu" / "__init__.py").read_text(encoding="utf-8"))
    values = [node.value.value for node in tree.body if isinstance(node, ast.Assign)
              and any(getattr(t, "id", None) == "__version__" for t in node.targets)]
    assert len(values) == 1, "lilaw_edu/__init__.py must assign __version__ exactly once, as a string literal"
    return values[0]


def run(cmd, cwd, env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def copy_source_tree(dst: Path) -> None:
    """Copy the files of a clean checkout (tracked + untracked-not-ignored) into ``dst``."""
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO)
    if listed.returncode != 0:
        pytest.skip(f"not a git checkout, cannot list the source files: {listed.stderr.strip()}")
    for rel in filter(None, listed.stdout.split("\0")):
        src = REPO / rel
        if src.is_file():  # a tracked file deleted in the work tree is not part of the build
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """sdist and wheel built by ``python -m build`` (wheel built from the sdist), once per module."""
    root = tmp_path_factory.mktemp("release")
    src, out = root / "src", root / "dist"
    copy_source_tree(src)
    start = time.perf_counter()
    built = run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, src], cwd=root)
    seconds = time.perf_counter() - start
    assert built.returncode == 0, f"python -m build failed:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}"
    sdists, wheels = sorted(out.glob("*.tar.gz")), sorted(out.glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, f"expected one sdist and one wheel, got {sorted(out.iterdir())}"
    print(f"python -m build: {seconds:.1f} s")
    return {"sdist": sdists[0], "wheel": wheels[0], "root": root, "log": built.stdout + built.stderr}


@pytest.fixture(scope="module")
def fresh_venv(dist):
    """A new venv with only the wheel installed in it; dependencies visible read-only through a path line."""
    venv = dist["root"] / "venv"
    made = run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=dist["root"])
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                    cwd=dist["root"]).stdout.strip())
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    assert not any((Path(p) / "lilaw_edu").exists() for p in ours), \
        "a non-editable lilaw_edu is installed in this environment; the wheel test cannot isolate from it"
    (site / "_release_test_dependencies.pth").write_text("".join(f"{p}\n" for p in sorted(ours)))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    installed = run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
                     "--quiet", dist["wheel"]], cwd=dist["root"], env=env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    workdir = dist["root"] / "elsewhere"   # outside the repository: '' on sys.path must not find lilaw_edu
    workdir.mkdir()
    return {"python": python, "bin": venv / "bin", "venv": venv, "env": env, "cwd": workdir}


def test_build_is_clean(dist):
    assert "deprecat" not in dist["log"].lower(), "setuptools reports a deprecated setting:\n" + dist["log"][-3000:]
    assert dist["wheel"].name == f"lilaw_edu-{source_version()}-py3-none-any.whl"


def test_twine_check_passes(dist):
    checked = run([sys.executable, "-m", "twine", "check", "--strict", dist["sdist"], dist["wheel"]], cwd=dist["root"])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("PASSED") == 2, checked.stdout


def test_wheel_ships_the_package_and_its_assets_and_nothing_else(dist):
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read(f"lilaw_edu-{source_version()}.dist-info/METADATA").decode()
    for asset in ASSETS:
        assert asset in names, f"{asset} is missing from the wheel"
    shipped_elsewhere = sorted(n for n in names if n.startswith(NOT_SHIPPED) or n.endswith(".ipynb"))
    assert not shipped_elsewhere, f"the wheel ships files from outside the package: {shipped_elsewhere[:10]}"
    tops = {n.split("/")[0] for n in names}
    assert tops == {"lilaw_edu", f"lilaw_edu-{source_version()}.dist-info"}, tops
    # every module of the source tree is in the wheel (a subpackage missed by packages.find would fail here)
    modules = {p.relative_to(REPO).as_posix() for p in (REPO / "lilaw_edu").rglob("*.py")
               if "__pycache__" not in p.parts}
    assert modules <= names, f"modules missing from the wheel: {sorted(modules - names)[:10]}"
    assert f"lilaw_edu-{source_version()}.dist-info/licenses/LICENSE" in names
    assert f"\nVersion: {source_version()}\n" in metadata
    assert "\nLicense-Expression: MIT\n" in metadata
    assert "\nDescription-Content-Type: text/markdown\n" in metadata


def test_sdist_ships_no_results_or_book(dist):
    with tarfile.open(dist["sdist"]) as sdist:
        names = [n.split("/", 1)[1] for n in sdist.getnames() if "/" in n]
    assert "pyproject.toml" in names and "LICENSE" in names and "README.md" in names
    assert not [n for n in names if n.startswith(("results/", "book/"))]


def test_installed_wheel_imports_the_public_api(fresh_venv):
    code = ("import json, lilaw_edu\n"
            f"from lilaw_edu import {', '.join(PUBLIC_API)}\n"
            "from importlib.metadata import version\n"
            "from lilaw_edu.explain.static import static_explorer_html\n"
            "html = static_explorer_html()\n"
            "print(json.dumps({'file': lilaw_edu.__file__, 'version': lilaw_edu.__version__,\n"
            "                  'dist_version': version('lilaw-edu'), 'html': len(html),\n"
            "                  'has_script': '<script' in html}))\n")
    done = run([fresh_venv["python"], "-c", code], cwd=fresh_venv["cwd"], env=fresh_venv["env"])
    assert done.returncode == 0, done.stderr[-3000:]
    info = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(info["file"]).resolve().is_relative_to(fresh_venv["venv"].resolve()), \
        f"lilaw_edu was imported from {info['file']}, not from the fresh venv"
    assert info["version"] == info["dist_version"] == source_version()
    assert info["has_script"] and info["html"] > 1000   # the explorer's JS/CSS came from the wheel's assets


def test_installed_cli_lists_datasets(fresh_venv):
    done = run([fresh_venv["bin"] / "lilaw-edu", "datasets"], cwd=fresh_venv["cwd"], env=fresh_venv["env"])
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("ecg5000", "digits", "breastmnist", "cifar10"):
        assert re.search(rf"^{name}\s", done.stdout, re.M), f"{name} missing from `lilaw-edu datasets`:\n{done.stdout}"


def test_installed_cli_reports_its_version(fresh_venv):
    cli = next(fresh_venv["venv"].rglob("site-packages/lilaw_edu/cli.py")).read_text(encoding="utf-8")
    if not re.search(r"""["']--version["']""", cli):
        pytest.xfail("`lilaw-edu --version` is not in cli.py yet (pending work of helper H2 on cli.py)")
    done = run([fresh_venv["bin"] / "lilaw-edu", "--version"], cwd=fresh_venv["cwd"], env=fresh_venv["env"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert source_version() in done.stdout, done.stdout


# --- the version in one place, repeated only where a file format needs it -------------------------------

def test_version_is_defined_once():
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^dynamic = \["version"\]', pyproject, re.M)
    assert not re.search(r'^version = "', pyproject, re.M), "pyproject.toml must not write the version itself"
    assert 'version = { attr = "lilaw_edu.__version__" }' in pyproject
    assert re.fullmatch(r"\d+\.\d+\.\d+", source_version())


def test_changelog_starts_with_this_version():
    headings = re.findall(r"^## \[?(\d+\.\d+\.\d+)\]?", (REPO / "CHANGELOG.md").read_text(encoding="utf-8"), re.M)
    assert headings and headings[0] == source_version(), headings


def test_colab_setup_cells_pin_the_release_tag():
    """Every notebook's setup cell defaults LILAW_REF to the tag of this version (see README "On Colab")."""
    notebooks = sorted((REPO / "book").rglob("*.ipynb"))
    pins = {}
    for path in notebooks:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        pins[path.relative_to(REPO).as_posix()] = re.findall(
            r"""LILAW_REF\s*=\s*os\.environ\.get\(\s*["']LILAW_REF["']\s*,\s*["']([^"']+)["']""", source)
    assert notebooks
    wrong = {nb: refs for nb, refs in pins.items() if refs != [f"v{source_version()}"]}
    assert not wrong, f"setup cells must default LILAW_REF to v{source_version()}: {wrong}"


# --- CITATION.cff --------------------------------------------------------------------------------------

def cff_errors(data) -> list[str]:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((REPO / "tests" / "data" / "cff-1.2.0.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)]


def load_cff(text: str):
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(text)


def test_citation_cff_is_valid_and_current():
    data = load_cff((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff_errors(data) == []
    assert data["cff-version"] == "1.2.0"
    assert data["version"] == source_version()
    assert data["license"] == "MIT"


def test_broken_citation_cff_is_rejected():
    data = load_cff((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    del data["authors"]
    data["license"] = "not-a-licence"
    errors = cff_errors(data)
    assert any("'authors' is a required property" in e for e in errors), errors
    assert any(e.startswith("license") for e in errors), errors


def test_paper_citation_matches_the_paper():
    """The paper's title in CITATION.cff and README's BibTeX is the one printed in the paper."""
    cff = load_cff((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    (paper,) = [r for r in cff["references"] if r["title"].startswith("LiLAW")]
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    bib_title = re.search(r"title\s*=\s*\{(.*)\},?\n", readme.split("## Cite", 1)[-1])
    assert bib_title, "README's Cite section has no BibTeX title"
    assert bib_title.group(1).replace("{", "").replace("}", "") == paper["title"]
    text = REPO.parent / "shared" / "paper" / "lilaw-paper.txt"
    if text.exists():   # only on this project's machines
        first = next(line for line in text.read_text(encoding="utf-8").splitlines() if line.strip())
        assert first.strip().lower() == paper["title"].lower()
