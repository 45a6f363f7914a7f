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
import errno
import json
import os
import shlex
import sys
from pathlib import Path

__all__ = ["main", "build_parser", "CLIError"]

PROG = "lilaw-edu"


class CLIError(Exception):
    """Bad command-line input; reported as one line, exit status 2."""


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """``--help`` shows each option's default and keeps the epilog's line breaks."""


def _run_epilog() -> str:
    from lilaw_edu.datasets import DATASET_NAMES
    from lilaw_edu.noise.inject import NOISE_KINDS
    from lilaw_edu.training.config import PRESETS
    return (f"presets: {', '.join(PRESETS)}\ndatasets: {', '.join(DATASET_NAMES)}\n"
            f"noise kinds: {', '.join(NOISE_KINDS)}\n"
            "An option left unset (default None) takes the preset's value, else TrainConfig's default.")


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
    from lilaw_edu import __version__
    parser = _Parser(prog=PROG, description="LiLAW vs plain training on noisy labels, paired and reproducible.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="{run,sweep,datasets,download}", parser_class=_Parser)
    sub.required = True
    run = sub.add_parser("run", help="train baseline and LiLAW (paired) and write results.json",
                         formatter_class=_HelpFormatter, epilog=_run_epilog())
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
    run.add_argument("--ddp", action="store_true", help="require torchrun (DDP; auto-detected under torchrun)")
    ds = sub.add_parser("datasets", help="list datasets and whether their files are available locally")
    ds.add_argument("--data-dir", help="folder searched first for data files")
    dl = sub.add_parser("download", help="download a dataset's files (checksum-verified) into a data folder",
                        formatter_class=_HelpFormatter)
    dl.add_argument("dataset", help="dataset name (see 'lilaw-edu datasets')")
    dl.add_argument("--data-dir", default=None, help="where to put the files (default: $LILAW_DATA_DIR, "
                    "else ~/.cache/lilaw_edu/data)")
    try:
        from lilaw_edu.experiments.runner import add_sweep_parser
    except ImportError:
        add_sweep_parser = None
    if add_sweep_parser is not None:
        from lilaw_edu.experiments.ray_executor import add_executor_options
        add_executor_options(add_sweep_parser(sub))  # --executor ray etc.
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
    """Refuse an output folder that cannot be created or written (creates nothing)."""
    from lilaw_edu.experiments.store import check_writable
    try:
        check_writable(out, "--out")
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def _run(args) -> int:
    from lilaw_edu.training import engine
    from lilaw_edu.training.results import format_table
    from lilaw_edu.training.fit import fit, prepare_data

    config, methods = _config_from_args(args)
    _check_dataset_and_noise(config)
    engine.resolve_device(config.device)
    if not args.out.strip():
        raise CLIError(f"--out must name a folder, got {args.out!r}")
    out = Path(args.out)
    _check_writable(out)
    if args.resume and not (out / "checkpoints").is_dir() and not (out / "results.json").exists():
        print(f"{PROG}: note: nothing to resume in {out}; starting a fresh run", file=sys.stderr)
    from lilaw_edu.training.ddp import distributed_session
    with distributed_session(args.ddp, config.device) as ddp:  # under torchrun: DDP, rank 0 writes
        data = prepare_data(config)  # missing / corrupted data fails here, before any file is written
        results = fit(config, methods, out_dir=out, resume=args.resume, data=data, distributed=ddp,
                      progress=not args.quiet and (ddp is None or ddp.is_writer))
    if ddp is not None and not ddp.is_writer:
        return 0
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


def _download(args) -> int:
    from lilaw_edu.datasets import DATASET_NAMES, load_dataset
    if args.dataset not in DATASET_NAMES:
        raise CLIError(f"unknown dataset {args.dataset!r}; choose one of {', '.join(DATASET_NAMES)}")
    data_dir = args.data_dir or os.environ.get("LILAW_DATA_DIR") or str(Path.home() / ".cache" / "lilaw_edu" / "data")
    _check_writable(Path(data_dir))
    load_dataset(args.dataset, data_dir=data_dir, download=True)
    print(f"{args.dataset}: files in {data_dir} (set LILAW_DATA_DIR={data_dir} or pass --data-dir to use them)")
    return 0


# Errors that mean bad input or a bad environment (one line, exit 2); anything else is a bug (exit 1).
BAD_INPUT_ERRORS = (ValueError, TypeError, OverflowError, OSError, RecursionError)


def _interrupted(argv, command) -> int:
    if command == "sweep":
        again = " ".join([PROG] + [shlex.quote(a) for a in argv])
        print(f"{PROG}: interrupted; finished runs are kept. To continue, run the same command again: {again}",
              file=sys.stderr)
    else:
        print(f"{PROG}: interrupted; rerun the same command with --resume to continue", file=sys.stderr)
    return 130


def main(argv=None) -> int:
    """Entry point of ``lilaw-edu``; returns the exit status (0 ok, 2 bad input)."""
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    debug = "--debug" in argv or bool(os.environ.get("LILAW_DEBUG"))
    command = None
    try:
        args = build_parser().parse_args(argv)
        command = args.command
        if args.command == "run":
            return _run(args)
        if args.command == "datasets":
            return _datasets(args)
        if args.command == "download":
            return _download(args)
        return args.func(args)  # subcommands registered by other modules (sweep)
    except CLIError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _interrupted(argv, command)
    except BAD_INPUT_ERRORS as exc:
        if debug:
            raise
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return _fail(f"no space left on the device writing {exc.filename or 'a file'}; free some space and "
                         f"rerun the same command (finished work is kept)")
        if isinstance(exc, RecursionError):
            return _fail("an input file is nested too deeply to read (corrupted or crafted JSON)")
        return _fail(str(exc) or type(exc).__name__)
    except Exception as exc:  # noqa: BLE001 - a bug: say so in one line, never silently
        if debug:
            raise
        print(f"{PROG}: internal error: {type(exc).__name__}: {' '.join(str(exc).split())[:300]} "
              f"(this is a bug; rerun with --debug for the traceback and report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
