"""Sliding-window geometry, the one home of its formulas: argument pairs and output sizes.

A window of ``k`` taps, ``d`` apart (dilation), covers ``d*(k - 1) + 1`` pixels (its extent).
Sliding it by ``s`` over an axis of ``size`` pixels padded by ``p`` on both sides gives, as
PyTorch counts for convolution and pooling::

    out = floor((size + 2p - d(k-1) - 1) / s) + 1                      (floor mode)
    out = ceil((size + 2p - d(k-1) - 1) / s) + 1, minus one if the last window
          would start in the right padding, (out-1)*s >= size + p      (ceil mode: pooling)

A transposed convolution runs this map backwards::

    out = (size - 1)*s - 2p + d(k-1) + output_padding + 1
"""
from collections import namedtuple

import numpy as np

# one convolution window: kernel (kh, kw), stride, padding at the top/left, dilation
Window = namedtuple("Window", "kh kw sh sw ph pw dh dw")


def pair(value, name, op):
    """An int or a 1-/2-sequence of ints -> (vertical, horizontal); else a TypeError naming ``op``."""
    try:
        v = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    except TypeError:
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}") from None
    if len(v) == 1:
        v = v * 2
    if len(v) != 2 or not all(isinstance(e, (int, np.integer)) and not isinstance(e, bool) for e in v):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    return int(v[0]), int(v[1])


def at_least(values, minimum, name, op):
    """``values`` (a pair) if both are >= ``minimum``; else a ValueError naming ``op``."""
    if min(values) < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {values}")
    return values


def extent(kernel, dilation=1):
    """Pixels a window of ``kernel`` taps, ``dilation`` apart, covers."""
    return dilation * (kernel - 1) + 1


def output_size(size, kernel, stride=1, padding=0, dilation=1, ceil_mode=False):
    """Number of windows along one axis (module docstring). May be < 1; the ops turn that into an error."""
    room = size + 2 * padding - extent(kernel, dilation)  # how far the window can slide
    out = (room + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def transposed_output_size(size, kernel, stride=1, padding=0, dilation=1, output_padding=0):
    """Output length of a transposed convolution along one axis (module docstring)."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
