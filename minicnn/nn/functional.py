"""``minicnn.nn.functional``: every op as a function, named and argued as torch.nn.functional.

The ops themselves live in ``minicnn.ops`` (one file per family); this module only
gathers them under PyTorch's names.
"""
from ..ops.activation import leaky_relu, log_softmax, relu, sigmoid, softmax, tanh  # noqa: F401
from ..ops.linear import linear  # noqa: F401
from ..ops.shape import one_hot, pad  # noqa: F401
from ..ops.pooling import (adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, max_pool2d,  # noqa: F401
                           max_unpool2d)
from ..ops.activation import prelu  # noqa: F401
from ..ops.dropout import dropout, dropout2d  # noqa: F401
from ..ops.loss import (binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy,  # noqa: F401
                        l1_loss, mse_loss, nll_loss)
from ..ops.normalization import batch_norm, local_response_norm  # noqa: F401
from ..ops.resize import center_crop, crop, interpolate  # noqa: F401
from ..ops.conv import conv2d, conv_transpose2d  # noqa: F401
