"""Sweeps on a Ray cluster: ``lilaw-edu sweep PRESET --executor ray``.

Every pending run of the plan (:func:`lilaw_edu.experiments.plan.plan_sweep`) becomes one
Ray task that asks for ``--gpus-per-run`` GPUs and ``--cpus-per-run`` CPUs; Ray's
scheduler places it. The task trains with the local runner's
:func:`~lilaw_edu.experiments.runner.execute_run` into a staging folder on the worker,
validates the record with :func:`~lilaw_edu.experiments.store.read_record` and returns it;
the **driver** is the only writer of ``<results_dir>/<preset>/<run_id>.json``
(:func:`~lilaw_edu.experiments.store.write_record`: temporary file, fsync,
``os.replace``). So records are written exactly once whether ``results_dir`` is local to
the driver or on shared storage, and never by two workers.

* **resume**: a killed driver restarted with the same command skips every run whose
  file exists and validates (the plan) and resubmits the rest; a run's checkpoints live
  in the work folder of the node that ran it, so a resubmitted run placed there resumes.
* **one driver per results folder and preset**: the driver does not take the local runner's
  lock files (a lock left by a driver killed on another host, e.g. a SLURM job that hit
  its time limit, would block the resubmitted job); it never overwrites a valid record.
* **failures**: a task that raises (or whose worker dies) is resubmitted once; a second
  failure is reported with its error, counted in ``failed`` and never written.
* **Ctrl-C**: outstanding tasks are cancelled (``ray.cancel(force=True)``) and
  ``KeyboardInterrupt`` propagates.
* **progress**: a tqdm bar with runs done / running / failed and an ETA from the plan's
  cost model (:func:`~lilaw_edu.experiments.plan.estimate_seconds`) divided by the runs
  the cluster holds at once; ``--dry-run`` prints the plan with estimated GPU-hours.

Ray is optional (``pip install 'lilaw-edu[ray]'``) and imported only inside functions.
"""
from __future__ import annotations

import functools
import math
import os
import tempfile
import time
from pathlib import Path

from lilaw_edu.experiments.plan import estimate_seconds, measured_costs, plan_sweep
from lilaw_edu.experiments.runner import _copy_run, _print_plan, _quarantine, execute_run
from lilaw_edu.experiments.store import CorruptResultError, read_record, write_record

__all__ = ["RETRIES", "run_task", "cluster_slots", "run_sweep_ray", "add_executor_options"]

RETRIES = 1  # a failed run is resubmitted this many times before it counts as failed


def _require_ray():
    try:
        import ray
    except ImportError:
        raise ValueError("--executor ray needs Ray, which is not installed: "
                         "pip install 'lilaw-edu[ray]' (or pip install 'ray[default]>=2.9')") from None
    return ray


# ------------------------------------------------------------------ the task (runs on a worker)
def run_task(spec, work_dir, device, threads, fit_fn=None) -> dict:
    """Train one run on this worker and return its validated record (nothing written to ``results_dir``).

    Parameters
    ----------
    spec : RunSpec
    work_dir : path-like or None
        Checkpoints of the run in progress (None: the worker's default work folder).
    device : str
    threads : int
        ``torch.set_num_threads`` for this task.
    fit_fn : callable, optional
        Replaces :func:`lilaw_edu.training.fit.fit` (tests).

    Returns
    -------
    dict
        The record, as :func:`~lilaw_edu.experiments.store.read_record` returns it.
    """
    import torch
    torch.set_num_threads(max(1, int(threads)))
    with tempfile.TemporaryDirectory(prefix="lilaw-ray-stage-") as staging:
        out = execute_run(spec, staging, work_dir, device, fit_fn)
        return read_record(out["path"])


# ------------------------------------------------------------------ the cluster
def _connect(ray, address) -> bool:
    """``ray.init`` unless already connected; True when this call connected (and must shut down)."""
    if ray.is_initialized():
        return False
    ray.init(address=address, ignore_reinit_error=True, log_to_driver=True, include_dashboard=False,
             configure_logging=True, logging_level="WARNING")
    return True


def cluster_slots(resources: dict, gpus_per_run: float, cpus_per_run: float) -> int:
    """How many runs fit on a cluster at once.

    Parameters
    ----------
    resources : dict
        ``ray.cluster_resources()`` (``"CPU"``, ``"GPU"`` totals).
    gpus_per_run, cpus_per_run : float

    Returns
    -------
    int
        ``min(CPU // cpus_per_run, GPU // gpus_per_run)`` (GPUs ignored when ``gpus_per_run`` is 0).
    """
    slots = math.floor(resources.get("CPU", 0) / cpus_per_run + 1e-9)
    if gpus_per_run > 0:
        slots = min(slots, math.floor(resources.get("GPU", 0) / gpus_per_run + 1e-9))
    return int(slots)


def _local_resources() -> dict:
    """What a local Ray started here would report (dry runs without ``--address`` start no cluster)."""
    import torch
    return {"CPU": float(os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())}


def _resources(address, dry_run: bool):
    """(ray module or None, cluster resources, where they come from, whether we connected).

    A dry run without ``--address``/``$RAY_ADDRESS`` uses an already-initialised Ray or else
    describes this machine, and never starts a cluster.
    """
    if dry_run and not (address or os.environ.get("RAY_ADDRESS")):
        try:
            import ray
        except ImportError:
            ray = None
        if ray is None or not ray.is_initialized():
            return None, _local_resources(), "this machine; pass --address for a cluster", False
        return ray, ray.cluster_resources(), "connected", False
    ray = _require_ray()
    started = _connect(ray, address)
    return ray, ray.cluster_resources(), "connected", started


def _check_options(jobs, gpus_per_run, cpus_per_run, on_corrupt) -> None:
    if jobs != 1:
        raise ValueError(f"--jobs applies to --executor local, got --jobs {jobs} with --executor ray; Ray runs "
                         f"as many runs at once as the cluster holds (see --gpus-per-run, --cpus-per-run)")
    for name, value, low in (("gpus_per_run", gpus_per_run, 0.0), ("cpus_per_run", cpus_per_run, 1e-9)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= low \
                or not math.isfinite(value):
            raise ValueError(f"{name} must be a number {'>= 0' if low == 0 else '> 0'}, got {value!r}")
    if on_corrupt not in ("rerun", "error"):
        raise ValueError(f"on_corrupt must be 'rerun' or 'error', got {on_corrupt!r}")


def _fmt_hours(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def _print_cluster(resources, slots, gpus_per_run, cpus_per_run, est, log, source) -> None:
    total = sum(est.values())
    fit = (f"{slots} run(s) at once" if slots else "no run fits (too few CPUs/GPUs for one run)")
    log(f"cluster ({source}): {resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs; "
        f"{gpus_per_run:g} GPU + {cpus_per_run:g} CPU per run -> {fit}. Estimated "
        f"{total * gpus_per_run / 3600:.2f} GPU-hours, {total * cpus_per_run / 3600:.2f} CPU-hours"
        + (f", about {_fmt_hours(total / slots)} of wall time." if slots else "."))


# ------------------------------------------------------------------ the driver
def _store(record: dict, spec, results_dir) -> None:
    """Write a returned record once; an existing valid file (another driver's) is left alone."""
    if record.get("run_id") != spec.run_id:
        raise CorruptResultError(f"task for run {spec.run_id} returned a record of run {record.get('run_id')}")
    path = Path(results_dir) / spec.preset / f"{spec.run_id}.json"
    try:
        read_record(path)
        return
    except (CorruptResultError, FileNotFoundError):
        pass
    write_record(path, record)
    read_record(path)


def _error_text(exc) -> str:
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[-1] if lines else ''}".strip()


class _Bar:
    """tqdm bar: runs done / running / failed, ETA from the cost model over the cluster's slots."""

    def __init__(self, total, est, slots, progress):
        from tqdm.auto import tqdm
        self.bar = tqdm(total=total, unit="run", disable=not progress, desc="sweep[ray]", dynamic_ncols=True)
        self.est, self.slots, self.failed = dict(est), max(1, slots), 0

    def refresh(self, running: dict, queued) -> None:
        now = time.perf_counter()
        left = sum(max(self.est[s] - (now - t0), 0.0) for s, t0 in running.values()) + \
            sum(self.est[s] for s in queued)
        self.bar.set_postfix_str(f"done {self.bar.n - self.failed} running {len(running)} failed {self.failed}; "
                                 f"ETA {_fmt_hours(left / self.slots)}")

    def step(self, failed: bool = False) -> None:
        self.failed += bool(failed)
        self.bar.update(1)


def _drive(ray, fresh, submit, slots_now, summary, bar, results_dir, log) -> None:
    """Keep at most ``slots_now()`` tasks in flight; store results, retry once, cancel on Ctrl-C."""
    queue, running = list(fresh), {}          # running: ref -> (spec, start time), attempts per spec
    attempts = {}
    try:
        while queue or running:
            while queue and len(running) < max(1, slots_now()):
                spec = queue.pop(0)
                attempts[spec] = attempts.get(spec, 0) + 1
                running[submit(spec)] = (spec, time.perf_counter())
            bar.refresh(running, queue)
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            for ref in ready:
                spec, _ = running.pop(ref)
                try:
                    _store(ray.get(ref), spec, results_dir)
                except (ray.exceptions.RayError, ValueError, RuntimeError, OSError) as exc:
                    what = f"{spec.preset} {spec.row} seed {spec.seed} ({spec.run_id})"
                    if attempts[spec] <= RETRIES:
                        log(f"REPORT: {what} failed ({_error_text(exc)}); retrying once")
                        queue.insert(0, spec)
                        continue
                    msg = f"{what} failed after {attempts[spec]} attempts: {_error_text(exc)}"
                    summary["failed"].append(msg)
                    log(f"REPORT: {msg}")
                    bar.step(failed=True)
                    continue
                summary["ran"] += 1
                bar.step()
        bar.refresh(running, queue)
    except KeyboardInterrupt:
        for ref in running:
            ray.cancel(ref, force=True)
        log(f"sweep[ray]: interrupted; cancelled {len(running)} running task(s), {len(queue)} not started; "
            f"rerun the same command to continue")
        raise


def _partition(plan, todo):
    """(fresh runs, copies of a run earlier in this plan, runs reusable from another preset's file)."""
    firsts = {}
    for s in todo:
        firsts.setdefault(s.run_id, s)
    fresh = [s for s in todo if s.run_id not in plan["reusable"] and firsts[s.run_id] is s]
    copies = [(s, firsts[s.run_id]) for s in todo if s.run_id not in plan["reusable"] and firsts[s.run_id] is not s]
    reuse = [s for s in todo if s.run_id in plan["reusable"]]
    return fresh, copies, reuse


def _copy_all(copies, reuse, plan, results_dir, summary, log) -> None:
    jobs = [(s, plan["reusable"][s.run_id]) for s in reuse]
    jobs += [(s, Path(results_dir) / first.preset / f"{s.run_id}.json") for s, first in copies]
    for spec, source in jobs:
        try:
            _copy_run(spec, source, results_dir)
            summary["reused"] += 1
        except (ValueError, OSError) as exc:
            msg = f"{spec.preset} {spec.row} seed {spec.seed} ({spec.run_id}) not copied: {_error_text(exc)}"
            summary["failed"].append(msg)
            log(f"REPORT: {msg}")


def run_sweep_ray(presets, *, results_dir="results", work_dir=None, jobs: int = 1, threads: int | None = None,
                  limit: int | None = None, device: str | None = None, seeds=None, dry_run: bool = False,
                  on_corrupt: str = "rerun", fit_fn=None, progress: bool = True, log=print, address=None,
                  gpus_per_run: float = 0, cpus_per_run: float = 1) -> dict:
    """Run (or, with ``dry_run``, list) every pending run of ``presets`` as Ray tasks.

    Parameters are those of :func:`lilaw_edu.experiments.runner.run_sweep`, plus:

    address : str, optional
        Ray cluster address (``ray.init(address=...)``; None: ``$RAY_ADDRESS`` or a new
        local Ray). Ignored when Ray is already initialised in this process.
    gpus_per_run, cpus_per_run : float
        Resources each task asks for. ``device`` defaults to ``"cuda"`` when
        ``gpus_per_run > 0``, else ``"cpu"``; ``threads`` to ``cpus_per_run``.
    jobs : int
        Must be 1 (concurrency is set by the cluster).

    Returns
    -------
    dict
        As :func:`~lilaw_edu.experiments.runner.run_sweep`, plus ``slots`` (runs at once),
        ``gpu_hours`` (estimated) and ``executor`` (``"ray"``).
    """
    _check_options(jobs, gpus_per_run, cpus_per_run, on_corrupt)
    device = device or ("cuda" if gpus_per_run > 0 else "cpu")
    threads = threads or max(1, int(cpus_per_run))
    plan = plan_sweep(presets, results_dir, seeds)
    measured = measured_costs(results_dir)
    todo = plan["pending"][:limit] if limit is not None else plan["pending"]
    fresh, copies, reuse = _partition(plan, todo)
    est = {s: (estimate_seconds(s, measured, device) if s in fresh else 0.0) for s in todo}
    summary = {"executor": "ray", "total": len(plan["specs"]), "done_before": len(plan["done"]), "ran": 0,
               "reused": 0, "skipped": 0, "corrupt": [m for _, m in plan["corrupt"]], "failed": [],
               "stale": [str(p) for p in plan["stale"]], "gpu_hours": sum(est.values()) * gpus_per_run / 3600}
    for _, msg in plan["corrupt"]:
        log(f"REPORT: {msg}")
    ray, resources, source, started = _resources(address, dry_run)
    try:
        slots = cluster_slots(resources, gpus_per_run, cpus_per_run)
        summary.update(slots=slots, estimated_s=sum(est.values()) / max(1, slots))
        if dry_run:
            _print_plan(plan, todo, est, max(1, slots), log, bool(measured))
            _print_cluster(resources, slots, gpus_per_run, cpus_per_run, est, log, source)
            return summary
        if fresh and slots < 1:
            raise ValueError(f"no run fits on the cluster ({resources.get('CPU', 0):g} CPUs, "
                             f"{resources.get('GPU', 0):g} GPUs) with --gpus-per-run {gpus_per_run:g} "
                             f"--cpus-per-run {cpus_per_run:g}")
        _quarantine(plan["corrupt"], results_dir, on_corrupt, log)
        task = ray.remote(run_task).options(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)
        submit = functools.partial(_submit, task, work_dir=work_dir, device=device, threads=threads, fit_fn=fit_fn)
        slots_now = lambda: cluster_slots(ray.cluster_resources(), gpus_per_run, cpus_per_run)  # noqa: E731
        bar = _Bar(len(todo), est, slots, progress)
        try:
            _drive(ray, fresh, submit, slots_now, summary, bar, results_dir, log)
            _copy_all(copies, reuse, plan, results_dir, summary, log)
            bar.bar.update(len(copies) + len(reuse))
        finally:
            bar.bar.close()
        return summary
    finally:
        if started:
            ray.shutdown()


def _submit(task, spec, *, work_dir, device, threads, fit_fn):
    return task.remote(spec, None if work_dir is None else str(work_dir), device, threads, fit_fn)


# ------------------------------------------------------------------ command line
def add_executor_options(parser) -> None:
    """Add ``--executor``, ``--address``, ``--gpus-per-run``, ``--cpus-per-run`` to ``lilaw-edu sweep``.

    With ``--executor ray`` the parsed arguments get ``sweep_fn`` (this module's
    :func:`run_sweep_ray` with the Ray options bound), which the sweep command calls
    instead of the local :func:`~lilaw_edu.experiments.runner.run_sweep`.
    """
    parser.add_argument("--executor", choices=("local", "ray"), default="local",
                        help="'local': this machine, --jobs processes; 'ray': one Ray task per run")
    parser.add_argument("--address", default=None,
                        help="Ray cluster address, e.g. 10.0.0.1:6379 or 'auto'; none: $RAY_ADDRESS, else a "
                             "local Ray")
    parser.add_argument("--gpus-per-run", type=float, default=0.0, help="GPUs per run with --executor ray "
                        "(> 0 makes --device default to cuda)")
    parser.add_argument("--cpus-per-run", type=float, default=1.0, help="CPUs per run with --executor ray "
                        "(also the torch threads of the run)")
    local = parser.get_default("func")

    def dispatch(args):
        if args.executor == "ray":
            args.sweep_fn = functools.partial(run_sweep_ray, address=args.address,
                                              gpus_per_run=args.gpus_per_run, cpus_per_run=args.cpus_per_run)
        elif args.address is not None or args.gpus_per_run or args.cpus_per_run != 1.0:
            raise ValueError("--address, --gpus-per-run and --cpus-per-run need --executor ray")
        return local(args)

    parser.set_defaults(func=dispatch)
