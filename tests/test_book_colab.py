"""Every notebook of the book runs as it would from its Colab button, offline.

The test plays Colab: it copies every notebook out of the repository into an empty folder, creates a
fresh virtual environment in which ``lilaw_edu`` is NOT importable (the rest of this project's
environment, torch included, is visible through a filtered folder of links, the way Colab ships torch,
pandas and matplotlib), serves the repository from a local git repository in place of GitHub
(``LILAW_REPO_URL=file://...``, with the release tag the setup cell pins, ``LILAW_REF``'s default, made
from the current working tree) and executes each notebook in that environment with the network blocked
(``unshare -n``, loopback only, ``PIP_NO_INDEX=1``). The first cell of each notebook then does what it
does on Colab (``LILAW_SIMULATE_COLAB=1``): clone at the tag, ``pip install`` the clone, work in its
``book/`` folder. Every notebook must run to the end, and ``lilaw_edu`` must come from the clone's
install, not from this checkout.

Run as a script (``python tests/test_book_colab.py --run-all WORKDIR OUT.json NB...``) it is the executor
started inside the network namespace: the first notebook alone (its setup cell clones and installs), then
the others two at a time.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb")) + sorted((ROOT / "book" / "experiments").glob("*.ipynb"))
CELL_TIMEOUT = 600
PROBE = "import sys, lilaw_edu\nprint('LILAW-PROBE', sys.executable, lilaw_edu.__file__)"


def _unshare_prefix():
    """``unshare -n`` as root, ``unshare -rn`` (a user namespace) otherwise; None if neither may run."""
    for prefix in (["unshare", "-n"], ["unshare", "-rn"]):
        try:
            if subprocess.run([*prefix, "sh", "-c", "ip link set lo up"], capture_output=True, timeout=30).returncode == 0:
                return prefix
        except (OSError, subprocess.SubprocessError):
            pass
    return None


def pinned_ref():
    """The ``LILAW_REF`` default of the setup cell, which must be the same in every notebook."""
    cells = []
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells.append("".join(next(c for c in nb["cells"] if c["cell_type"] == "code")["source"]))
    assert all(c == cells[0] for c in cells), "the first code cell differs between notebooks"
    refs = re.findall(r'LILAW_REF = os\.environ\.get\("LILAW_REF", "([^"]+)"\)', cells[0])
    assert len(refs) == 1, "the setup cell must define LILAW_REF with one default"
    return refs[0]


def test_setup_cell_is_shared_hidden_and_pinned_to_the_release_tag():
    """One setup cell opens every notebook, hidden in the book, cloning the tag of this version on Colab."""
    import lilaw_edu

    assert pinned_ref() == f"v{lilaw_edu.__version__}", "LILAW_REF must be the release tag of __version__"
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text(encoding="utf-8"))
        first = next(c for c in nb["cells"] if c["cell_type"] == "code")
        assert "hide-input" in first["metadata"].get("tags", []), f"{path.name}: setup cell not hidden"


def _git(cwd, *args):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def serve_repository(dest: Path, ref: str) -> str:
    """A git repository holding the working tree (tracked + untracked, not ignored), tagged ``ref``."""
    files = _git(ROOT, "ls-files", "-z", "-co", "--exclude-standard").split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    _git(dest, "init", "-q")
    _git(dest, "add", "-A")
    _git(dest, "commit", "-q", "-m", "working tree")
    _git(dest, "tag", ref)
    return dest.resolve().as_uri()


def colab_like_venv(dest: Path) -> Path:
    """A fresh venv that sees this project's packages (torch, pandas, jupyter, ...) but not lilaw_edu."""
    import site
    import venv

    venv.EnvBuilder(with_pip=False, symlinks=True).create(dest)  # its own setuptools would shadow torch's
    python = dest / "bin" / "python"
    shared = dest / "shared-site-packages"
    shared.mkdir()
    source = Path(site.getsitepackages()[0])
    skip = re.compile(r"^(lilaw_edu.*|__editable__.*|.*\.pth)$")
    for entry in source.iterdir():
        if not skip.match(entry.name):
            (shared / entry.name).symlink_to(entry)
    own = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                         capture_output=True, text=True, check=True).stdout.strip()
    (Path(own) / "colab_preinstalled.pth").write_text(str(shared) + "\n")
    return python


def kernel_dir(dest: Path, python: Path) -> Path:
    spec = dest / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (Colab-like)", "language": "python"}))
    return dest


def test_every_notebook_runs_as_on_colab():
    import tempfile

    import pytest

    missing = [t for t in ("git", "unshare", "ip") if shutil.which(t) is None]
    unshare = None if missing else _unshare_prefix()
    if unshare is None:
        pytest.skip(f"needs git, unshare and ip with permission to make a network namespace (missing: {missing})")
    # A private folder: pytest prunes old basetemp folders when other pytest sessions start meanwhile.
    with tempfile.TemporaryDirectory(prefix="lilaw-colab-") as folder:
        _simulate_colab(Path(folder), unshare)


def _simulate_colab(tmp_path: Path, unshare: list):
    t0 = time.perf_counter()
    ref = pinned_ref()
    (tmp_path / "remote").mkdir()
    url = serve_repository(tmp_path / "remote", ref)
    python = colab_like_venv(tmp_path / "venv")
    isolated = subprocess.run([str(python), "-c", "import lilaw_edu"], capture_output=True, text=True, cwd=tmp_path)
    assert isolated.returncode != 0, "the fresh environment already imports lilaw_edu: not a user's machine"
    assert subprocess.run([str(python), "-c", "import torch, pandas, ipykernel"], cwd=tmp_path).returncode == 0
    work = tmp_path / "colab"
    work.mkdir()
    for nb in NOTEBOOKS:
        shutil.copy2(nb, work / nb.name)
    jupyter = kernel_dir(tmp_path / "jupyter", python)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LILAW_", "JUPYTER", "PIP_", "VIRTUAL_ENV"))}
    # Offline pip: no index, no config file (this machine's points at local wheel folders), and the build
    # backend from the environment instead of an isolated download (PIP_NO_BUILD_ISOLATION=0 means
    # --no-build-isolation: pip reads --no-* switches from the environment inverted).
    env.update(LILAW_SIMULATE_COLAB="1", LILAW_REPO_URL=url, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_CONFIG_FILE=os.devnull, PIP_NO_BUILD_ISOLATION="0",
               PIP_CACHE_DIR=str(tmp_path / "pip-cache"), JUPYTER_PATH=str(jupyter),
               IPYTHONDIR=str(tmp_path / "ipython"), HOME=str(tmp_path / "home"), MPLBACKEND="Agg")
    env.pop("PYTHONPATH", None)
    out = tmp_path / "report.json"
    names = [nb.name for nb in NOTEBOOKS]
    cmd = [*unshare, "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
           sys.executable, str(Path(__file__).resolve()), "--run-all", str(work), str(out), *names]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1500, cwd=tmp_path)
    print(proc.stdout[-5000:], proc.stderr[-5000:])
    assert out.is_file(), f"executor wrote no report (rc {proc.returncode})"
    report = json.loads(out.read_text())
    assert report.pop("_network_blocked") is True, "the notebooks ran with the network reachable"
    for name in names:
        r = report[name]
        print(f"{name}: {r['seconds']:.1f} s, longest cell {r['longest_cell_s']:.1f} s")
    print(f"total {time.perf_counter() - t0:.0f} s")
    failed = {n: r["error"] for n, r in report.items() if r["error"]}
    assert not failed, "notebooks failed as on Colab:\n" + "\n\n".join(f"{n}:\n{e}" for n, e in failed.items())
    clone_site = str(tmp_path / "venv")
    for name, r in report.items():
        exe, module = r["probe"].split()[1:3]
        assert exe.startswith(clone_site) and module.startswith(clone_site), \
            f"{name} imported lilaw_edu from {module} with {exe}, not from the clone installed in the fresh venv"
    assert (work / "lilaw-edu" / ".git" / "shallow").is_file(), "the setup cell did not make a shallow clone"
    assert _git(work / "lilaw-edu", "describe", "--tags").strip() == ref


def _execute(work: Path, out: Path, names):
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    report = {}
    for name in names:
        nb = nbformat.read(work / name, as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell(PROBE))
        client = NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT, allow_errors=False,
                                resources={"metadata": {"path": str(work)}})
        times, error, start = [], None, time.perf_counter()
        try:
            with client.setup_kernel():
                for index, cell in enumerate(nb.cells):
                    t = time.perf_counter()
                    client.execute_cell(cell, index)
                    times.append((time.perf_counter() - t, index))
        except CellExecutionError as exc:
            error = str(exc)[-3000:]
        except Exception as exc:  # a kernel that dies or hangs is a failure too
            error = f"{type(exc).__name__}: {exc}"[-3000:]
        probe = "".join(o.get("text", "") for o in nb.cells[-1].get("outputs", []))
        report[name] = {"seconds": time.perf_counter() - start, "error": error,
                        "longest_cell_s": max(times)[0] if times else 0.0,
                        "longest_cell": max(times)[1] if times else None, "probe": probe.strip()}
        print(f"{name}: {report[name]['seconds']:.1f} s {'FAILED' if error else 'ok'}", flush=True)
    out.write_text(json.dumps(report, indent=1))


def _execute_all(work: Path, out: Path, names, workers: int = 2):
    """The first notebook alone (its setup cell clones and installs), then the rest ``workers`` at a time."""
    import socket

    # Inside the namespace the only network interface is loopback (checked without sending anything).
    offline = [name for _, name in socket.if_nameindex()] == ["lo"]
    _execute(work, out, names[:1])
    report = json.loads(out.read_text())
    parts = [names[1 + k::workers] for k in range(workers)]
    procs = [subprocess.Popen([sys.executable, __file__, "--run", str(work), f"{out}.{k}", *part])
             for k, part in enumerate(parts) if part]
    for k, proc in enumerate(procs):
        proc.wait()
        if Path(f"{out}.{k}").is_file():
            report.update(json.loads(Path(f"{out}.{k}").read_text()))
    for name in names:
        report.setdefault(name, {"seconds": 0.0, "error": "executor crashed", "longest_cell_s": 0.0,
                                 "longest_cell": None, "probe": ""})
    report["_network_blocked"] = offline
    out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__" and sys.argv[1:2] == ["--run"]:
    _execute(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:])
elif __name__ == "__main__" and sys.argv[1:2] == ["--run-all"]:
    _execute_all(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:])
