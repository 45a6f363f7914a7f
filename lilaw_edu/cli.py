"""The ``lilaw-edu`` command (also ``python -m lilaw_edu``).

Examples
--------
lilaw-edu run --dataset ecg5000 --noise uniform --rate 0.3 --seed 0 --method both --out runs/ecg
lilaw-edu run --preset cpu-digits --noise uniform --rate 0.4 --method baseline,lilaw,lilaw-frozen --out runs/d
lilaw-edu run --preset cpu-ecg5000 --out runs/ecg --resume      # continue after an interruption
lilaw-edu datasets                                               # what is known and what is on disk

Bad input (unknown dataset, noise kind, preset or method, rate outside [0, 1],
missing or corrupted data, unwritable output folder, ``--device cuda`` without a
GPU) prints one line ``lilaw-edu: error: ...`` to stderr and exits with status 2,
before anything is written. Set ``LILAW_DEBUG=1`` to see the traceback instead.
Other subcommands (``sweep``) register through ``add_sweep_parser(subparsers)`` in
``lilaw_edu/sweep.py`` and set ``func`` with ``set_defaults(func=...)``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

__all__ = ["main", "build_parser", "CLIError"]

PROG = "lilaw-edu"


class CLIError(Exception):
    """Bad command-line input; reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as a single line (no usage block)."""

    def error(self, message):  # noqa: D401 - argparse API
        raise CLIError(f"{message} (see '{self.prog} --help')")


def _fail(message: str) -> int:
    one_line = " ".join(str(message).split())
    print(f"{PROG}: error: {one_line}", file=sys.stderr)
    return 2


# ------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    """The argument parser with the ``run`` and ``datasets`` subcommands (and ``sweep`` when installed)."""
    parser = _Parser(prog=PROG, description="LiLAW vs plain training on noisy labels, paired and reproducible.")
    sub = parser.add_subparsers(dest="command", metavar="{run,datasets,...}", parser_class=_Parser)
    sub.required = True
    run = sub.add_parser("run", help="train baseline and LiLAW (paired) and write results.json")
    run.add_argument("--preset", help="named settings, e.g. cpu-ecg5000, cpu-digits, paper-cifar")
    run.add_argument("--dataset", help="dataset name (see 'lilaw-edu datasets')")
    run.add_argument("--noise", help="'none' or a noise kind, e.g. uniform, asymmetric, adjacent, instance")
    run.add_argument("--rate", type=float, help="fraction of samples corrupted, in [0, 1]")
    run.add_argument("--seed", type=int, help="seed of split, noise, initial weights and batch order")
    run.add_argument("--method", default="both",
                     help="'both' (baseline and lilaw), one method, or a comma list, e.g. baseline,lilaw,gce")
    run.add_argument("--out", required=True, help="output folder (results.json, table.txt, curves.png, checkpoints)")
    run.add_argument("--data-dir", help="folder searched first for data files")
    run.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where to train")
    run.add_argument("--epochs", type=int, help="number of epochs")
    run.add_argument("--batch-size", type=int, help="training batch size")
    run.add_argument("--lr", type=float, help="learning rate")
    run.add_argument("--max-train", type=int, help="subsample the training split to this many samples")
    run.add_argument("--clean-val", action="store_true", default=None, help="do not corrupt the validation split")
    run.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                     help="any TrainConfig field, e.g. --set patience=10 --set active=ab (repeatable)")
    run.add_argument("--resume", action="store_true", help="continue from the checkpoints in --out")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    ds = sub.add_parser("datasets", help="list datasets and whether their files are available locally")
    ds.add_argument("--data-dir", help="folder searched first for data files")
    try:
        from lilaw_edu.experiments.runner import add_sweep_parser
    except ImportError:
        add_sweep_parser = None
    if add_sweep_parser is not None:
        add_sweep_parser(sub)
    return parser


# ------------------------------------------------------------------ run
def _parse_sets(items) -> dict:
    values = {}
    for item in items:
        if "=" not in item:
            raise CLIError(f"--set expects FIELD=VALUE, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            values[key.strip().replace("-", "_")] = json.loads(raw)
        except json.JSONDecodeError:
            values[key.strip().replace("-", "_")] = raw
    return values


def _config_from_args(args):
    from lilaw_edu.training.config import config_from_preset, resolve_methods

    overrides = _parse_sets(args.set)
    overrides.update({k: v for k, v in dict(dataset=args.dataset, noise=args.noise, rate=args.rate, seed=args.seed,
                                               data_dir=args.data_dir, device=args.device, epochs=args.epochs,
                                               batch_size=args.batch_size, lr=args.lr, max_train=args.max_train,
                                               clean_val=args.clean_val).items() if v is not None})
    if args.preset is None and "dataset" not in overrides:
        raise CLIError("give --dataset NAME or --preset NAME (see 'lilaw-edu datasets')")
    config = config_from_preset(args.preset, **overrides)
    return config, resolve_methods(args.method)


def _check_dataset_and_noise(config) -> None:
    from lilaw_edu.datasets.registry import DATASET_NAMES, REGISTRY
    from lilaw_edu.noise.inject import INPUT_NOISE_KINDS, LABEL_NOISE_KINDS, NOISE_KINDS, SERIES_NOISE_KINDS

    if config.dataset not in REGISTRY:
        raise CLIError(f"unknown dataset {config.dataset!r}; choose one of {', '.join(DATASET_NAMES)} "
                       f"('lilaw-edu datasets' shows which are available)")
    if config.noise not in NOISE_KINDS:
        raise CLIError(f"unknown noise kind {config.noise!r}; choose one of {', '.join(NOISE_KINDS)}")
    kind = REGISTRY[config.dataset].kind
    allowed = ("none",) + LABEL_NOISE_KINDS + (INPUT_NOISE_KINDS if kind == "image" else SERIES_NOISE_KINDS)
    if config.noise not in allowed:
        raise CLIError(f"noise kind {config.noise!r} does not apply to {kind} dataset {config.dataset!r}; "
                       f"choose one of {', '.join(allowed)}")


def _check_writable(out: Path) -> None:
    """Refuse an output folder that cannot be created or written (probes with a temporary file)."""
    if out.exists() and not out.is_dir():
        raise CLIError(f"output folder {out} exists and is not a folder; choose another --out")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise CLIError(f"output folder {out} cannot be created: {parent} is a file; choose another --out")
    try:
        fd, probe = tempfile.mkstemp(prefix=".lilaw-write-probe-", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise CLIError(f"output folder {out} is not writable ({parent}: {exc.strerror or exc}); "
                       f"choose another --out") from None


def _run(args) -> int:
    from lilaw_edu.training import engine
    from lilaw_edu.training.results import format_table
    from lilaw_edu.training.fit import fit, prepare_data

    config, methods = _config_from_args(args)
    _check_dataset_and_noise(config)
    engine.resolve_device(config.device)
    out = Path(args.out)
    _check_writable(out)
    if args.resume and not (out / "checkpoints").is_dir() and not (out / "results.json").exists():
        print(f"{PROG}: note: nothing to resume in {out}; starting a fresh run", file=sys.stderr)
    data = prepare_data(config)  # missing / corrupted data fails here, before any file is written
    results = fit(config, methods, out_dir=out, resume=args.resume, progress=not args.quiet, data=data)
    print(format_table(results))
    print(f"results written to {out / 'results.json'} (table.txt, curves.png alongside)")
    return 0


def _datasets(args) -> int:
    from lilaw_edu.datasets import list_datasets

    rows = list_datasets(args.data_dir)
    width = max(len(r["name"]) for r in rows)
    print(f"{'name'.ljust(width)}  kind    classes  available  source")
    for r in rows:
        print(f"{r['name'].ljust(width)}  {r['kind']:<6}  {r['num_classes']:>7}  "
              f"{'yes' if r['available'] else 'no':>9}  {r['source']}")
    return 0


def main(argv=None) -> int:
    """Entry point of ``lilaw-edu``; returns the exit status (0 ok, 2 bad input)."""
    try:
        args = build_parser().parse_args(argv)
        if args.command == "run":
            return _run(args)
        if args.command == "datasets":
            return _datasets(args)
        return args.func(args)  # subcommands registered by other modules (sweep)
    except CLIError as exc:
        return _fail(str(exc))
    except (ValueError, FileNotFoundError, PermissionError) as exc:
        if os.environ.get("LILAW_DEBUG"):
            raise
        return _fail(str(exc) or type(exc).__name__)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; rerun the same command with --resume to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
