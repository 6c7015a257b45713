"""CPU kernels for batch normalisation and local response normalisation (vectorised NumPy).

Inputs are (N, C, *) arrays; every per-channel vector has shape (C,). The ops compute
the statistics; these kernels do the element-wise passes over the big arrays.
"""
import numpy as np


def _per_channel(v, ndim):
    """(C,) -> (1, C, 1, ..., 1) so it broadcasts against an (N, C, *) array."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def _channel_sum(a):
    """Sum an (N, C, *) array over every axis but the channel axis -> (C,)."""
    return a.sum(axis=(0,) + tuple(range(2, a.ndim)))


def batch_norm_forward(x, mean, invstd, weight, bias):
    """y = (x - mean) * invstd * weight + bias, per channel, as one multiply-add.

    x (N, C, *); mean, invstd, weight, bias (C,) (weight/bias may be None).
    """
    scale = invstd if weight is None else invstd * weight
    shift = -mean * scale if bias is None else bias - mean * scale
    y = x * _per_channel(scale, x.ndim)
    y += _per_channel(shift, x.ndim)
    return y


def batch_norm_backward(gy, x, mean, invstd, weight, training):
    """Gradients of batch_norm_forward -> (gx, gweight, gbias).

    With x_hat = (x - mean) * invstd and M = N * prod(*) values per channel:
      gbias = sum(gy), gweight = sum(gy * x_hat)                 (sums per channel)
      eval (mean, invstd constant):  gx = gy * weight * invstd
      training (batch statistics):   gx = weight * invstd * (gy - gbias / M - x_hat * gweight / M)
    The training form is the gradient through the batch mean and the biased variance.
    """
    xhat = (x - _per_channel(mean, x.ndim)) * _per_channel(invstd, x.ndim)
    gbias = _channel_sum(gy)
    gweight = _channel_sum(gy * xhat)
    scale = invstd if weight is None else invstd * weight
    if not training:
        return gy * _per_channel(scale, x.ndim), gweight, gbias
    m = x.size // x.shape[1]
    gx = xhat
    gx *= _per_channel(-gweight / m, x.ndim)  # reuse x_hat's memory
    gx += gy
    gx -= _per_channel(gbias / m, x.ndim)
    gx *= _per_channel(scale, x.ndim)
    return gx, gweight, gbias


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
