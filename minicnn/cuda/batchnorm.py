"""Batch normalisation's per-element passes on the GPU (kernels/batchnorm.cu).

``batch_norm_stats`` computes the per-channel mean and biased variance of a
batch (two passes of partial sums, no temporaries the size of x); the op turns
them into invstd = 1/sqrt(var + eps), and the other two functions apply them and
back-propagate through them in single fused passes over x.
"""
import math

from .. import tuning
from .launch import array_module, check_shape, kernel_name, launch


def _channel_vector(op, name, xp, v, C, fill, dtype):
    """A per-channel vector (C,) in x's dtype; None -> ``fill`` everywhere."""
    if v is None:
        return xp.full(C, fill, dtype=dtype)
    check_shape(op, name, v, (C,))
    return xp.ascontiguousarray(v, dtype=dtype)


def batch_norm_stats(x):
    """Per-channel mean and biased variance of x (N, C, *) over every axis but 1 -> (C,), (C,)."""
    xp = array_module("batch_norm_stats", x)
    x = xp.ascontiguousarray(x)
    N, C, S = x.shape[0], x.shape[1], math.prod(x.shape[2:])
    M = N * S
    P = max(1, min(M, tuning.CUDA_BN_PARTIALS))
    part = xp.empty((C, P), dtype=x.dtype)
    name = kernel_name("batch_norm_stats", "batch_norm_moment", x.dtype)
    launch("batchnorm", name, C * P, x, xp.zeros(C, x.dtype), part, N, C, S, P, 1)
    mean = part.sum(axis=1) / M
    launch("batchnorm", name, C * P, x, mean, part, N, C, S, P, 2)
    return mean, part.sum(axis=1) / M


def batch_norm_forward(x, mean, invstd, weight, bias):
    """x (N, C, *) -> y = (x - mean[c]) * invstd[c] * weight[c] + bias[c]
    (weight/bias None: 1 and 0)."""
    xp = array_module("batch_norm_forward", x)
    x = xp.ascontiguousarray(x)
    N, C, S = x.shape[0], x.shape[1], math.prod(x.shape[2:])
    mean = _channel_vector("batch_norm_forward", "mean", xp, mean, C, 0, x.dtype)
    invstd = _channel_vector("batch_norm_forward", "invstd", xp, invstd, C, 1, x.dtype)
    weight = _channel_vector("batch_norm_forward", "weight", xp, weight, C, 1, x.dtype)
    bias = _channel_vector("batch_norm_forward", "bias", xp, bias, C, 0, x.dtype)
    y = xp.empty_like(x)
    launch("batchnorm", kernel_name("batch_norm_forward", "batch_norm_forward", x.dtype), x.size,
           x, mean, invstd, weight, bias, y, N, C, S)
    return y


def batch_norm_backward(gy, x, mean, invstd, weight, training):
    """-> (gx, gweight, gbias) with xhat = (x - mean) * invstd, gbias = sum gy,
    gweight = sum gy * xhat (over all axes but 1) and
    gx = weight * invstd * (gy - gbias/M - xhat * gweight/M) when ``training``
    (mean and invstd came from this batch; M values per channel), else
    gx = weight * invstd * gy."""
    xp = array_module("batch_norm_backward", gy)
    gy, x = xp.ascontiguousarray(gy), xp.ascontiguousarray(x)
    N, C, S = x.shape[0], x.shape[1], math.prod(x.shape[2:])
    check_shape("batch_norm_backward", "gy", gy, x.shape)
    mean = _channel_vector("batch_norm_backward", "mean", xp, mean, C, 0, x.dtype)
    invstd = _channel_vector("batch_norm_backward", "invstd", xp, invstd, C, 1, x.dtype)
    weight = _channel_vector("batch_norm_backward", "weight", xp, weight, C, 1, x.dtype)
    # the two per-channel sums: P partial sums per channel in one pass, then add them up
    P = max(1, min(N * S, tuning.CUDA_BN_PARTIALS))
    part_gy = xp.empty((C, P), dtype=x.dtype)
    part_gy_xhat = xp.empty((C, P), dtype=x.dtype)
    launch("batchnorm", kernel_name("batch_norm_backward", "batch_norm_reduce", x.dtype), C * P,
           gy, x, mean, invstd, part_gy, part_gy_xhat, N, C, S, P)
    gbias, gweight = part_gy.sum(axis=1), part_gy_xhat.sum(axis=1)
    gx = xp.empty_like(x)
    launch("batchnorm", kernel_name("batch_norm_backward", "batch_norm_backward", x.dtype), x.size,
           gy, x, mean, invstd, weight, gbias, gweight, gx, N, C, S, bool(training))
    return gx, gweight, gbias
