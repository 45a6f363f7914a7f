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
files), this module (running and the command line), :mod:`lilaw_edu.experiments.analysis`
and :mod:`lilaw_edu.experiments.plots` (reading results back for the book).
"""
from __future__ import annotations

import argparse
import datetime
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

from lilaw_edu.experiments.presets import SWEEP_PRESETS
from lilaw_edu.experiments.plan import ALIASES, estimate_seconds, measured_costs, plan_sweep
from lilaw_edu.experiments.store import CorruptResultError, RunSpec, make_record, read_record, write_record

__all__ = ["run_sweep", "execute_run", "add_sweep_parser", "default_work_dir"]

# ------------------------------------------------------------------ running
def default_work_dir() -> Path:
    """Checkpoints of runs in progress: ``$LILAW_SWEEP_WORK`` or ``~/.cache/lilaw_edu/sweep-work``."""
    return Path(os.environ.get("LILAW_SWEEP_WORK") or Path.home() / ".cache" / "lilaw_edu" / "sweep-work")


def _provenance(started: str, wall: float) -> dict:
    """Versions, hardware, git commit and dirty flag, SHA-256 of the package source, wall time."""
    import numpy
    import sklearn
    import torch

    from lilaw_edu import __version__
    from lilaw_edu._internal import provenance
    return {"lilaw_edu": __version__, **provenance.hardware(), "numpy": numpy.__version__,
            "sklearn": sklearn.__version__, "torch_threads": torch.get_num_threads(), **provenance.git_state(),
            "source_sha256": provenance.source_sha256(), "started": started, "wall_time_s": round(wall, 3),
            "finished": provenance.utc_now()}


def execute_run(spec: RunSpec, results_dir, work_dir=None, device: str | None = None, fit_fn=None) -> dict:
    """Train one run (resuming from its checkpoints) and write its result file atomically.

    Returns
    -------
    dict
        ``run_id``, ``path``, ``wall_time_s``.
    """
    from lilaw_edu.experiments.summary import summarise_fit
    if fit_fn is None:
        from lilaw_edu.training.fit import fit as fit_fn
    config = spec.config(device)
    work = Path(work_dir or default_work_dir()) / spec.preset / spec.run_id
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    restarted = None
    try:
        results = fit_fn(config, methods=spec.methods, out_dir=work, resume=True, progress=False)
    except ValueError as exc:
        if not work.exists():
            raise
        # Checkpoints the current code cannot resume from (e.g. written by an older version):
        # start this run over once from scratch; a second failure is reported by the caller.
        restarted = f"{type(exc).__name__}: {exc}"
        shutil.rmtree(work, ignore_errors=True)
        t0 = time.perf_counter()
        results = fit_fn(config, methods=spec.methods, out_dir=work, resume=True, progress=False)
    wall = time.perf_counter() - t0
    payload = {"spec": spec.to_dict(), "config": config.to_dict(), "result": summarise_fit(results),
               "provenance": dict(_provenance(started, wall), **({"restarted_after": restarted} if restarted else {}))}
    path = Path(results_dir) / spec.preset / f"{spec.run_id}.json"
    write_record(path, make_record(spec, payload))
    shutil.rmtree(work, ignore_errors=True)
    return {"run_id": spec.run_id, "path": str(path), "wall_time_s": wall}


def _copy_run(spec: RunSpec, source: Path, results_dir) -> dict:
    payload = dict(read_record(source)["payload"])
    payload["spec"] = spec.to_dict()
    payload["provenance"] = dict(payload["provenance"], reused_from=str(source))
    path = Path(results_dir) / spec.preset / f"{spec.run_id}.json"
    write_record(path, make_record(spec, payload))
    return {"run_id": spec.run_id, "path": str(path), "wall_time_s": 0.0}


def _init_worker(threads: int) -> None:
    import torch
    torch.set_num_threads(threads)


def _worker(spec, results_dir, work_dir, device, threads):
    _init_worker(threads)
    return execute_run(spec, results_dir, work_dir, device)


def _quarantine(corrupt, results_dir, on_corrupt: str, log) -> None:
    if corrupt and on_corrupt == "error":
        raise CorruptResultError("; ".join(msg for _, msg in corrupt) +
                                 " -- remove these files or rerun with --on-corrupt rerun")
    for spec, msg in corrupt:
        path = Path(results_dir) / spec.preset / f"{spec.run_id}.json"
        log(f"REPORT: {msg}; moved to {path.name}.corrupt and scheduled to rerun")
        os.replace(path, path.with_name(path.name + ".corrupt"))


def run_sweep(presets, *, results_dir="results", work_dir=None, jobs: int = 1, threads: int | None = None,
              limit: int | None = None, device: str | None = None, seeds=None, dry_run: bool = False,
              on_corrupt: str = "rerun", fit_fn=None, progress: bool = True, log=print) -> dict:
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

    Returns
    -------
    dict
        ``total``, ``done_before``, ``ran``, ``reused``, ``corrupt`` (messages), ``failed``
        (messages), ``estimated_s``, ``stale``.
    """
    if on_corrupt not in ("rerun", "error"):
        raise ValueError(f"on_corrupt must be 'rerun' or 'error', got {on_corrupt!r}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
    if fit_fn is not None and jobs != 1:
        raise ValueError(f"fit_fn works only with jobs=1, got jobs={jobs}")
    threads = threads or max(1, (os.cpu_count() or 1) // jobs)
    plan = plan_sweep(presets, results_dir, seeds)
    measured = measured_costs(results_dir)
    todo = plan["pending"][:limit] if limit is not None else plan["pending"]
    firsts = {}
    for s in todo:  # an id seen earlier in this plan (presets sharing a row) is copied, not retrained
        firsts.setdefault(s.run_id, s)
    est = {s: (0.0 if s.run_id in plan["reusable"] or firsts[s.run_id] is not s
               else estimate_seconds(s, measured, device)) for s in todo}
    summary = {"total": len(plan["specs"]), "done_before": len(plan["done"]), "ran": 0, "reused": 0,
               "corrupt": [m for _, m in plan["corrupt"]], "failed": [], "stale": [str(p) for p in plan["stale"]],
               "estimated_s": sum(est.values()) / jobs}
    for _, msg in plan["corrupt"]:
        log(f"REPORT: {msg}")
    if dry_run:
        _print_plan(plan, todo, est, jobs, log, bool(measured))
        return summary
    _quarantine(plan["corrupt"], results_dir, on_corrupt, log)
    from tqdm.auto import tqdm
    bar = tqdm(total=len(todo), unit="run", disable=not progress, desc="sweep", dynamic_ncols=True)
    remaining = dict(est)

    def finished(spec, outcome):
        remaining.pop(spec, None)
        key = "reused" if outcome.get("reused") else "ran"
        summary[key] += 1
        bar.set_postfix_str(f"{spec.preset} {spec.row} s{spec.seed} {outcome['wall_time_s']:.0f}s; "
                            f"est. left {sum(remaining.values()) / jobs / 60:.0f} min")
        bar.update(1)

    fresh, copies = [], []
    for spec in todo:
        if spec.run_id in plan["reusable"]:
            finished(spec, {**_copy_run(spec, plan["reusable"][spec.run_id], results_dir), "reused": True})
        elif firsts[spec.run_id] is spec:
            fresh.append(spec)
        else:
            copies.append(spec)
    try:
        if jobs == 1:
            if fit_fn is None:
                _init_worker(threads)
            for spec in fresh:
                finished(spec, _guard(lambda: execute_run(spec, results_dir, work_dir, device, fit_fn),
                                      spec, summary, log))
        else:
            with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
                futures = {pool.submit(_worker, s, str(results_dir), work_dir, device, threads): s for s in fresh}
                for fut in as_completed(futures):
                    finished(futures[fut], _guard(fut.result, futures[fut], summary, log))
        for spec in copies:
            source = Path(results_dir) / firsts[spec.run_id].preset / f"{spec.run_id}.json"
            finished(spec, {**_guard(lambda: _copy_run(spec, source, results_dir), spec, summary, log),
                            "reused": True})
    finally:
        bar.close()
    return summary


def _guard(call, spec, summary, log) -> dict:
    """Run ``call``; a failing run is reported and the sweep goes on (KeyboardInterrupt stops it)."""
    try:
        return call()
    except (ValueError, RuntimeError, OSError) as exc:
        msg = f"{spec.preset} {spec.row} seed {spec.seed} ({spec.run_id}) failed: {type(exc).__name__}: {exc}"
        summary["failed"].append(msg)
        log(f"REPORT: {msg}")
        return {"wall_time_s": 0.0}


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


# ------------------------------------------------------------------ command line
def add_sweep_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``lilaw-edu sweep`` on an argparse subparsers object."""
    p = subparsers.add_parser("sweep", help="run a grid of paired runs (resumable) into results/<preset>/")
    p.add_argument("presets", nargs="*", metavar="PRESET",
                   help="sweep presets in priority order (cpu-table3, paper-table1, ..., cpu-all, paper-all)")
    p.add_argument("--list", action="store_true", help="list the sweep presets and exit")
    p.add_argument("--dry-run", action="store_true", help="list the runs and an estimated time; run nothing")
    p.add_argument("--results-dir", default="results", help="folder of result files (default: results)")
    p.add_argument("--work-dir", default=None, help="checkpoints of runs in progress (default: "
                   "$LILAW_SWEEP_WORK or ~/.cache/lilaw_edu/sweep-work)")
    p.add_argument("--jobs", type=int, default=1, help="parallel runs (default 1)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per run (default CPUs // jobs)")
    p.add_argument("--limit", type=int, default=None, help="run at most N pending runs")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None, help="override every run's device")
    p.add_argument("--seeds", default=None, help="comma list replacing every row's seeds, e.g. 0,1,2")
    p.add_argument("--on-corrupt", choices=("rerun", "error"), default="rerun",
                   help="a corrupted result file: move aside and rerun (default) or stop with an error")
    p.set_defaults(func=_sweep_command)
    return p


def _sweep_command(args) -> int:
    if args.list:
        for name, preset in SWEEP_PRESETS.items():
            n = sum(len(r["seeds"]) for r in preset["rows"])
            print(f"{name:<14} {n:>4} runs  {preset['description']}")
        print("aliases: " + ", ".join(f"{k} = {' '.join(v)}" for k, v in ALIASES.items()))
        return 0
    if args.limit is not None and args.limit < 0:
        raise ValueError(f"--limit must be >= 0, got {args.limit}")
    seeds = None
    if args.seeds:
        try:
            seeds = tuple(int(s) for s in args.seeds.split(","))
        except ValueError:
            raise ValueError(f"--seeds must be a comma list of integers, got {args.seeds!r}") from None
    sweep_run = getattr(args, "sweep_fn", run_sweep)  # --executor ray binds ray_executor.run_sweep_ray
    summary = sweep_run(args.presets, results_dir=args.results_dir, work_dir=args.work_dir, jobs=args.jobs,
                        threads=args.threads, limit=args.limit, device=args.device, seeds=seeds,
                        dry_run=args.dry_run, on_corrupt=args.on_corrupt)
    if not args.dry_run:
        print(f"sweep: {summary['ran']} ran, {summary['reused']} reused, {summary['done_before']} already done, "
              f"{len(summary['corrupt'])} corrupt reported, {len(summary['failed'])} failed "
              f"(of {summary['total']})", file=sys.stderr)
    return 1 if summary["failed"] else 0
