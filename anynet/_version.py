"""The installed anynet version (a leaf: every module that records or checks the version
imports it from here)."""

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("anynet")
except PackageNotFoundError:  # run from a source tree that is not installed
    __version__ = "0+unknown"
