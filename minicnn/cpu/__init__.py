"""CPU hot spots (NumPy views and numba loops), one file per op family.

Every function here has a twin of the same name and signature in ``minicnn.cuda``;
ops call them through ``backend.kernels(array)``. The exceptions are CPU-only kernels that an
op uses when the backend has them (``getattr(kernels, name, None)``), else it runs its ``xp``
code: ReLU's forward pass ``relu`` (numba, threaded) and the one-pass optimizer updates
``sgd_step`` and ``adam_step``.
"""
from .pooling import (avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward,  # noqa: F401
                      max_pool2d_forward, max_unpool2d_backward, max_unpool2d_forward)
from .normalization import (batch_norm_backward, batch_norm_forward, batch_norm_stats, lrn_backward,  # noqa: F401
                            lrn_forward)
from .conv import col2im, im2col  # noqa: F401
from .depthwise import depthwise_conv2d, depthwise_conv2d_input_grad, depthwise_conv2d_weight_grad  # noqa: F401
from .activation import bias_relu, relu_backward  # noqa: F401
from .elementwise import relu  # noqa: F401
from .optim import adam_step, sgd_step  # noqa: F401
