"""minicnn: a from-scratch deep-learning engine for convolutional networks.

``import minicnn as mc`` gives tensors, autograd and the functional ops;
``minicnn.nn``, ``minicnn.optim`` and ``minicnn.models`` hold the rest; ``minicnn.backends``
chooses the convolution algorithm.
"""
from numpy import float32, float64, int64  # dtype names as torch users type them

from . import backends  # noqa: F401
from .autograd import Function, enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from . import accelerator, amp, cuda, utils  # noqa: F401  (mc.cuda.is_available(), mc.utils.data, as torch's)
from .amp import autocast  # noqa: F401
from .backend import cuda_available, device
from .creation import (arange, as_tensor, empty, eye, from_numpy, full, ones, ones_like, rand, rand_like, randint, randn,
                       randn_like, tensor, zeros, zeros_like)
from .gradcheck import GradcheckError, gradcheck
from .ops import (abs, add, amax, amin, argmax, argmin, cat, chunk, clamp, clip, concatenate, div, exp, mul, std, sub,
                  flatten, gather, log, log_softmax, matmul, max, maximum, mean, min, minimum, pad, permute, relu,
                  reshape, scatter, sigmoid, softmax, sort, split, sqrt, squeeze, stack, sum, tanh, topk,
                  transpose, unsqueeze, var, where)
from .random import Generator, manual_seed
from .serialization import load, save
from .summary import summary
from .tensor import Tensor

from . import nn, onnx, optim  # noqa: E402,F401  (torch.nn.Linear, torch.onnx.export, torch.optim.SGD after `import torch`)



def isnan(t):
    return t.isnan()


def isinf(t):
    return t.isinf()


def isfinite(t):
    return t.isfinite()


# memory formats: layout hints PyTorch scripts pass to .to(); minicnn's arrays are always NCHW
channels_last, contiguous_format, preserve_format = "channels_last", "contiguous_format", "preserve_format"

float = float32
double = float64
long = int64

__version__ = "0.1.0"
