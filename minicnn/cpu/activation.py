"""ReLU's element-wise passes on the CPU: numba loops over the flat arrays, split across threads.

NumPy's element-wise operations run on one core and ``gy * (y > 0)`` makes two passes and a
boolean temporary; these make one pass, in parallel above a size where that pays.
"""
import numba
import numpy as np

from .. import tuning
from .jit import serial_and_parallel


def _relu_backward_loop(gy, y, gx):
    for i in numba.prange(gx.size):
        gx[i] = gy[i] if y[i] > 0 else 0


def _bias_relu_loop(x, b, y):
    # x, y (N, C, M): y = max(x + b[c], 0), one (n, c) plane per task
    n, c, m = x.shape
    for p in numba.prange(n * c):
        bias = b[p % c]
        for k in range(m):
            v = x[p // c, p % c, k] + bias
            y[p // c, p % c, k] = v if v > 0 else 0


_relu_backward, _relu_backward_parallel = serial_and_parallel(_relu_backward_loop)
_bias_relu, _bias_relu_parallel = serial_and_parallel(_bias_relu_loop)


def relu_backward(gy, y):
    """gx = gy where y > 0, else 0 (y is ReLU's output); gy, y of the same shape."""
    shape = np.shape(gy)  # kept: ascontiguousarray turns a 0-d array into a 1-d one
    gy, y = np.ascontiguousarray(gy).reshape(-1), np.ascontiguousarray(y).reshape(-1)
    gx = np.empty_like(gy)
    fn = _relu_backward_parallel if gy.size >= tuning.PARALLEL_MIN_SIZE else _relu_backward
    fn(gy, y, gx)
    return gx.reshape(shape)


def bias_relu(x, b):
    """y = max(x + b[c], 0) for x (N, C, *) and b (C,), in one pass."""
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    fn = _bias_relu_parallel if x.size >= tuning.PARALLEL_MIN_SIZE else _bias_relu
    fn(x.reshape(x.shape[0], x.shape[1], -1), np.ascontiguousarray(b, dtype=x.dtype),
       y.reshape(x.shape[0], x.shape[1], -1))
    return y
