"""CPU kernels for batch normalisation (numba) and local response normalisation (vectorised NumPy).

Inputs are (N, C, *) arrays; every per-channel vector has shape (C,). The batch-norm
kernels view x as (N, C, M) and make one pass per result: a channel's sums in one task
(float64 accumulators), the element-wise passes one (n, c) plane per task.
"""
import numba
import numpy as np

from .. import tuning
from .jit import serial_and_parallel

_SUMS = dict(fastmath={"reassoc", "contract"})  # reassociation lets sums vectorise


def _planes(a):
    """(N, C, *) C-contiguous -> (N, C, M) view."""
    return a.reshape(a.shape[0], a.shape[1], -1)


def _pick(parallel, serial, a):
    return parallel if a.size >= tuning.PARALLEL_MIN_SIZE else serial


def _affine_loop(x, scale, shift, y):
    # y[n, c] = x[n, c] * scale[c] + shift[c]; x, y (N, C, M)
    n, c, m = x.shape
    for p in numba.prange(n * c):
        b, ch = p // c, p % c
        s, t = scale[ch], shift[ch]
        for k in range(m):
            y[b, ch, k] = x[b, ch, k] * s + t


def _stats_loop(x, mean, var):
    # per channel of x (N, C, M): the mean, then the biased variance around it (two passes
    # over the channel, so no cancellation as in E[x^2] - E[x]^2)
    n, c, m = x.shape
    for ch in numba.prange(c):
        total = 0.0
        for b in range(n):
            for k in range(m):
                total += x[b, ch, k]
        mu = total / (n * m)
        sq = 0.0
        for b in range(n):
            for k in range(m):
                d = x[b, ch, k] - mu
                sq += d * d
        mean[ch] = mu
        var[ch] = sq / (n * m)


def _grad_sums_loop(gy, x, mean, sum_gy, sum_gy_xc):
    # per channel: sum(gy) and sum(gy * (x - mean))
    n, c, m = x.shape
    for ch in numba.prange(c):
        mu = mean[ch]
        sg = 0.0
        sgx = 0.0
        for b in range(n):
            for k in range(m):
                g = gy[b, ch, k]
                sg += g
                sgx += g * (x[b, ch, k] - mu)
        sum_gy[ch] = sg
        sum_gy_xc[ch] = sgx


def _train_grad_loop(gy, x, mean, invstd, scale, gbias_m, gweight_m, gx):
    # gx = scale * (gy - gbias/M - x_hat * gweight/M), x_hat = (x - mean) * invstd
    n, c, m = x.shape
    for p in numba.prange(n * c):
        b, ch = p // c, p % c
        mu, inv, s, gb, gw = mean[ch], invstd[ch], scale[ch], gbias_m[ch], gweight_m[ch]
        for k in range(m):
            gx[b, ch, k] = s * (gy[b, ch, k] - gb - (x[b, ch, k] - mu) * inv * gw)


_affine, _affine_parallel = serial_and_parallel(_affine_loop)
_stats, _stats_parallel = serial_and_parallel(_stats_loop, **_SUMS)
_grad_sums, _grad_sums_parallel = serial_and_parallel(_grad_sums_loop, **_SUMS)
_train_grad, _train_grad_parallel = serial_and_parallel(_train_grad_loop)


def batch_norm_stats(x):
    """Per-channel mean and biased variance of x (N, C, *) over every axis but 1 -> (C,), (C,).

    Two passes over each channel (float64 sums) instead of NumPy's mean, difference, square
    and sum with their temporaries."""
    x = np.ascontiguousarray(x)
    c = x.shape[1]
    mean, var = np.empty(c, np.float64), np.empty(c, np.float64)
    _pick(_stats_parallel, _stats, x)(_planes(x), mean, var)
    return mean.astype(x.dtype), var.astype(x.dtype)


def batch_norm_forward(x, mean, invstd, weight, bias):
    """y = (x - mean) * invstd * weight + bias, per channel, as one multiply-add pass.

    x (N, C, *); mean, invstd, weight, bias (C,) (weight/bias may be None).
    """
    scale = invstd if weight is None else invstd * weight
    shift = -mean * scale if bias is None else bias - mean * scale
    y = np.empty_like(x)
    _pick(_affine_parallel, _affine, x)(_planes(x), scale.astype(x.dtype), shift.astype(x.dtype), _planes(y))
    return y


def batch_norm_backward(gy, x, mean, invstd, weight, training):
    """Gradients of batch_norm_forward -> (gx, gweight, gbias).

    With x_hat = (x - mean) * invstd and M = N * prod(*) values per channel:
      gbias = sum(gy), gweight = sum(gy * x_hat)                 (sums per channel)
      eval (mean, invstd constant):  gx = gy * weight * invstd
      training (batch statistics):   gx = weight * invstd * (gy - gbias / M - x_hat * gweight / M)
    The training form is the gradient through the batch mean and the biased variance.
    """
    c = x.shape[1]
    gbias, gy_xc = np.empty(c, np.float64), np.empty(c, np.float64)
    gy3, x3 = _planes(gy), _planes(x)
    _pick(_grad_sums_parallel, _grad_sums, x)(gy3, x3, mean, gbias, gy_xc)
    gweight = gy_xc * invstd
    scale = (invstd if weight is None else invstd * weight).astype(x.dtype)
    gx = np.empty_like(x)
    if training:
        m = x.size // c
        _pick(_train_grad_parallel, _train_grad, x)(gy3, x3, mean, invstd, scale, (gbias / m).astype(x.dtype),
                                                    (gweight / m).astype(x.dtype), _planes(gx))
    else:
        _pick(_affine_parallel, _affine, x)(gy3, scale, np.zeros(c, x.dtype), _planes(gx))
    return gx, gweight.astype(x.dtype), gbias.astype(x.dtype)


def _window_sum(a, before, after):
    """out[:, c] = sum of a[:, c - before : c + after + 1] over channels (zero outside), by a
    cumulative sum along the channel axis: one pass, whatever the window size."""
    n, c = a.shape[:2]
    cs = np.zeros((n, c + 1) + a.shape[2:], a.dtype)
    np.cumsum(a, axis=1, out=cs[:, 1:])
    ch = np.arange(c)
    hi = np.minimum(ch + after, c - 1) + 1
    lo = np.maximum(ch - before, 0)
    out = cs[:, hi]
    out -= cs[:, lo]
    return out


def lrn_forward(x, size, alpha, beta, k):
    """y = x * scale^-beta with scale_c = k + alpha/size * sum of x^2 over channels
    [c - size//2, c + (size-1)//2]. x (N, C, *) -> (y, scale), both shaped like x."""
    scale = _window_sum(x * x, size // 2, (size - 1) // 2)
    scale *= alpha / size
    scale += k
    return x * scale ** -beta, scale


def lrn_backward(gy, x, y, scale, size, alpha, beta):
    """dL/dx_j = gy_j * scale_j^-beta - 2 alpha beta / size * x_j * sum_c gy_c y_c / scale_c,
    the sum over the channels c whose window holds j, i.e. c in [j - (size-1)//2, j + size//2]."""
    t = _window_sum(gy * y / scale, (size - 1) // 2, size // 2)
    t *= x
    t *= -2 * alpha * beta / size
    t += gy * scale ** -beta
    return t
