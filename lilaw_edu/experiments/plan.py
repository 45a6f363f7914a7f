"""Sweep planning: preset expansion, the status of every run in a results folder, cost estimates.

Used by :mod:`lilaw_edu.experiments.runner` (``lilaw-edu sweep --dry-run`` prints the plan).
"""
from __future__ import annotations

from pathlib import Path

from lilaw_edu.training.config import resolve_methods
from lilaw_edu.experiments.presets import CPU_PRIORITY, SWEEP_PRESETS
from lilaw_edu.experiments.store import CorruptResultError, RunSpec, read_record

__all__ = ["ALIASES", "resolve_presets", "expand_preset", "COST_PER_KSAMPLE_EPOCH", "measured_costs",
           "estimate_seconds", "plan_sweep"]

ALIASES = {"cpu-all": CPU_PRIORITY, "paper-all": tuple(p for p in SWEEP_PRESETS if p.startswith("paper-")),
           # tables whose numbers come from another table's runs
           "cpu-table15": ("cpu-table2",), "paper-table15": ("paper-table2",), "paper-table8": ("paper-table14",)}


def resolve_presets(names) -> list:
    """Expand aliases (``cpu-all``, ``paper-all``) and check names; ``ValueError`` lists the known ones."""
    out = []
    for name in names:
        for n in ALIASES.get(name, (name,)):
            if n not in SWEEP_PRESETS:
                raise ValueError(f"preset must be one of {sorted(SWEEP_PRESETS) + sorted(ALIASES)}, got {n!r}")
            if n not in out:
                out.append(n)
    if not out:
        raise ValueError("presets must name at least one sweep preset (see 'lilaw-edu sweep --list')")
    return out


def expand_preset(name: str, seeds=None) -> list:
    """All runs of a preset, in its priority order (rows in order, seeds within a row).

    Parameters
    ----------
    name : str
        A key of :data:`lilaw_edu.experiments.presets.SWEEP_PRESETS`.
    seeds : sequence of int, optional
        Replace every row's seeds.

    Returns
    -------
    list of RunSpec
        Configs are validated; a bad preset raises ``ValueError``.
    """
    (name,) = resolve_presets([name])
    specs = []
    for r in SWEEP_PRESETS[name]["rows"]:
        methods = resolve_methods(r["methods"])
        for seed in (r["seeds"] if seeds is None else tuple(seeds)):
            spec = RunSpec(name, r["row"], r["tables"], r["base"], tuple(sorted(r["overrides"].items())),
                           methods, int(seed))
            spec.config()  # validate now, not hours into a sweep
            specs.append(spec)
    return specs


# ------------------------------------------------------------------ planning and cost
# Seconds per 1000 training samples per epoch per method (1 CPU thread, measured on this
# project's 2-core machine under load; GPU values: rough guesses for a T4-class card).
COST_PER_KSAMPLE_EPOCH = {("cpu", "ecg5000"): 2.4, ("cpu", "digits"): 1.1, ("cpu", "breastmnist"): 3.1,
                          ("cpu", "pneumoniamnist"): 2.0, ("cpu", "cifar10-jpeg"): 5.5,
                          ("cuda", "lstm"): 0.1, ("cuda", "resnet18"): 2.0, ("cuda", "vit_b16"): 6.0}
LOAD_SECONDS = {"cifar10-jpeg": 60.0, "ecg5000": 6.0}


def _cost_key(device: str, dataset: str, model: str = "auto") -> tuple:
    if not str(device).startswith("cuda"):
        return ("cpu", dataset)
    from lilaw_edu.datasets.registry import dataset_info
    info = dataset_info(dataset)
    default = info.paper_model or info.cpu_model
    return ("cuda", default if model == "auto" else model)


def _train_size(config) -> int:
    from lilaw_edu.datasets.registry import default_train_size
    n = default_train_size(config.dataset, config.val_fraction)
    return min(n, config.max_train) if config.max_train else n


def measured_costs(results_dir) -> dict:
    """Median seconds per 1000 training samples per epoch per method, from finished runs in ``results_dir``.

    Returns
    -------
    dict
        ``(device type, dataset or model) -> seconds``, the keys of :data:`COST_PER_KSAMPLE_EPOCH`.
    """
    samples = {}
    for path in Path(results_dir).glob("*/*.json"):
        try:
            payload = read_record(path)["payload"]
            cfg, result = payload["config"], payload["result"]
            device = (result.get("environment") or {}).get("device", cfg.get("device", "cpu"))
            key = _cost_key(device, cfg["dataset"], cfg.get("model", "auto"))
            n = result["data"]["sizes"]["train"] / 1000
        except (CorruptResultError, KeyError, TypeError):
            continue
        for res in result["methods"].values():
            epochs = res["metrics"].get("epochs_run") or 0
            if epochs and n:
                samples.setdefault(key, []).append(res["wall_time_s"] / epochs / n)
    return {k: sorted(v)[len(v) // 2] for k, v in samples.items()}


def estimate_seconds(spec: RunSpec, measured: dict | None = None, device: str | None = None) -> float:
    """Estimated wall time of one run: methods x epochs x cost per epoch + data loading."""
    config = spec.config(device)
    key = _cost_key(config.device, config.dataset, config.model)
    per = (measured or {}).get(key, COST_PER_KSAMPLE_EPOCH.get(key, 5.0))
    per_epoch = max(per * _train_size(config) / 1000, 0.05)
    return len(spec.methods) * config.epochs * per_epoch + LOAD_SECONDS.get(config.dataset, 3.0)


def plan_sweep(presets, results_dir="results", seeds=None) -> dict:
    """Status of every run of ``presets`` in ``results_dir``.

    Returns
    -------
    dict
        ``specs`` (all, in order), ``done``, ``pending``, ``reusable`` (run id -> path of
        an identical finished run in another preset folder), ``corrupt`` ([(spec, message)]),
        ``stale`` (valid files in these presets' folders that no current run produces).
    """
    results_dir = Path(results_dir)
    specs = [s for p in resolve_presets(presets) for s in expand_preset(p, seeds)]
    valid_anywhere = {}
    for path in sorted(results_dir.glob("*/*.json")):
        valid_anywhere.setdefault(path.stem, []).append(path)
    out = {"specs": specs, "done": [], "pending": [], "reusable": {}, "corrupt": [], "stale": []}
    for spec in specs:
        path = results_dir / spec.preset / f"{spec.run_id}.json"
        if path.exists():
            try:
                read_record(path)
                out["done"].append(spec)
                continue
            except CorruptResultError as exc:
                out["corrupt"].append((spec, str(exc)))
        out["pending"].append(spec)
        for other in valid_anywhere.get(spec.run_id, []):
            if other != path:
                try:
                    read_record(other)
                    out["reusable"][spec.run_id] = other
                    break
                except CorruptResultError:
                    pass
    wanted = {(s.preset, s.run_id) for s in specs}
    for preset in {s.preset for s in specs}:
        out["stale"] += [p for p in sorted((results_dir / preset).glob("*.json")) if (preset, p.stem) not in wanted]
    return out
