"""Datasets for anynet: reading, finding/downloading, splitting, device transfer, augmentation.

One concept per module:

- :mod:`~anynet.data.readers`   IDX / Kaggle CSV / EMNIST mapping readers, :class:`DataError`
- :mod:`~anynet.data.registry`  dataset names, files, URLs, checksums, class tables
- :mod:`~anynet.data.fetch`     where files come from (data dirs, cache, download)
- :mod:`~anynet.data.dataset`   :class:`Dataset`, :class:`Split` and :func:`load`
- :mod:`~anynet.data.splits`    :func:`stratified_split` and the EMNIST stand-in
- :mod:`~anynet.data.device`    :func:`to_device`, :func:`one_hot`
- :mod:`~anynet.data.augment`   :class:`Augmenter` (on-device random distortions)
- :mod:`~anynet.data.grid`      :func:`save_grid` (PNG contact sheet)

See docs/data.md.
"""

from .augment import Augmenter
from .dataset import Dataset, Split, load
from .device import one_hot, to_device
from .fetch import ChecksumWarning, cache_dir, fetch
from .grid import save_grid
from .readers import (
    DataError,
    read_csv,
    read_idx,
    read_idx_images,
    read_idx_labels,
    read_idx_pair,
    read_mapping,
)
from .registry import DatasetInfo, class_names, dataset_info, dataset_names
from .splits import stratified_split

__all__ = [
    "Augmenter",
    "ChecksumWarning",
    "DataError",
    "Dataset",
    "DatasetInfo",
    "Split",
    "cache_dir",
    "class_names",
    "dataset_info",
    "dataset_names",
    "fetch",
    "load",
    "one_hot",
    "read_csv",
    "read_idx",
    "read_idx_images",
    "read_idx_labels",
    "read_idx_pair",
    "read_mapping",
    "save_grid",
    "stratified_split",
    "to_device",
]
