"""Constructors: ``tensor`` and the zeros/ones/random families (float32 by default)."""
import numpy as np

from . import backend
from .random import generator
from .tensor import Tensor


def tensor(data, requires_grad=False, dtype=None, device="cpu"):
    """A new leaf tensor holding a copy of ``data`` (Python floats become float32, NumPy
    dtypes are kept). ``from_numpy`` shares memory instead."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device, copy=True)


def _shape(size, op="zeros"):
    """The size arguments (``2, 3`` or ``(2, 3)``) as a tuple of non-negative ints; else an error naming ``op``."""
    shape = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)
    for d in shape:
        if not isinstance(d, (int, np.integer)) or isinstance(d, bool):
            raise TypeError(f"{op}: sizes must be integers, got {d!r} in {shape}")
        if d < 0:
            raise ValueError(f"{op}: negative dimension {d} in size {shape}")
    return shape


def _new(array, requires_grad, device):
    return Tensor(array, requires_grad=requires_grad, device=device)


def zeros(*size, dtype=np.float32, requires_grad=False, device="cpu"):
    return _new(np.zeros(_shape(size, "zeros"), dtype), requires_grad, device)


def ones(*size, dtype=np.float32, requires_grad=False, device="cpu"):
    return _new(np.ones(_shape(size, "ones"), dtype), requires_grad, device)


def full(size, fill_value, dtype=np.float32, requires_grad=False, device="cpu"):
    return _new(np.full(_shape((size,), "full"), fill_value, dtype), requires_grad, device)


def zeros_like(t, dtype=None, requires_grad=False):
    xp = backend.array_module(t.array)
    return Tensor(xp.zeros(t.shape, dtype or t.dtype), requires_grad=requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    xp = backend.array_module(t.array)
    return Tensor(xp.ones(t.shape, dtype or t.dtype), requires_grad=requires_grad)


def empty(*size, dtype=np.float32, requires_grad=False, device="cpu"):
    """Uninitialised memory of ``size``, as torch.empty."""
    return _new(np.empty(_shape(size, "empty"), dtype), requires_grad, device)


def eye(n, m=None, dtype=np.float32, requires_grad=False, device="cpu"):
    """The n x m (default n x n) identity matrix."""
    return _new(np.eye(n, m, dtype=dtype), requires_grad, device)


def randn_like(t, dtype=None, requires_grad=False):
    """Standard normal values of ``t``'s shape (and dtype, device), from minicnn's generator."""
    array = generator().standard_normal(t.shape).astype(dtype or t.dtype)
    return _new(array, requires_grad, t.device)


def rand_like(t, dtype=None, requires_grad=False):
    return _new(generator().random(t.shape).astype(dtype or t.dtype), requires_grad, t.device)


def arange(start, end=None, step=1, dtype=None, device="cpu"):
    a = np.arange(start, end, step) if end is not None else np.arange(start)
    if dtype is None and a.dtype == np.float64:
        dtype = np.float32
    return Tensor(a, dtype=dtype, device=device)


def randn(*size, dtype=np.float32, requires_grad=False, device="cpu"):
    return _new(generator().standard_normal(_shape(size, "randn")).astype(dtype), requires_grad, device)


def rand(*size, dtype=np.float32, requires_grad=False, device="cpu"):
    return _new(generator().random(_shape(size, "rand")).astype(dtype), requires_grad, device)


def randint(low, high, size, device="cpu"):
    return _new(generator().integers(low, high, size=_shape((size,), "randint")), False, device)


def from_numpy(array):
    return Tensor(np.asarray(array))


def as_tensor(data, dtype=None, device=None):
    """``data`` as a Tensor, sharing its memory where dtype and device allow (a Tensor comes back as it is)."""
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    return Tensor(data, dtype=dtype, device=device)
