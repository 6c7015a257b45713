"""``torch.accelerator``'s questions answered for minicnn: is a GPU there, and which device is it."""
from .backend import cuda_available, device


def is_available():
    """True when CuPy sees a CUDA GPU (minicnn's one accelerator)."""
    return cuda_available()


def current_accelerator():
    """``device("cuda")`` when a GPU is available, else None."""
    return device("cuda") if cuda_available() else None


def device_count():
    if not cuda_available():
        return 0
    import cupy

    return cupy.cuda.runtime.getDeviceCount()
