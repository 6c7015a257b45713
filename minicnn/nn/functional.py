"""``minicnn.nn.functional``: every op as a function, named and argued as torch.nn.functional.

The ops themselves live in ``minicnn.ops`` (one file per family); this module only
gathers them under PyTorch's names.
"""
from ..ops.activation import leaky_relu, log_softmax, relu, sigmoid, softmax, tanh  # noqa: F401
from ..ops.linear import linear  # noqa: F401
from ..ops.shape import pad  # noqa: F401
