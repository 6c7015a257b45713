"""Resizing (nearest, (bi)linear and bicubic interpolation, area) and cropping of (N, C, *) feature maps.

Interpolation is separable: along each spatial axis the output is A @ input, with A an
(out, in) matrix whose rows hold the interpolation weights (one 1 for nearest, two weights
summing to 1 for linear). Bilinear = linear along W, then along H. The backward pass is the
transpose, A^T @ gy, so it needs no scatter. Index rules are PyTorch's.
A is dense, so each output costs O(in) multiply-adds instead of 2; BLAS makes that cheap
for CNN-sized maps (about 2x PyTorch's time for a 2x bilinear upsampling of 128x128 maps).
Nearest upsampling of 2-D maps by whole factors (U-Net's 2x) is a plain broadcast copy.
"""
import math

import numpy as np

from .. import backend
from ..autograd import Function


def _axis_matrix(n_in, n_out, mode, align_corners, scale_factor):
    """(n_out, n_in) float64 matrix mapping one axis of the input to the output.

    ``scale`` is the source step per output index: 1/scale_factor when a scale factor was
    given, else n_in/n_out (PyTorch's ``area_pixel_compute_scale``)."""
    dst = np.arange(n_out, dtype=np.float64)
    a = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    scale = 1.0 / scale_factor if scale_factor else n_in / n_out
    if mode in ("nearest", "nearest-exact"):
        src = np.floor(dst * scale if mode == "nearest" else (dst + 0.5) * scale)  # exact: pixel centres
        a[rows, np.minimum(src.astype(np.int64), n_in - 1)] = 1.0
        return a
    if align_corners:
        src = dst * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    else:
        src = (dst + 0.5) * scale - 0.5  # pixel centres
    if mode == "bicubic":
        return cubic_matrix(src, n_in)
    src = np.maximum(src, 0.0)  # linear clamps the left edge
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = src - i0
    np.add.at(a, (rows, i0), 1.0 - lam)
    np.add.at(a, (rows, i1), lam)  # i0 == i1 at the right edge: the weights add to 1
    return a


CUBIC_A = -0.75  # the cubic convolution kernel's parameter, as PyTorch's bicubic (Keys' a)


def cubic_matrix(src, n_in, coeff=CUBIC_A, exclude_outside=False):
    """(len(src), n_in) bicubic weights: four taps around floor(src), Keys' kernel with parameter
    ``coeff``. Taps outside the input read its edge pixel, or with ``exclude_outside`` (an ONNX
    option) drop out and the remaining weights are rescaled to sum to 1."""
    a = np.zeros((len(src), n_in))
    rows = np.arange(len(src))
    i0 = np.floor(src).astype(np.int64)
    t = src - i0
    for tap, d in zip(range(-1, 3), (t + 1, t, 1 - t, 2 - t)):
        if tap in (0, 1):  # |d| <= 1
            w = ((coeff + 2) * d - (coeff + 3)) * d * d + 1
        else:  # 1 <= |d| <= 2
            w = ((coeff * d - 5 * coeff) * d + 8 * coeff) * d - 4 * coeff
        idx = i0 + tap
        if exclude_outside:
            w = np.where((idx >= 0) & (idx < n_in), w, 0.0)
        np.add.at(a, (rows, np.clip(idx, 0, n_in - 1)), w)
    return a / a.sum(axis=1, keepdims=True) if exclude_outside else a


class Interpolate(Function):
    """y[n, c, o, p] = sum_{h, w} A_h[o, h] x[n, c, h, w] A_w[p, w] for x (N, C, H, W);
    y = x A_w^T for x (N, C, L). Each factor is one big matrix product (BLAS)."""

    def __init__(self, a_w, a_h=None, mode="linear", align_corners=False, scales=None):
        self.a_w, self.a_h = a_w, a_h  # (out, in) matrices
        # how the matrices were made (an exporter writes these, not the matrices)
        self.mode, self.align_corners, self.scales = mode, align_corners, scales

    def forward(self, x):
        y = _last_axis_times(x, self.a_w.T)
        if self.a_h is not None:
            y = self.xp.einsum("oh,nchw->ncow", self.a_h, y, optimize=True)
        return self.xp.ascontiguousarray(y)

    def backward(self, gy):
        if self.a_h is not None:
            gy = self.xp.einsum("oh,ncow->nchw", self.a_h, gy, optimize=True)
        return _last_axis_times(gy, self.a_w)


class NearestRepeat(Function):
    """Nearest upsampling of x (N, C, H, W) by whole factors, y[n, c, o, p] = x[n, c, o // fh, p // fw]:
    a broadcast copy instead of two matrix products. Backward sums gy over each fh x fw block."""

    def __init__(self, fh, fw):
        self.fh, self.fw = fh, fw

    def forward(self, x):
        n, c, h, w = x.shape
        y = self.xp.empty((n, c, h, self.fh, w, self.fw), x.dtype)
        y[...] = x[:, :, :, None, :, None]
        return y.reshape(n, c, h * self.fh, w * self.fw)

    def backward(self, gy):
        n, c, oh, ow = gy.shape
        return gy.reshape(n, c, oh // self.fh, self.fh, ow // self.fw, self.fw).sum(axis=(3, 5))


def _repeat_factor(n_in, n_out, scale_factor):
    """k when nearest resizing of an axis from n_in to n_out reads source index dst // k, else None."""
    if n_out % n_in:
        return None
    scale = 1.0 / scale_factor if scale_factor else n_in / n_out
    dst = np.arange(n_out, dtype=np.float64)
    src = np.minimum(np.floor(dst * scale).astype(np.int64), n_in - 1)
    k = n_out // n_in
    return k if np.array_equal(src, np.arange(n_out) // k) else None


def _last_axis_times(x, m):
    """x (..., k) @ m (k, j) as one 2-D matrix product -> (..., j)."""
    return (x.reshape(-1, x.shape[-1]) @ m).reshape(x.shape[:-1] + (m.shape[1],))


# mode -> the input rank it needs
_MODES = {"nearest": None, "nearest-exact": None, "area": None, "linear": 3, "bilinear": 4, "bicubic": 4}


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None):
    """Resize the spatial axes of input (N, C, L) or (N, C, H, W), as torch.nn.functional.interpolate.

    nearest: src = min(floor(dst * scale), in - 1); nearest-exact: min(floor((dst + 0.5) * scale), in - 1).
    (bi)linear, align_corners=False: src = max((dst + 0.5) * scale - 0.5, 0);
    align_corners=True: src = dst * (in - 1) / (out - 1). Then y = (1 - l) x[floor] + l x[floor + 1].
    bicubic: the same src (unclamped), four taps weighted by Keys' cubic kernel (a = -0.75).
    area: the mean over each adaptive bin (adaptive average pooling).
    scale = 1 / scale_factor if a scale factor is given (and not recompute_scale_factor), else in/out.
    """
    shape = tuple(input.shape)
    if mode not in _MODES:
        raise ValueError(f"interpolate: unsupported mode {mode!r} ({', '.join(_MODES)})")
    if input.ndim not in (3, 4) or (_MODES[mode] and input.ndim != _MODES[mode]):
        need = "3-D (N, C, L) or 4-D (N, C, H, W)" if mode == "nearest" else f"{_MODES[mode]}-D"
        raise ValueError(f"interpolate: mode {mode!r} needs a {need} input, got shape {shape}")
    if mode in ("nearest", "nearest-exact", "area") and align_corners is not None:
        raise ValueError("interpolate: align_corners can only be set with the linear, bilinear and bicubic modes")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    k = input.ndim - 2
    spatial = shape[2:]
    if size is not None:
        out = _per_axis(size, k, "size")
        scales = (None,) * k
    else:
        factors = _per_axis(scale_factor, k, "scale_factor")
        out = tuple(int(math.floor(n * f)) for n, f in zip(spatial, factors))
        scales = (None,) * k if recompute_scale_factor else factors
    if any(o < 1 for o in out) or any(s is not None and s <= 0 for s in scales):
        raise ValueError(f"interpolate: output size {out} from input {shape} must be positive")
    if input.dtype.kind != "f":
        raise TypeError(f"interpolate: expected a floating point input, got {input.dtype}")
    if mode == "area":  # the mean of each adaptive bin: adaptive average pooling
        from .pooling import adaptive_avg_pool2d

        return adaptive_avg_pool2d(input, out) if k == 2 else adaptive_avg_pool2d(input[:, :, None], (1,) + out)[:, :, 0]
    if mode == "nearest" and k == 2:
        factors = [_repeat_factor(n, o, s) for n, o, s in zip(spatial, out, scales)]
        if None not in factors:
            return NearestRepeat(*factors).apply(input)
    matrices = [backend.to_device(_axis_matrix(n, o, mode, bool(align_corners), s).astype(input.dtype),
                                  input.device)
                for n, o, s in zip(spatial, out, scales)]
    return Interpolate(*reversed(matrices), mode=mode, align_corners=bool(align_corners),
                       scales=None if None in scales else scales).apply(input)


def _per_axis(v, k, name):
    vals = tuple(v) if isinstance(v, (tuple, list)) else (v,) * k
    if len(vals) != k:
        raise ValueError(f"interpolate: {name} {v!r} needs {k} values, one per spatial axis")
    return tuple(int(x) for x in vals) if name == "size" else tuple(float(x) for x in vals)


def crop(input, top, left, height, width):
    """input[..., top:top + height, left:left + width]; the window must lie inside the input."""
    h, w = input.shape[-2:]
    if top < 0 or left < 0 or height < 1 or width < 1 or top + height > h or left + width > w:
        raise ValueError(f"crop: window top={top}, left={left}, height={height}, width={width} does not "
                         f"fit inside an input of shape {tuple(input.shape)}")
    return input[..., top:top + height, left:left + width]


def center_crop(input, output_size):
    """The central (h, w) window of the last two axes (U-Net skip connections). When the size
    difference is odd, the extra row/column is cut from the bottom/right."""
    h, w = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    if input.ndim < 2 or h > input.shape[-2] or w > input.shape[-1]:
        raise ValueError(f"center_crop: cannot crop ({h}, {w}) out of an input of shape {tuple(input.shape)}")
    return crop(input, (input.shape[-2] - h) // 2, (input.shape[-1] - w) // 2, h, w)
