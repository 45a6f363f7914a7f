#!/usr/bin/env python
"""Download the datasets of lilaw-edu into a data directory (needs internet).

A thin wrapper around :func:`lilaw_edu.datasets.download.download`, the code behind
``lilaw-edu download NAME`` (which works from a pip install; this script needs the
repository). Usage (on a connected machine, e.g. Colab)::

    python data_scripts/download.py ecg5000 breastmnist --data-dir ~/lilaw_data
    python data_scripts/download.py pneumoniamnist --size 224 --data-dir ~/lilaw_data
    python data_scripts/download.py all --data-dir ~/lilaw_data      # every dataset (~1-2 GB at 28 px)
    export LILAW_DATA_DIR=~/lilaw_data                                 # then load_dataset finds them

Every file is checked (sha256 / MD5) after download by loading it once with
``lilaw_edu.datasets.load_dataset``. Never run by tests or on import.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lilaw_edu.datasets.download import build_jpeg_zip, download  # noqa: E402  (build_jpeg_zip: tests)
from lilaw_edu.datasets.registry import DATASET_NAMES, MEDMNIST_FLAGS  # noqa: E402

__all__ = ["build_jpeg_zip", "main"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", help=f"dataset names or 'all': {', '.join(DATASET_NAMES)}")
    parser.add_argument("--data-dir", default=None,
                        help="target folder (default: $LILAW_DATA_DIR or ~/.cache/lilaw_edu)")
    parser.add_argument("--size", type=int, default=28, choices=(28, 64, 128, 224),
                        help="MedMNIST resolution (MedMNIST+ for 64/128/224)")
    args = parser.parse_args(argv)
    names = list(DATASET_NAMES) if args.names == ["all"] else args.names
    unknown = [n for n in names if n not in DATASET_NAMES]
    if unknown:
        parser.error(f"unknown dataset(s) {unknown}; choose from {list(DATASET_NAMES)} or 'all'")
    for name in names:
        size = args.size if name in MEDMNIST_FLAGS else 28
        print(f"{name}: ok in {download(name, args.data_dir, size=size)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
