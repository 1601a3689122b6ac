"""``anynet info``: versions, backends and devices, threads, data found locally, the last model."""

from __future__ import annotations

import argparse
import platform
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .._version import __version__
from ..app.paths import anynet_home
from ..backend import available_backends, get_backend, package_versions, unavailable_backends
from ..data import DataError, dataset_info, dataset_names
from ..data.fetch import cache_dir, data_dirs, fetch_file
from .common import _command, _installed, _say
from .threads import _thread_lines

#: the optional extras ``anynet info`` reports: (extra, a module it installs)
EXTRAS = (("plots", "matplotlib"), ("serve", "fastapi"))


def add(sub) -> None:
    """``anynet info``."""
    _command(
        sub,
        "info",
        run,
        "versions, backends and devices, data found locally",
        "Show the anynet version, the array backends and devices usable here, "
        "where data is searched and cached, and which datasets are present.",
    )


def run(args: argparse.Namespace) -> int:
    _say(
        f"anynet {__version__} (Python {platform.python_version()}, {platform.system()} {platform.machine()})"
    )
    lines = [_package_line(), *_backend_lines(), *_thread_lines(), *_data_lines(args.data_dir)]
    lines += [*_home_lines(), *_extra_lines()]
    for line in lines:
        _say(line)
    return 0


def _package_line() -> str:
    """``packages: numpy 2.4.6, torch not installed, ...``."""
    found = package_versions()
    try:
        found["threadpoolctl"] = version("threadpoolctl")
    except PackageNotFoundError:
        found["threadpoolctl"] = None
    return "packages: " + ", ".join(f"{name} {v or 'not installed'}" for name, v in found.items())


def _backend_lines() -> list[str]:
    """One line per backend: usable ones with version and device, the others with the reason."""
    lines = ["backends available:"]
    for name in available_backends():
        b = get_backend(name)
        lines.append(f"  {name:<18s} {b.module.__name__} {b.version}, device {b.spec}")
        lines += [f"  {'':<18s} {device}" for device in b.describe_devices()]
    lines.append(f"  {'auto':<18s} picks {get_backend('auto').spec}")
    missing = unavailable_backends()
    if missing:
        lines.append("backends not usable here:")
        lines += [f"  {name:<18s} {reason}" for name, reason in missing.items()]
    return lines


def _data_lines(data_dir: str | None) -> list[str]:
    """Where data is searched and cached, and which datasets are present."""
    lines = ["data directories searched (in order):"]
    for origin, path in data_dirs(data_dir):
        lines.append(f"  {origin}: {path}{'' if path.is_dir() else '  (missing)'}")
    lines += [f"  download cache: {cache_dir()}", "datasets:"]
    return lines + [_dataset_line(name, data_dir) for name in dataset_names()]


def _dataset_line(name: str, data_dir: str | None) -> str:
    """Where a registered dataset's files are, or how many are missing."""
    info = dataset_info(name)
    found = []
    for finfo in info.files.values():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found.append(fetch_file(finfo, info.folder, data_dir, download=False, progress=False))
        except DataError:
            pass
    total = len(info.files)
    if len(found) == total:
        folders = sorted({str(Path(p).parent) for p in found})
        return f"  {name:<18s} present in {', '.join(folders)}"
    if found:
        return f"  {name:<18s} partial: {len(found)} of {total} files (the rest download on first use)"
    return f"  {name:<18s} not present (downloads on first use)"


def _home_lines() -> list[str]:
    home = anynet_home()
    record = home / "last_model"
    last = record.read_text(encoding="utf-8").strip() if record.is_file() else None
    return [f"anynet home: {home}", f"last trained model: {last or 'none yet (run anynet train)'}"]


def _extra_lines() -> list[str]:
    """Whether each optional extra is installed."""
    return [
        f"extra {extra:<6s} "
        + ("installed" if _installed(module) else f"not installed (pip install 'anynet[{extra}]')")
        for extra, module in EXTRAS
    ]
