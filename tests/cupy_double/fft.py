"""``cupy.fft`` of the double: NumPy's, as kernels on the current fake device."""

from __future__ import annotations

import numpy as np

from ._names import FFT
from ._namespace import functions

globals().update(functions(np.fft, FFT, "compute", __name__))

__all__ = FFT.split()
