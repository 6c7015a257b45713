"""CPU hot spots (NumPy views and numba loops), one file per op family.

Every function here has a twin of the same name and signature in ``minicnn.cuda``;
ops call them through ``backend.kernels(array)``.
"""
from .normalization import batch_norm_backward, batch_norm_forward, lrn_backward, lrn_forward  # noqa: F401
from .conv import col2im, im2col  # noqa: F401
