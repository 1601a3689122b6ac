"""``cupy.linalg`` of the double: NumPy's, as kernels on the current fake device."""

from __future__ import annotations

import numpy as np

from ._names import LINALG
from ._namespace import functions

globals().update(functions(np.linalg, LINALG, "compute", __name__))

__all__ = LINALG.split()
