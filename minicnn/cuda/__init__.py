"""GPU hot spots: our own CUDA C kernels (``kernels/*.cu``) launched through CuPy.

Every function here has a twin of the same name and signature in
``minicnn.cpu``; ops reach them through ``backend.kernels(array)``. Matrix
products stay ``xp.matmul`` (cuBLAS); nothing uses cuDNN.

Importing this package needs no CuPy: the first kernel call compiles its
``.cu`` file with NVRTC (``cupy.RawModule``), or raises a RuntimeError that
says why CUDA cannot be used. ``minicnn.cuda.host.emulate()`` runs the same
kernels on NumPy arrays on the CPU (built with g++), for reading and testing.
"""
from .. import amp  # noqa: F401  (torch.cuda.amp.GradScaler, autocast)
from ..backend import cuda_available as is_available  # noqa: F401  (mc.cuda.is_available(), as torch's)


class _NoCuPyOutOfMemoryError(MemoryError):
    """Stands for CuPy's out-of-memory error where CuPy is not installed (nothing raises it then)."""


def __getattr__(name):
    """``torch.cuda.OutOfMemoryError`` is CuPy's, the error a GPU run raises; looked up only when
    used, so importing this package still needs no CuPy."""
    if name == "OutOfMemoryError":
        try:
            from cupy.cuda.memory import OutOfMemoryError
        except ImportError:
            return _NoCuPyOutOfMemoryError
        return OutOfMemoryError
    raise AttributeError(f"module 'minicnn.cuda' has no attribute {name!r}")
from .batchnorm import batch_norm_backward, batch_norm_forward, batch_norm_stats
from .conv import col2im, im2col
from .depthwise import depthwise_conv2d, depthwise_conv2d_input_grad, depthwise_conv2d_weight_grad
from .elementwise import bias_relu, relu_backward
from .lrn import lrn_backward, lrn_forward
from .pooling import avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward
from .unpool import max_unpool2d_backward, max_unpool2d_forward

__all__ = [
    "im2col", "col2im", "depthwise_conv2d", "depthwise_conv2d_input_grad", "depthwise_conv2d_weight_grad",
    "max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward",
    "avg_pool2d_backward", "max_unpool2d_forward", "max_unpool2d_backward", "lrn_forward",
    "lrn_backward", "batch_norm_stats", "batch_norm_forward", "batch_norm_backward", "relu_backward", "bias_relu",
]
