"""ReLU's forward pass on the CPU: a numba loop over the flat array, split across threads for
big arrays.

``np.maximum(x, 0)`` runs on one core and is slowed down by its NaN handling; a plain loop is
faster on one thread and runs on all of them. Non-contiguous, non-float and tiny arrays keep ``np.maximum``. A CPU-only
kernel: the op looks it up with ``getattr(backend.kernels(x), "relu", None)`` (CuPy's own
element-wise operations are already parallel).

NumPy's addition, tried the same way, was no faster inside a training step (benchmarks/README.md).
"""
import numba
import numpy as np

from .. import tuning
from .jit import serial_and_parallel


def _relu_loop(x, y):
    for i in numba.prange(x.size):
        v = x[i]
        y[i] = 0 if v <= 0 else v  # a NaN (v <= 0 is False) passes through, as with np.maximum


_relu, _relu_parallel = serial_and_parallel(_relu_loop)


def relu(x):
    """y = max(x, 0), a new array (NaN stays NaN, -0.0 becomes 0.0, as ``np.maximum(x, 0)``)."""
    if not (isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.size >= tuning.ELEMENTWISE_MIN_SIZE
            and x.flags.c_contiguous):
        return np.maximum(x, 0)
    y = np.empty_like(x)
    fn = _relu_parallel if x.size >= tuning.ELEMENTWISE_PARALLEL_MIN_SIZE else _relu
    fn(x.reshape(-1), y.reshape(-1))
    return y
