"""Where data files come from: local directories first, then a download cache.

Search order for each file of a dataset (first hit wins):

1. the ``data_dir`` argument, if given;
2. the directory in the environment variable ``ANYNET_DATA_DIR``;
3. the user cache: ``$ANYNET_CACHE_DIR`` if set, else ``pooch.os_cache("anynet")``
   (e.g. ``~/.cache/anynet`` on Linux).

In each of these directories a file may sit in the dataset's folder or flat::

    <dir>/<folder>/<file>     e.g. /work/shared/data/mnist/train-images-idx3-ubyte.gz
    <dir>/<file>              e.g. ~/Downloads/train-images-idx3-ubyte.gz

In data directories (1 and 2) an uncompressed copy (the name without ``.gz``) is accepted too.

Checksums (sha256, from :mod:`anynet.data.registry`):

- **data directories** belong to the user and are never modified. A ``.gz`` file whose
  checksum differs is still used, with a :class:`ChecksumWarning` (a recompressed copy has a
  different checksum but the same content); the IDX reader then validates its structure,
  size and labels, so a truncated or corrupt file still fails, with a :class:`DataError`.
  Uncompressed copies have no known checksum and are validated by the reader only.
- **the cache** is anynet's: a file there that fails its checksum is downloaded again
  (or, with ``download=False``, reported as a :class:`DataError`).

Missing files are downloaded into the cache with pooch: streamed to a temporary file in the
cache folder, verified, then renamed, so a failed or corrupt download leaves nothing behind.
The source is the registry URL, or ``<base>/<folder>/<file>`` where the base URL is the
``base_url`` argument or the ``ANYNET_DATA_URL`` environment variable (a base containing
``{file}`` is used as a template with ``{folder}`` and ``{file}``). When a file can be neither
found nor downloaded, one short :class:`DataError` names the missing files, the failed URL,
where anynet looked and the flag or variable to use; a failed download leaves no folder behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
import warnings
from pathlib import Path

import pooch
import requests
from tqdm.auto import tqdm

from .readers import DataError
from .registry import EMNIST_ARCHIVE_URL, DatasetInfo, FileInfo, dataset_info

__all__ = [
    "ENV_CACHE_DIR",
    "ENV_DATA_DIR",
    "ENV_DATA_URL",
    "ChecksumWarning",
    "cache_dir",
    "data_dirs",
    "fetch",
    "fetch_file",
    "file_url",
    "sha256sum",
]

ENV_DATA_DIR = "ANYNET_DATA_DIR"
ENV_CACHE_DIR = "ANYNET_CACHE_DIR"
ENV_DATA_URL = "ANYNET_DATA_URL"


class ChecksumWarning(UserWarning):
    """A data-directory file does not match the registry's sha256 (it is used anyway)."""


def cache_dir() -> Path:
    """The download cache: ``$ANYNET_CACHE_DIR`` or ``pooch.os_cache("anynet")``."""
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env).expanduser()
    return Path(pooch.os_cache("anynet"))


def data_dirs(data_dir=None) -> list[tuple[str, Path]]:
    """The user data directories searched before the cache, as ``(origin, path)`` pairs."""
    dirs = []
    if data_dir is not None:
        dirs.append(("data_dir argument", Path(data_dir).expanduser()))
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        dirs.append((f"${ENV_DATA_DIR}", Path(env).expanduser()))
    return dirs


def file_url(info: FileInfo, folder: str, base_url: str | None = None) -> str:
    """Download URL of a file: ``base_url`` / ``$ANYNET_DATA_URL`` override, else the registry's."""
    base = base_url if base_url is not None else os.environ.get(ENV_DATA_URL)
    if not base:
        return info.url
    if "{file}" in base:
        return base.format(folder=folder, file=info.filename)
    return f"{base.rstrip('/')}/{folder}/{info.filename}"


def sha256sum(path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _local_candidates(directory: Path, folder: str, filename: str, raw_ok: bool):
    names = [filename]
    if raw_ok and filename.endswith(".gz"):
        names.append(filename[:-3])
    for name in names:
        yield directory / folder / name
        yield directory / name


def _find_local(info: FileInfo, folder: str, data_dir) -> Path | None:
    for origin, directory in data_dirs(data_dir):
        for path in _local_candidates(directory, folder, info.filename, raw_ok=True):
            if path.is_file():
                if path.name == info.filename and info.sha256:
                    actual = sha256sum(path)
                    if actual != info.sha256:
                        warnings.warn(
                            f"{path} (from {origin}) fails its checksum: sha256 {actual}, "
                            f"expected {info.sha256}. Using it anyway; its structure is still "
                            "validated when read. Replace it if loading fails.",
                            ChecksumWarning,
                            stacklevel=4,
                        )
                return path
    return None


class _Downloader:
    """pooch's HTTP downloader with anynet's progress display: a byte bar named after the file
    on a terminal, one line per finished file otherwise (logs stay readable)."""

    def __init__(self, filename: str, progress: bool):
        self.filename, self.progress = filename, progress

    def __call__(self, url, output_file, pooch_obj):
        tty = self.progress and sys.stderr.isatty()
        bar = tqdm(desc=self.filename, unit="B", unit_scale=True, ncols=79, delay=0.5) if tty else None
        start = time.perf_counter()
        try:
            pooch.HTTPDownloader(progressbar=bar or False, timeout=60)(url, output_file, pooch_obj)
        finally:
            if bar is not None:
                bar.close()
        if self.progress and not tty:
            size = Path(output_file).stat().st_size / 1e6 if isinstance(output_file, str) else 0.0
            print(
                f"downloaded {self.filename} ({size:.1f} MB, {time.perf_counter() - start:.1f} s)",
                file=sys.stderr,
                flush=True,
            )


def _reason(exc: BaseException) -> str:
    """A download failure in a few words (no urllib3 internals)."""
    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code} {exc.response.reason}"
    if isinstance(exc, requests.exceptions.Timeout):
        return "timed out (offline?)"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "cannot connect (offline?)"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return type(exc).__name__


def _new_folders(folder: Path) -> list[Path]:
    """``folder`` and its missing parents, deepest first: what a download would create."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _download(info: FileInfo, folder: str, target_dir: Path, progress: bool, base_url) -> Path:
    url = file_url(info, folder, base_url)
    known = f"sha256:{info.sha256}" if info.sha256 else None
    created = _new_folders(target_dir)
    logger, level = pooch.get_logger(), pooch.get_logger().level
    logger.setLevel(logging.WARNING)  # pooch's "Downloading data from ..." lines
    try:
        path = pooch.retrieve(
            url, known, fname=info.filename, path=target_dir, downloader=_Downloader(info.filename, progress)
        )
    except ValueError as exc:  # pooch's hash mismatch; the temporary file is already gone
        _remove_empty(created)
        raise DataError(
            f"download of {info.filename} from {url} is corrupt: {exc}. Nothing was saved "
            f"in {target_dir}; try again, or place a good copy there by hand."
        ) from None
    except (requests.exceptions.RequestException, OSError) as exc:
        _remove_empty(created)
        raise DataError(f"downloading {info.filename} from {url} failed: {_reason(exc)}") from None
    finally:
        logger.setLevel(level)
    return Path(path)


def _remove_empty(folders: list[Path]) -> None:
    for path in folders:
        try:
            path.rmdir()
        except OSError:  # not empty (another process wrote there) or already gone
            break


def fetch_file(
    info: FileInfo,
    folder: str,
    data_dir=None,
    download: bool = True,
    progress: bool = True,
    base_url: str | None = None,
) -> Path:
    """The local path of one file, found (see module doc) or downloaded into the cache."""
    local = _find_local(info, folder, data_dir)
    if local is not None:
        return local
    cache = cache_dir()
    target_dir = cache / folder
    for path in _local_candidates(cache, folder, info.filename, raw_ok=False):
        if path.is_file():
            if not info.sha256 or sha256sum(path) == info.sha256:
                return path
            if not download:
                raise DataError(
                    f"{path} (in the anynet cache) fails its sha256 checksum and download=False; "
                    f"delete it or allow a download to replace it"
                )
            target_dir = path.parent
            break
    if not download:
        raise DataError(f"{info.filename} not found locally and downloads are off")
    return _download(info, folder, target_dir, progress, base_url)


def _advice(info: DatasetInfo, data_dir) -> str:
    """Where anynet looked, and how to point it at the files."""
    places = [f"{path} ({origin})" for origin, path in data_dirs(data_dir)]
    places.append(f"{cache_dir() / info.folder} (download cache, ${ENV_CACHE_DIR})")
    fix = (
        f"put the files in DIR/{info.folder}/ and pass --data-dir DIR (Python: data_dir=DIR) or set "
        f"{ENV_DATA_DIR}=DIR; {ENV_CACHE_DIR}=DIR moves the download cache"
    )
    if info.name.startswith("emnist"):
        fix += f"; EMNIST files are in {EMNIST_ARCHIVE_URL} (folder gzip/)"
    if info.name == "emnist-balanced":
        fix += "; offline, 'emnist-standin' is a 47-class stand-in (docs/data.md)"
    return "looked in " + ", ".join(places) + "\n" + fix


def fetch(
    name: str, data_dir=None, download: bool = True, progress: bool = True, base_url: str | None = None
) -> dict[str, Path]:
    """Local paths of every file of dataset ``name``: ``{role: path}``.

    Raises one :class:`DataError` naming the missing files, the first failure, where anynet
    looked and how to point it at the files. After a failed download no other is tried.
    """
    info = dataset_info(name)
    paths: dict[str, Path] = {}
    missing: list[str] = []
    failures: list[str] = []
    for role, finfo in info.files.items():
        try:
            paths[role] = fetch_file(
                finfo, info.folder, data_dir, download and not failures, progress, base_url
            )
        except DataError as exc:
            missing.append(finfo.filename)
            failures.append(str(exc))
    if missing:
        first = next((f for f in failures if f.startswith("download")), failures[0])
        raise DataError(
            f"dataset {info.name!r}: {len(missing)} of {len(info.files)} files missing "
            f"({', '.join(missing)}); {first}\n" + _advice(info, data_dir)
        )
    return paths
