"""Compile, cache and launch the kernels of ``kernels/*.cu``.

Every kernel is a grid-stride loop over ``n`` work items, so a launch only
needs ``n``: blocks of ``tuning.CUDA_BLOCK`` threads, as many blocks as cover ``n`` (at most
``MAX_BLOCKS``; the loop does the rest). Each ``.cu`` file is compiled once
per process and device by CuPy's ``RawModule`` (NVRTC; CuPy also keeps the
binary in its on-disk cache). A kernel exists once per precision, with the C
name ``<name>_f32`` or ``<name>_f64``.

Inside ``minicnn.cuda.host.emulate()`` the same launches run on NumPy arrays
on the CPU instead (the CUDA source compiled by g++), which is how the kernels
are tested on machines without a GPU.
"""
import numpy as np

from .. import backend, tuning
from . import source

MAX_BLOCKS = 65535  # the grid's x-dimension limit of older GPUs; the grid-stride loops cover the rest

_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}
_modules = {}  # (family, device id) -> cupy.RawModule
_kernels = {}  # (family, kernel name, device id) -> that kernel of the module
_host = None  # the active minicnn.cuda.host.HostRunner, if any


def kernel_name(op, name, dtype):
    """``name`` + the precision suffix for ``dtype``; ``op`` names the caller in errors."""
    try:
        return f"{name}_{_SUFFIX[np.dtype(dtype)]}"
    except KeyError:
        raise TypeError(
            f"minicnn.cuda.{op}: dtype {np.dtype(dtype)} is not supported (float32 or float64)"
        ) from None


def array_module(op, a):
    """The module that allocates arrays next to ``a``: cupy, or numpy while emulating.

    Raises a clear error when CuPy is missing or ``a`` is on the wrong device."""
    if _host is not None and isinstance(a, np.ndarray):
        return np
    try:
        cp = backend.cupy_module()
    except RuntimeError as e:  # say which kernel wanted the GPU, and why it cannot have it
        raise RuntimeError(f"minicnn.cuda.{op}: {e}") from None
    if not isinstance(a, cp.ndarray):
        raise TypeError(
            f"minicnn.cuda.{op}: expected a CuPy array, got {type(a).__module__}.{type(a).__name__}; "
            "NumPy arrays go to minicnn.cpu (backend.kernels(array) picks the right module)"
        )
    return cp


def _kernel(family, name):
    cp = backend.cupy_module()
    device = cp.cuda.runtime.getDevice()
    key = (family, name, device)
    if key not in _kernels:
        if (family, device) not in _modules:
            _modules[family, device] = cp.RawModule(code=source.read_source(family))
        _kernels[key] = _modules[family, device].get_function(name)
    return _kernels[key]


def _scalar(v):
    """Kernel arguments get explicit C types: Python ints/bools -> long long."""
    if isinstance(v, (bool, int, np.integer, np.bool_)):
        return np.int64(v)
    if isinstance(v, (np.float32, np.float64)):
        return v
    if isinstance(v, float):
        raise TypeError("minicnn.cuda: pass float arguments as dtype.type(value) (float or double)")
    return v  # an array


def launch(family, name, n, *args):
    """Run kernel ``name`` (with its precision suffix) of ``kernels/<family>.cu`` over ``n`` items."""
    n = int(n)
    if n == 0:
        return
    args = tuple(_scalar(a) for a in args)
    if _host is not None and isinstance(args[0], np.ndarray):
        _host.launch(family, name, n, args)
        return
    blocks = min(-(-n // tuning.CUDA_BLOCK), MAX_BLOCKS)
    _kernel(family, name)((blocks,), (tuning.CUDA_BLOCK,), args)


def check_shape(op, name, a, shape):
    """The kernels trust the shapes they are given; a wrong one would read or write
    out of bounds on the GPU, so it is refused here."""
    if tuple(a.shape) != tuple(shape):
        raise ValueError(f"minicnn.cuda.{op}: {name} has shape {tuple(a.shape)}, expected {tuple(shape)}")
