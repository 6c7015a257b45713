"""Weight initialisers, in place, with PyTorch's names and formulas.

All draw from ``minicnn.random.generator()`` so ``manual_seed`` fixes them. Values are drawn
directly in the tensor's dtype when NumPy's generator can (float32, float64) and scaled in
place: a float64 temporary of VGG-16's 25088x4096 layer alone would be 0.8 GB.
"""
import math

import numpy as np

from .. import backend
from ..random import generator


def _fill(t, values):
    t.array = backend.to_device(np.asarray(values, dtype=t.dtype), t.device).reshape(t.shape)
    return t


def _draw_dtype(t):
    """The dtype to draw in: the tensor's own if the generator draws it directly, else float64."""
    return t.dtype if t.dtype in (np.float32, np.float64) else np.float64


def calculate_fan_in_and_fan_out(t):
    """fan_in = in_features * receptive field; fan_out = out_features * receptive field."""
    if t.ndim < 2:
        raise ValueError(f"fan in/out need a tensor with at least 2 dims, got shape {t.shape}")
    receptive = int(np.prod(t.shape[2:])) if t.ndim > 2 else 1
    return t.shape[1] * receptive, t.shape[0] * receptive


def calculate_gain(nonlinearity, param=None):
    if nonlinearity in ("linear", "identity", "sigmoid", "conv1d", "conv2d", "conv3d",
                        "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _fan(t, mode):
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return fan_in if mode == "fan_in" else fan_out


def _uniform(shape, dtype, a, b):
    v = generator().random(shape, dtype=dtype)  # [0, 1)
    v *= b - a
    v += a
    return v


def _normal(shape, dtype, mean, std):
    v = generator().standard_normal(shape, dtype=dtype)
    v *= std
    v += mean
    return v


def uniform_(t, a=0.0, b=1.0):
    return _fill(t, _uniform(t.shape, _draw_dtype(t), a, b))


def normal_(t, mean=0.0, std=1.0):
    return _fill(t, _normal(t.shape, _draw_dtype(t), mean, std))


def trunc_normal_(t, mean=0.0, std=1.0, a=-2.0, b=2.0):
    """Normal values redrawn until they fall in [a, b] (absolute bounds, as PyTorch)."""
    dtype = _draw_dtype(t)
    v = _normal(t.shape, dtype, mean, std)
    bad = (v < a) | (v > b)
    while bad.any():
        v[bad] = _normal(int(bad.sum()), dtype, mean, std)
        bad = (v < a) | (v > b)
    return _fill(t, v)


def constant_(t, val):
    return _fill(t, np.full(t.shape, val, dtype=t.dtype))


def zeros_(t):
    return constant_(t, 0.0)


def ones_(t):
    return constant_(t, 1.0)


def xavier_uniform_(t, gain=1.0):
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -bound, bound)


def xavier_normal_(t, gain=1.0):
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(t, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(t, mode))
    return uniform_(t, -bound, bound)


def kaiming_normal_(t, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    return normal_(t, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(_fan(t, mode)))
