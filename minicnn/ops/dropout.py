"""Inverted dropout: zero each value (or each whole channel) with probability p and scale the
survivors by 1 / (1 - p), so the expected output equals the input and eval needs no rescaling.

Masks are drawn on the host from ``minicnn.random.generator()``, so ``mc.manual_seed`` makes
them repeatable and the same on every device.
"""
import numpy as np

from .. import backend
from ..autograd import Function
from ..random import generator


class Dropout(Function):
    """y = x * mask, where mask (broadcastable to x) holds 0 or 1 / (1 - p)."""

    def __init__(self, mask):
        self.mask = mask

    def forward(self, x):
        return x * self.mask

    def backward(self, gy):
        return gy * self.mask


def _check_p(p, op):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")


def _mask(shape, p, like):
    """Keep each entry with probability 1 - p; kept entries are 1 / (1 - p)."""
    keep = generator().random(shape, dtype=np.float32) >= p
    scale = 0.0 if p == 1 else 1.0 / (1.0 - p)  # p = 1 drops everything
    mask = keep.astype(like.dtype) * like.dtype.type(scale)
    return backend.to_device(mask, backend.device_of(like))


def dropout(input, p=0.5, training=True):
    """Element-wise inverted dropout; identity when not training or p = 0."""
    _check_p(p, "dropout")
    if not training or p == 0:
        return input
    return Dropout(_mask(input.shape, p, input.array)).apply(input)


def dropout2d(input, p=0.5, training=True):
    """Channel-wise (spatial) dropout: each whole channel of input (N, C, H, W) is zeroed with
    probability p. A 3-D input is read as (N, C, L), as PyTorch currently does."""
    _check_p(p, "dropout2d")
    if input.ndim not in (3, 4):
        raise ValueError(f"dropout2d: expected a 4-D input (N, C, H, W) (or 3-D (N, C, L)), "
                         f"got shape {tuple(input.shape)}")
    if not training or p == 0:
        return input
    shape = input.shape[:2] + (1,) * (input.ndim - 2)  # one draw per (n, c)
    return Dropout(_mask(shape, p, input.array)).apply(input)
