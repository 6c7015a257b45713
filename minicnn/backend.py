"""Array backends: NumPy always, CuPy when it is installed and sees a GPU.

Every op is written once against an array module ``xp``; this file is the one
place that decides which module an array belongs to and moves arrays between
devices.
"""
import numpy as np

_cupy = None
_cupy_error = None


def _load_cupy():
    """Import CuPy once; remember why it failed so errors can say so."""
    global _cupy, _cupy_error
    if _cupy is None and _cupy_error is None:
        try:
            import cupy

            if cupy.cuda.runtime.getDeviceCount() < 1:
                raise RuntimeError("CuPy found no CUDA device")
            _cupy = cupy
        except Exception as e:  # ImportError, CUDARuntimeError, ...
            _cupy_error = f"{type(e).__name__}: {e}"
    return _cupy


def cuda_available():
    """True when CuPy is importable and at least one GPU is visible."""
    return _load_cupy() is not None


def cupy_module():
    """The cupy module, or a RuntimeError that says why it cannot be used."""
    cp = _load_cupy()
    if cp is None:
        raise RuntimeError(
            "device 'cuda' is not available: "
            + (_cupy_error or "CuPy is not installed")
            + " (install minicnn[cuda12] or minicnn[cuda13] on a machine with an NVIDIA GPU)"
        )
    return cp


def is_cupy_array(a):
    return _cupy is not None and isinstance(a, _cupy.ndarray)


def array_module(a):
    """``numpy`` or ``cupy``, whichever owns ``a``."""
    return _cupy if is_cupy_array(a) else np


def device_of(a):
    return "cuda" if is_cupy_array(a) else "cpu"


def normalize_device(device):
    if device is None:
        return "cpu"
    d = str(device)
    if d == "cpu":
        return "cpu"
    if d == "cuda" or d.startswith("cuda:"):
        return "cuda"
    raise ValueError(f"unknown device {device!r}; expected 'cpu' or 'cuda'")


def to_device(a, device):
    """Copy array ``a`` to ``device`` ('cpu' or 'cuda'); no copy when already there."""
    device = normalize_device(device)
    if device == "cpu":
        return a.get() if is_cupy_array(a) else a
    cp = cupy_module()
    return a if isinstance(a, cp.ndarray) else cp.asarray(a)


def to_numpy(a):
    return a.get() if is_cupy_array(a) else np.asarray(a)


def kernels(a):
    """The hot-spot kernels for ``a``'s device: ``minicnn.cpu`` (NumPy/numba) or
    ``minicnn.cuda`` (our CUDA C kernels). Both expose the same functions with the
    same signatures; this is the one place where an op chooses between them."""
    if is_cupy_array(a):
        from . import cuda

        return cuda
    from . import cpu

    return cpu


class device(str):
    """A device name with PyTorch's fields: ``device("cuda:0").type == "cuda"``, ``.index == 0``.
    It is a string, so it goes wherever minicnn takes a device ("cpu", "cuda")."""

    def __new__(cls, type_or_name="cpu", index=None):
        name = str(type_or_name) if index is None else f"{type_or_name}:{int(index)}"
        normalize_device(name)  # an unknown name is an error here already
        self = super().__new__(cls, name)
        kind, _, number = name.partition(":")
        self.type, self.index = kind, (int(number) if number else None)
        return self

    def __repr__(self):
        return f"device(type={self.type!r}" + ("" if self.index is None else f", index={self.index}") + ")"
