"""CPU hot spots (NumPy views and numba loops), one file per op family.

Every function here has a twin of the same name and signature in ``minicnn.cuda``;
ops call them through ``backend.kernels(array)``.
"""
from .pooling import (avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward,  # noqa: F401
                      max_pool2d_forward, max_unpool2d_backward, max_unpool2d_forward)
from .normalization import batch_norm_backward, batch_norm_forward, lrn_backward, lrn_forward  # noqa: F401
from .conv import col2im, im2col  # noqa: F401
