"""Resumable grid sweeps: one atomic JSON file per finished run (``lilaw-edu sweep``).

A sweep preset (:mod:`lilaw_edu.experiments.presets`) expands into runs; a run is one
paired :func:`lilaw_edu.training.fit.fit` call (same seed -> same split, noise and
initial weights for every method). Each finished run is written to
``<results_dir>/<preset>/<run_id>.json``:

* **run id** = first 16 hex digits of the SHA-256 of the canonical JSON of the
  resolved :class:`~lilaw_edu.training.config.TrainConfig` (minus runtime-only fields:
  device, data folder, evaluation batch size, residency limit, compile) and the
  method list. Same config -> same id on any machine; any change -> a new id.
* **atomic**: written to a temporary file in the same folder, flushed, then
  ``os.replace``-d, only once the run has finished. A killed sweep leaves either
  the complete file or none.
* **resume**: a run whose file exists and validates is skipped, so rerunning
  the same command continues where it stopped and never duplicates a run (the
  file name is the id). An identical run found in another preset's folder is
  copied instead of retrained. Checkpoints of the run in progress live in the
  work folder (``--work-dir``), so a run interrupted mid-way continues from its
  last epoch.
* **corruption**: a file that does not parse, lacks the schema, whose stored
  SHA-256 of the payload does not match, or whose id does not match its
  contents is *reported* and never used. ``--on-corrupt rerun`` (default) moves
  it aside to ``<run_id>.json.corrupt`` and reruns the run; ``--on-corrupt
  error`` stops with exit status 2 listing the files.

Run two sweeps on the same results folder at once only with different presets.

Modules: :mod:`lilaw_edu.experiments.presets` (what runs), :mod:`lilaw_edu.experiments.plan`
(expansion, status, cost estimates), :mod:`lilaw_edu.experiments.store` (ids and
files), this module (running), :mod:`lilaw_edu.experiments.command` (``lilaw-edu sweep``), :mod:`lilaw_edu.experiments.analysis`
and :mod:`lilaw_edu.experiments.plots` (reading results back for the book).
"""
from __future__ import annotations

import os
import shutil
import signal
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

from lilaw_edu.experiments.plan import estimate_seconds, measured_costs, plan_sweep
from lilaw_edu._internal.provenance import PACKAGE_DIR, git_state, hardware, source_sha256, utc_now
from lilaw_edu._internal.files import check_writable
from lilaw_edu.experiments.store import (CorruptResultError, RunSpec, claim_run, make_record,
                                         read_record, release_runs, write_record)
from lilaw_edu.experiments.summary import summarise_fit

__all__ = ["run_sweep", "execute_run", "write_run_record", "check_clean_tree", "default_work_dir",
           "SweepInterrupted"]

# ------------------------------------------------------------------ running
def default_work_dir() -> Path:
    """Checkpoints of runs in progress: ``$LILAW_SWEEP_WORK`` or ``~/.cache/lilaw_edu/sweep-work``."""
    return Path(os.environ.get("LILAW_SWEEP_WORK") or Path.home() / ".cache" / "lilaw_edu" / "sweep-work")


def check_clean_tree(allow_dirty: bool) -> dict:
    """Refuse to write records from a package source with uncommitted changes.

    Returns
    -------
    dict
        ``git_commit`` and ``git_dirty`` (None when not in a git checkout, e.g. a pip install).

    Raises
    ------
    ValueError
        When the tree is dirty and ``allow_dirty`` is False.
    """
    state = git_state()
    if state["git_dirty"] and not allow_dirty:
        raise ValueError(f"the package source {PACKAGE_DIR} has uncommitted changes, so a record could not name "
                         f"the code that made it; commit first, or pass --allow-dirty (records then say git_dirty)")
    return state


def _provenance(started: str, wall: float) -> dict:
    """Versions, hardware, git commit and dirty flag, SHA-256 of the package source, wall time."""
    import numpy
    import sklearn
    import torch

    from lilaw_edu import __version__
    return {"lilaw_edu": __version__, **hardware(), "numpy": numpy.__version__, "sklearn": sklearn.__version__,
            "torch_threads": torch.get_num_threads(), **git_state(), "source_sha256": source_sha256(),
            "started": started, "wall_time_s": round(wall, 3), "finished": utc_now()}


def _fit_with_restart(fit_fn, config, spec, work):
    """Fit, resuming from ``work``; checkpoints the current code cannot resume from (e.g. written by an
    older version) start the run over once from scratch (a second failure is reported by the caller)."""
    try:
        return fit_fn(config, methods=spec.methods, out_dir=work, resume=True, progress=False), None
    except ValueError as exc:
        if not work.exists():
            raise
        shutil.rmtree(work, ignore_errors=True)
        results = fit_fn(config, methods=spec.methods, out_dir=work, resume=True, progress=False)
        return results, f"{type(exc).__name__}: {exc}"


def write_run_record(spec: RunSpec, payload: dict, results_dir) -> Path:
    """Write one run's record atomically to ``<results_dir>/<preset>/<run_id>.json``; returns the path."""
    path = Path(results_dir) / spec.preset / f"{spec.run_id}.json"
    write_record(path, make_record(spec, payload))
    return path


def execute_run(spec: RunSpec, results_dir, work_dir=None, device: str | None = None, fit_fn=None,
                owner: int | None = None) -> dict:
    """Train one run (resuming from its checkpoints) and write its result file atomically.

    With ``owner`` (the sweep's process id) the run is first claimed with a lock file in the
    results folder (:func:`~lilaw_edu.experiments.store.claim_run`); a run that another live
    sweep holds, or that is already finished, is skipped.

    Returns
    -------
    dict
        ``run_id``, ``path``, ``wall_time_s`` and ``skipped`` (True when not trained here).
    """
    fit_fn = fit_fn or _fit_hook() or _default_fit()
    done = Path(results_dir) / spec.preset / f"{spec.run_id}.json"
    lock = claim_run(results_dir, spec, owner) if owner is not None else None
    if owner is not None and (lock is None or done.is_file()):
        if lock is not None:
            lock.unlink(missing_ok=True)
        return {"run_id": spec.run_id, "path": str(done), "wall_time_s": 0.0, "skipped": True}
    try:
        config = spec.config(device)
        work = Path(work_dir or default_work_dir()) / spec.preset / spec.run_id
        started, t0 = utc_now(), time.perf_counter()
        results, restarted = _fit_with_restart(fit_fn, config, spec, work)
        wall = time.perf_counter() - t0
        provenance = dict(_provenance(started, wall), **({"restarted_after": restarted} if restarted else {}))
        payload = {"spec": spec.to_dict(), "config": config.to_dict(), "result": summarise_fit(results),
                   "provenance": provenance}
        path = write_run_record(spec, payload, results_dir)
        shutil.rmtree(work, ignore_errors=True)
    finally:
        if lock is not None:
            lock.unlink(missing_ok=True)
    return {"run_id": spec.run_id, "path": str(path), "wall_time_s": wall, "skipped": False}


def _default_fit():
    from lilaw_edu.training.fit import fit
    return fit


def _fit_hook():
    """``$LILAW_SWEEP_FIT = "module:function"`` replaces the trainer in every run: tests of the process
    pool, where a ``fit_fn`` object cannot be passed to spawned workers. Unset in normal use."""
    hook = os.environ.get("LILAW_SWEEP_FIT")
    if not hook:
        return None
    import importlib
    module, _, name = hook.partition(":")
    return getattr(importlib.import_module(module), name)


def _copy_run(spec: RunSpec, source: Path, results_dir) -> dict:
    payload = dict(read_record(source)["payload"])
    payload["spec"] = spec.to_dict()
    # the copied record as "<preset>/<run_id>.json" inside the results folder (no machine-local path)
    payload["provenance"] = dict(payload["provenance"], reused_from=f"{source.parent.name}/{source.name}")
    path = write_run_record(spec, payload, results_dir)
    return {"run_id": spec.run_id, "path": str(path), "wall_time_s": 0.0}


def _init_worker(threads: int) -> None:
    import torch
    torch.set_num_threads(threads)


def _init_pool_worker() -> None:
    """Pool workers ignore Ctrl-C: the sweep process decides (cancel queued runs, stop workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker(spec, results_dir, work_dir, device, threads, owner):
    _init_worker(threads)
    return execute_run(spec, results_dir, work_dir, device, owner=owner)


def _quarantine(corrupt, results_dir, on_corrupt: str, log) -> None:
    if corrupt and on_corrupt == "error":
        raise CorruptResultError("; ".join(msg for _, msg in corrupt) +
                                 " -- remove these files or rerun with --on-corrupt rerun")
    for spec, msg in corrupt:
        path = Path(results_dir) / spec.preset / f"{spec.run_id}.json"
        log(f"REPORT: {msg}; moved to {path.name}.corrupt and scheduled to rerun")
        os.replace(path, path.with_name(path.name + ".corrupt"))


def _check_options(jobs, threads, on_corrupt, fit_fn) -> None:
    if on_corrupt not in ("rerun", "error"):
        raise ValueError(f"on_corrupt must be 'rerun' or 'error', got {on_corrupt!r}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be an integer >= 1 (or None: CPUs // jobs), got {threads!r}")
    if fit_fn is not None and jobs != 1:
        raise ValueError(f"fit_fn works only with jobs=1, got jobs={jobs}")


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a sweep; ``summary`` holds what finished (those records are kept)."""

    def __init__(self, summary: dict):
        super().__init__("sweep interrupted")
        self.summary = summary


def run_sweep(presets, *, results_dir="results", work_dir=None, jobs: int = 1, threads: int | None = None,
              limit: int | None = None, device: str | None = None, seeds=None, dry_run: bool = False,
              on_corrupt: str = "rerun", fit_fn=None, progress: bool = True, log=print,
              allow_dirty: bool = False) -> dict:
    """Run (or, with ``dry_run``, list) every pending run of ``presets``.

    Parameters
    ----------
    presets : sequence of str
        Sweep presets (or ``cpu-all`` / ``paper-all``), run in the given order.
    results_dir, work_dir : path-like
        Result files go to ``results_dir/<preset>/``; checkpoints to ``work_dir``.
    jobs : int
        Parallel runs (worker processes). 1 runs in this process.
    threads : int, optional
        ``torch.set_num_threads`` per run (default: CPU count // jobs, at least 1).
    limit : int, optional
        Run at most this many pending runs.
    device, seeds
        Override every run's device / seeds.
    on_corrupt : {"rerun", "error"}
    fit_fn : callable, optional
        Replaces :func:`lilaw_edu.training.fit.fit` (tests); only with ``jobs=1``.
    allow_dirty : bool
        Write records although the package source has uncommitted changes (they say ``git_dirty``).

    Returns
    -------
    dict
        ``total``, ``done_before``, ``ran``, ``reused``, ``skipped`` (claimed by another sweep),
        ``corrupt`` (messages), ``failed`` (messages), ``estimated_s``, ``stale``.

    Raises
    ------
    SweepInterrupted
        On Ctrl-C: queued runs are cancelled, workers stopped; finished records stay valid.
    """
    _check_options(jobs, threads, on_corrupt, fit_fn)
    threads = threads or max(1, (os.cpu_count() or 1) // jobs)
    plan, todo, firsts, est, measured = _plan_and_estimate(presets, results_dir, seeds, limit, device)
    summary = {"total": len(plan["specs"]), "done_before": len(plan["done"]), "ran": 0, "reused": 0, "skipped": 0,
               "corrupt": [m for _, m in plan["corrupt"]], "failed": [], "stale": [str(p) for p in plan["stale"]],
               "estimated_s": sum(est.values()) / jobs}
    for _, msg in plan["corrupt"]:
        log(f"REPORT: {msg}")
    if dry_run:
        _print_plan(plan, todo, est, jobs, log, bool(measured))
        return summary
    check_clean_tree(allow_dirty)
    for preset in {s.preset for s in plan["specs"]}:  # before any training
        check_writable(Path(results_dir) / preset, "--results-dir")
    _quarantine(plan["corrupt"], results_dir, on_corrupt, log)
    from tqdm.auto import tqdm
    bar = tqdm(total=len(todo), unit="run", disable=not progress, desc="sweep", dynamic_ncols=True)
    finished = _progress(summary, bar, dict(est), jobs)
    fresh, copies = [], []
    for spec in todo:
        if spec.run_id in plan["reusable"]:
            finished(spec, {**_copy_run(spec, plan["reusable"][spec.run_id], results_dir), "reused": True})
        elif firsts[spec.run_id] is spec:
            fresh.append(spec)
        else:
            copies.append(spec)
    owner = os.getpid()
    try:
        _run_fresh(fresh, results_dir, work_dir, device, threads, jobs, fit_fn, owner, finished, summary, log)
        for spec in copies:
            source = Path(results_dir) / firsts[spec.run_id].preset / f"{spec.run_id}.json"
            finished(spec, {**_guard(lambda: _copy_run(spec, source, results_dir), spec, summary, log),
                            "reused": True})
    except KeyboardInterrupt:
        release_runs(results_dir, {s.preset for s in plan["specs"]}, owner)
        raise SweepInterrupted(summary) from None
    finally:
        bar.close()
    return summary


def _plan_and_estimate(presets, results_dir, seeds, limit, device) -> tuple:
    """The plan, the runs to do (at most ``limit``), the first spec of each run id (later ones are copies)
    and each run's estimated seconds."""
    plan = plan_sweep(presets, results_dir, seeds)
    todo = plan["pending"][:limit] if limit is not None else plan["pending"]
    firsts = {}
    for s in todo:  # an id seen earlier in this plan (presets sharing a row) is copied, not retrained
        firsts.setdefault(s.run_id, s)
    measured = measured_costs(results_dir)
    est = {s: (0.0 if s.run_id in plan["reusable"] or firsts[s.run_id] is not s
               else estimate_seconds(s, measured, device)) for s in todo}
    return plan, todo, firsts, est, measured


def _progress(summary: dict, bar, remaining: dict, jobs: int):
    """The callback that counts a finished run (ran, reused, skipped or failed) and moves the bar."""
    def finished(spec, outcome):
        remaining.pop(spec, None)
        key = ("failed" if outcome.get("failed") else "skipped" if outcome.get("skipped")
               else "reused" if outcome.get("reused") else "ran")
        if key != "failed":  # failures are counted by _guard, with their message
            summary[key] += 1
        bar.set_postfix_str(f"{spec.preset} {spec.row} s{spec.seed} {outcome['wall_time_s']:.0f}s; "
                            f"est. left {sum(remaining.values()) / jobs / 60:.0f} min")
        bar.update(1)
    return finished


def _run_fresh(fresh, results_dir, work_dir, device, threads, jobs, fit_fn, owner, finished, summary, log) -> None:
    """Train the runs not finished anywhere: in this process (``jobs=1``) or a spawned process pool."""
    if jobs == 1:
        if fit_fn is None:
            _init_worker(threads)
        for spec in fresh:
            finished(spec, _guard(lambda: execute_run(spec, results_dir, work_dir, device, fit_fn, owner),
                                  spec, summary, log))
        return
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"), initializer=_init_pool_worker)
    try:
        futures = {pool.submit(_worker, s, str(results_dir), work_dir, device, threads, owner): s for s in fresh}
        for fut in as_completed(futures):
            finished(futures[fut], _guard(fut.result, futures[fut], summary, log))
    except KeyboardInterrupt:
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)


def _stop_pool(pool) -> None:
    """Cancel queued runs and stop the workers now (a run in progress keeps its last checkpoint)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # the stdlib keeps them here
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        proc.terminate()
    for proc in processes:
        proc.join(timeout=5)


def _guard(call, spec, summary, log) -> dict:
    """Run ``call``; a failing run is reported and counted as failed, and the sweep goes on
    (KeyboardInterrupt stops it)."""
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - any error of one run is reported, never hidden
        msg = f"{spec.preset} {spec.row} seed {spec.seed} ({spec.run_id}) failed: {type(exc).__name__}: {exc}"
        summary["failed"].append(msg)
        log(f"REPORT: {msg}")
        return {"wall_time_s": 0.0, "failed": True}


def _print_plan(plan, todo, est, jobs, log, measured) -> None:
    log(f"{'preset':<14} {'row':<36} {'seed':>4}  {'run id':<16}  {'methods':<40} est. s")
    done = {id(s) for s in plan["done"]}
    for spec in plan["specs"]:
        state = "done" if id(spec) in done else (f"{est[spec]:7.0f}" if spec in est else "(over --limit)")
        if spec in est and est[spec] == 0.0:
            state = "reuse"
        log(f"{spec.preset:<14} {spec.row:<36} {spec.seed:>4}  {spec.run_id:<16}  "
            f"{','.join(spec.methods)[:40]:<40} {state}")
    total = sum(est.values())
    log(f"{len(plan['specs'])} runs: {len(plan['done'])} done, {len(todo)} to run, {len(plan['corrupt'])} corrupt, "
        f"{len(plan['stale'])} stale files; estimated {total / 60:.1f} min of run time, "
        f"about {total / jobs / 60:.1f} min with {jobs} job(s) "
        f"({'measured from finished runs' if measured else 'default per-dataset costs'}).")
