#!/usr/bin/env python
"""How much does LiLAW cost per epoch, next to its one-forward-pass limit? (issues 6 and 13)

For three workloads (stacked LSTM on ECG5000, small CNN on 28x28 images, ResNet-18
on 32x32 images) this times one training epoch of five variants, interleaved
round-robin in one process (same initial weights, data, batch order and batch size),
and takes the median over ``--repeats`` epochs after one untimed warm-up epoch each:

1. baseline (plain cross-entropy, Adam);
2. LiLAW as implemented (validation forward without the network's graph, every step);
3. ``graph_through_network``: a naive meta step that back-propagates the validation loss
   through the network (not Algorithm 1 as printed, which costs one forward);
4. the limit: the baseline plus one no-grad forward pass of a validation batch per step;
5. ``lilaw-cheap``: LiLAW with the cheaper meta step of issue 13 (goal: <= 1.10x the baseline).

``--frontier`` adds the other meta schedules of the ``cpu-cheap-meta`` sweep; ``--exclude``
leaves out optional variants; ``--skip loader,scaling`` leaves out the extra measurements.

Peak memory is measured per variant in a fresh child process. It also compares
the device-resident input path with a standard ``DataLoader`` and times epochs at
N, 2N and 4N training samples. Prints one table, writes
``<out>/<device>-<date>.json`` and exits 0 when every goal is met, 3 when a goal is
missed (the table says which), 1 on a crash, 2 on bad arguments.

Usage::

    python benchmarks/overhead.py                 # full run (about 12 min on this 2-core machine)
    python benchmarks/overhead.py --quick --out /tmp/bench   # tiny sizes, seconds
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from benchmarks.memory import measure_peak_memory  # noqa: E402
from benchmarks.report import check_goals, device_label, format_table, machine_details, write_json  # noqa: E402
from benchmarks.variants import CHEAP, FRONTIER_VARIANTS, PEER_VARIANTS, VARIANTS, VariantRunner  # noqa: E402
from benchmarks.workloads import SIZES, WORKLOAD_NAMES, init_state, load_workload  # noqa: E402

EXIT_OK, EXIT_CRASH, EXIT_BAD_ARGS, EXIT_GOAL_MISSED = 0, 1, 2, 3
OPTIONAL_VARIANTS = ("graph_through_network",)  # the goals need the others
LOADER_WORKLOAD = SCALING_WORKLOAD = "small_cnn_28"
DATALOADER_DESCRIPTION = ("DataLoader(TensorDataset(x, y), shuffle=True, num_workers=0, default collate), "
                          "host tensors copied to the device per batch")


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 repeat, 1 memory epoch (for tests)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results",
                        help="folder for the JSON result (default: benchmarks/results)")
    parser.add_argument("--repeats", type=int, default=None, help="timed epochs per variant (default 7; quick 1)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"), help="default: cpu")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: torch's default, all cores)")
    parser.add_argument("--memory-epochs", type=int, default=None,
                        help="epochs trained in each memory child (default 2; quick 1)")
    parser.add_argument("--synthetic", action="store_true", help="synthetic data even where real data exist")
    parser.add_argument("--workloads", default=",".join(WORKLOAD_NAMES),
                        help=f"comma list from {','.join(WORKLOAD_NAMES)} (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--peers", action="store_true",
                        help=f"also time LiLAW's relatives ({', '.join(PEER_VARIANTS)}; issue 11) in the same rounds")
    parser.add_argument("--frontier", action="store_true",
                        help=f"also time {', '.join(FRONTIER_VARIANTS)} (issue 13: the time/accuracy frontier)")
    parser.add_argument("--exclude", default="", help=f"comma list of optional variants to leave out, from "
                        f"{','.join(OPTIONAL_VARIANTS)} (default: none)")
    parser.add_argument("--skip", default="", help="comma list of extra measurements to leave out, from "
                        "loader,scaling (default: none)")
    args = parser.parse_args(argv)
    args.exclude, args.skip = _comma_list(args.exclude), _comma_list(args.skip)
    if set(args.exclude) - set(OPTIONAL_VARIANTS) or set(args.skip) - {"loader", "scaling"}:
        parser.error(f"--exclude takes variants from {','.join(OPTIONAL_VARIANTS)} and --skip from loader,scaling, "
                     f"got --exclude {','.join(args.exclude) or '(none)'} --skip {','.join(args.skip) or '(none)'}")
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    bad = [w for w in args.workloads if w not in WORKLOAD_NAMES]
    if bad or not args.workloads:
        parser.error(f"--workloads must be a non-empty comma list from {WORKLOAD_NAMES}, got {bad or 'nothing'}")
    args.variants = tuple(v for v in VARIANTS + (FRONTIER_VARIANTS if args.frontier else ())
                          + (PEER_VARIANTS if args.peers else ()) if v not in args.exclude)
    args.repeats = args.repeats if args.repeats is not None else (1 if args.quick else 7)
    args.memory_epochs = args.memory_epochs if args.memory_epochs is not None else (1 if args.quick else 2)
    for name in ("repeats", "memory_epochs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA GPU is available; use --device cpu")
    return args


def _comma_list(text: str) -> list:
    return [item.strip() for item in text.split(",") if item.strip()]


def summarize(seconds: list) -> dict:
    """``{"median": float, "all": [float, ...]}`` (seconds)."""
    return {"median": statistics.median(seconds), "all": [round(s, 6) for s in seconds]}


def time_interleaved(runners: dict, repeats: int, bar) -> dict:
    """One untimed warm-up epoch per runner, then ``repeats`` rounds, each runner once per round.

    The order rotates every round so that no runner always follows the same one.

    Returns
    -------
    wall, cpu : dict
        Runner name -> list of epoch wall-clock / process-CPU times in seconds (length ``repeats``).
    """
    names = list(runners)
    for name in names:
        bar.set_postfix_str(f"warm-up {name}")
        runners[name].run_epoch()
        bar.update(1)
    wall, cpu = {name: [] for name in names}, {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            bar.set_postfix_str(f"round {r + 1}/{repeats} {name}")
            w, c = runners[name].run_epoch()
            wall[name].append(w)
            cpu[name].append(c)
            bar.update(1)
    return wall, cpu


def bench_workload(name: str, args, device: torch.device, bar) -> dict:
    """Epoch times and peak memory of the four variants on one workload."""
    bar.set_description(name)
    load_start = list(os.getloadavg())
    workload = load_workload(name, "quick" if args.quick else "full", seed=args.seed, synthetic=args.synthetic)
    state = init_state(workload, args.seed)
    runners = {v: VariantRunner(v, workload, state, device, seed=args.seed) for v in args.variants}
    steps = len(runners["baseline"].train)
    params = sum(p.numel() for p in runners["baseline"].model.parameters())
    times, cpu_times = time_interleaved(runners, args.repeats, bar)
    del runners
    epoch_seconds = {v: summarize(times[v]) for v in args.variants}
    cpu_seconds = {v: summarize(cpu_times[v]) for v in args.variants}
    base, cpu_base = epoch_seconds["baseline"]["median"], cpu_seconds["baseline"]["median"]
    memory = {}
    for v in args.variants:
        bar.set_postfix_str(f"memory {v}")
        memory[v] = measure_peak_memory(workload, state, v, device, epochs=args.memory_epochs,
                                        threads=torch.get_num_threads(), seed=args.seed)
        bar.update(1)
    metric = "cuda_max_allocated_mib" if device.type == "cuda" else "peak_rss_mib"
    return {"model": workload.model_name, "dataset": workload.dataset, "data": workload.data,
            "data_notes": workload.notes, "n_train": len(workload.y_train), "n_val": len(workload.y_val),
            "batch_size": workload.batch_size, "val_batch_size": workload.batch_size, "steps_per_epoch": steps,
            "meta_settings": {v: _meta_settings(v, workload.batch_size) for v in args.variants
                              if v.startswith("lilaw")},
            "load_average_start": load_start, "load_average_end": list(os.getloadavg()),
            "parameters": params, "epoch_seconds": epoch_seconds,
            "ratios": {v: epoch_seconds[v]["median"] / base for v in args.variants if v != "baseline"},
            "cpu_seconds": cpu_seconds,
            "cpu_ratios": {v: cpu_seconds[v]["median"] / cpu_base for v in args.variants if v != "baseline"},
            "memory_metric": metric, "memory": memory,
            "memory_ratios": {v: memory[v][metric] / memory["baseline"][metric]
                              for v in args.variants if v != "baseline"}}


def _meta_settings(variant: str, batch_size: int) -> dict:
    """k, r, the meta lr factor and the validation batch size of a LiLAW variant (issue 13)."""
    from lilaw_edu.training.config import config_from_preset, method_overrides
    from lilaw_edu.training.meta_schedule import meta_val_batch_size

    c = config_from_preset(None, batch_size=batch_size, **method_overrides(variant))
    return {"meta_every": c.meta_every, "meta_val_divisor": c.meta_val_divisor,
            "meta_lr_factor": c.meta_every if c.meta_lr_scale_with_k else 1,
            "val_batch_size": meta_val_batch_size(c)}


def bench_loader(args, device: torch.device, bar) -> dict:
    """Samples/s of the baseline step fed by ``engine.Batches`` (resident) vs a standard DataLoader."""
    bar.set_description("input path")
    workload = load_workload(LOADER_WORKLOAD, "quick" if args.quick else "full", seed=args.seed,
                             synthetic=args.synthetic)
    state = init_state(workload, args.seed)
    runners = {loader: VariantRunner("baseline", workload, state, device, loader=loader, seed=args.seed)
               for loader in ("resident", "dataloader")}
    times, cpu_times = time_interleaved(runners, args.repeats, bar)
    n = len(workload.y_train)
    rates = {k: n / statistics.median(v) for k, v in times.items()}
    return {"workload": LOADER_WORKLOAD, "data": workload.data, "n_train": n, "batch_size": workload.batch_size,
            "step": "baseline", "dataloader": DATALOADER_DESCRIPTION,
            "resident": "lilaw_edu.training.engine.Batches(resident=True): tensors on the device, randperm + slicing",
            "epoch_seconds": {k: summarize(v) for k, v in times.items()},
            "cpu_seconds": {k: summarize(v) for k, v in cpu_times.items()},
            "resident_samples_per_s": rates["resident"], "dataloader_samples_per_s": rates["dataloader"],
            "speedup": rates["resident"] / rates["dataloader"]}


def bench_scaling(args, device: torch.device, bar) -> dict:
    """Median epoch time of LiLAW (as implemented) at N, 2N and 4N training samples."""
    bar.set_description("scaling")
    scale = "quick" if args.quick else "full"
    n = SIZES[scale][SCALING_WORKLOAD][0]
    full = load_workload(SCALING_WORKLOAD, scale, seed=args.seed, n_train=4 * n, synthetic=args.synthetic)
    state = init_state(full, args.seed)
    runners = {k * n: VariantRunner("lilaw", full.subset(k * n), state, device, seed=args.seed) for k in (1, 2, 4)}
    times, _ = time_interleaved(runners, args.repeats, bar)
    medians = [statistics.median(times[k * n]) for k in (1, 2, 4)]
    return {"workload": SCALING_WORKLOAD, "data": full.data, "variant": "lilaw", "n_train": [n, 2 * n, 4 * n],
            "batch_size": full.batch_size, "epoch_seconds": medians,
            "epoch_seconds_all": [times[k * n] for k in (1, 2, 4)],
            "per_sample_time_vs_n": [m / (k * medians[0]) for m, k in zip(medians, (1, 2, 4))]}


def main(argv=None) -> int:
    """Run everything, print the table, write the JSON; return the exit status."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    results = {"schema": 1, "benchmark": "benchmarks/overhead.py (issues 6, 13)", "quick": args.quick,
               "device": device_label(device), "machine": machine_details(device, REPO),
               "settings": {"repeats": args.repeats, "memory_epochs": args.memory_epochs, "seed": args.seed,
                            "variants": list(args.variants), "cheap": CHEAP, "skipped": args.skip,
                            "timing": "median epoch wall time after 1 warm-up epoch, "
                            "variants interleaved round-robin (rotating order) in one process; cpu_seconds: "
                            "time.process_time of the same epochs (all threads; informative, no goal)"},
               "workloads": {}}
    per_round = len(args.variants) * (1 + args.repeats) + len(args.variants)
    total = len(args.workloads) * per_round + (2 * ("loader" not in args.skip) + 3 * ("scaling" not in args.skip)) \
        * (1 + args.repeats)
    with tqdm(total=total, unit="epoch", dynamic_ncols=True, file=sys.stderr) as bar:
        for name in args.workloads:
            results["workloads"][name] = bench_workload(name, args, device, bar)
        results["loader"] = bench_loader(args, device, bar) if "loader" not in args.skip else None
        results["scaling"] = bench_scaling(args, device, bar) if "scaling" not in args.skip else None
    results["machine"]["load_average_end"] = list(os.getloadavg())
    results["goals"] = check_goals(results, device.type)
    results["all_goals_met"] = all(g["met"] for g in results["goals"])
    print(format_table(results))
    path = write_json(results, args.out, results["device"], args.quick)
    print(f"\nwrote {path}")
    missed = [g["name"] for g in results["goals"] if not g["met"]]
    if missed:
        print(f"{len(missed)} goal(s) missed: " + "; ".join(missed))
        return EXIT_GOAL_MISSED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
