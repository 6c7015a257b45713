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


def conv_output_size(op, hw, kernel, stride, padding, dilation):
    """((ph, pw), (oh, ow)) of a convolution of an input (h, w) with ``padding`` an int, a pair,
    'valid' (none) or 'same' (stride 1: ph = (extent - 1) // 2, so that an odd total padding
    puts the extra row at the bottom, as PyTorch; oh, ow = h, w); a ValueError naming ``op``
    where the kernel does not fit."""
    (h, w), (kh, kw), (sh, sw), (dh, dw) = hw, kernel, stride, dilation
    ext_h, ext_w = extent(kh, dh), extent(kw, dw)
    if padding == "same":
        if (sh, sw) != (1, 1):
            raise ValueError(f"{op}: padding='same' is not supported for strided convolutions (stride {stride})")
        (ph, pw), (oh, ow) = ((ext_h - 1) // 2, (ext_w - 1) // 2), (h, w)
    elif isinstance(padding, str) and padding != "valid":
        raise ValueError(f"{op}: padding must be 'valid', 'same', an int or a pair, got {padding!r}")
    else:
        ph, pw = (0, 0) if padding == "valid" else at_least(pair(padding, "padding", op), 0, "padding", op)
        if h + 2 * ph < ext_h or w + 2 * pw < ext_w:
            raise ValueError(f"{op}: kernel {kh}x{kw} (dilation {dilation}, extent {ext_h}x{ext_w}) is larger "
                             f"than the padded input {h + 2 * ph}x{w + 2 * pw} (input {h}x{w}, padding {padding!r})")
        oh, ow = output_size(h, kh, sh, ph, dh), output_size(w, kw, sw, pw, dw)
    if oh < 1 or ow < 1:
        raise ValueError(f"{op}: output size {oh}x{ow} is not positive (input {h}x{w}, kernel {kh}x{kw}, "
                         f"stride {stride}, padding {(ph, pw)}, dilation {dilation})")
    return (ph, pw), (oh, ow)


def conv_transpose_output_size(op, hw, kernel, stride, padding, dilation, output_padding):
    """((ph, pw), (hout, wout)) of a transposed convolution of an input (h, w); a ValueError
    naming ``op`` for a string padding, output_padding not below stride or dilation, or an
    empty output."""
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int or a pair, got {padding!r}")
    (h, w), (kh, kw), (sh, sw), (dh, dw) = hw, kernel, stride, dilation
    ph, pw = at_least(pair(padding, "padding", op), 0, "padding", op)
    oph, opw = at_least(pair(output_padding, "output_padding", op), 0, "output_padding", op)
    if oph >= max(sh, dh) or opw >= max(sw, dw):
        raise ValueError(f"{op}: output_padding {(oph, opw)} must be smaller than either stride {stride} "
                         f"or dilation {dilation}")
    hout, wout = transposed_output_size(h, kh, sh, ph, dh, oph), transposed_output_size(w, kw, sw, pw, dw, opw)
    if hout < 1 or wout < 1 or h < 1 or w < 1:
        raise ValueError(f"{op}: output size {hout}x{wout} is not positive (input {h}x{w}, kernel {kh}x{kw}, "
                         f"stride {stride}, padding {(ph, pw)}, dilation {dilation}, output_padding {(oph, opw)})")
    return (ph, pw), (hout, wout)
