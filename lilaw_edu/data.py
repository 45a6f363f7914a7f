"""Dataset loading API (re-exported from :mod:`lilaw_edu.datasets`).

``from lilaw_edu.data import load_dataset`` and ``from lilaw_edu.datasets import
load_dataset`` are the same function; see that package for the split rules.
"""
from lilaw_edu.datasets import (DATASET_INFO, DATASET_NAMES, DataError, DatasetNotFoundError,  # noqa: F401
                                DatasetSplits, list_datasets, load_dataset, normalize, resize_images,
                                split_off_validation)

__all__ = ["DATASET_INFO", "DATASET_NAMES", "DataError", "DatasetNotFoundError", "DatasetSplits",
           "list_datasets", "load_dataset", "normalize", "resize_images", "split_off_validation"]
