"""The ``lilaw-edu sweep`` command line: options, argument checks, the summary line.

Running is :func:`lilaw_edu.experiments.runner.run_sweep` (or, with ``--executor ray``,
:func:`lilaw_edu.experiments.ray_executor.run_sweep_ray`).
"""
from __future__ import annotations

import argparse
import functools
import sys

from lilaw_edu.experiments.plan import ALIASES
from lilaw_edu.experiments.presets import SWEEP_PRESETS
from lilaw_edu.experiments.runner import check_clean_tree, run_sweep

__all__ = ["add_sweep_parser"]


def add_sweep_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``lilaw-edu sweep`` on an argparse subparsers object."""
    p = subparsers.add_parser("sweep", help="run a grid of paired runs (resumable) into results/<preset>/",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                              epilog=f"presets: {', '.join(SWEEP_PRESETS)}; aliases: {', '.join(ALIASES)}")
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
    p.add_argument("--allow-dirty", action="store_true",
                   help="write records although lilaw_edu/ has uncommitted changes (records say git_dirty)")
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
    for flag, value in (("--results-dir", args.results_dir), ("--work-dir", args.work_dir)):
        if value is not None and not value.strip():
            raise ValueError(f"{flag} must name a folder, got {value!r}")
    seeds = None
    if args.seeds is not None:
        try:
            seeds = tuple(int(s) for s in args.seeds.split(","))
        except ValueError:
            raise ValueError(f"--seeds must be a comma list of integers >= 0, got {args.seeds!r}") from None
        if any(s < 0 for s in seeds):
            raise ValueError(f"--seeds must be a comma list of integers >= 0, got {args.seeds!r}")
    sweep_run = getattr(args, "sweep_fn", None)  # --executor ray binds ray_executor.run_sweep_ray
    if sweep_run is None:
        sweep_run = functools.partial(run_sweep, allow_dirty=args.allow_dirty)
    elif not args.dry_run:
        check_clean_tree(args.allow_dirty)
    summary = sweep_run(args.presets, results_dir=args.results_dir, work_dir=args.work_dir, jobs=args.jobs,
                        threads=args.threads, limit=args.limit, device=args.device, seeds=seeds,
                        dry_run=args.dry_run, on_corrupt=args.on_corrupt)
    if not args.dry_run:
        print(f"sweep: {summary['ran']} ran, {summary['reused']} reused, {summary.get('skipped', 0)} claimed by "
              f"another sweep, {summary['done_before']} already done, {len(summary['corrupt'])} corrupt reported, "
              f"{len(summary['failed'])} failed (of {summary['total']})", file=sys.stderr)
    return 1 if summary["failed"] else 0
