"""Batch normalisation and local response normalisation.

The passes over the data run in ``backend.kernels(x)`` (``batch_norm_stats``, ``batch_norm_*``,
``lrn_*``); this file turns the statistics into invstd, updates the running estimates and
checks shapes.
"""
from .. import backend
from ..autograd import Function
from ..tensor import Tensor


class BatchNorm(Function):
    """y = (x - mean) * invstd * weight + bias for each channel of x (N, C, *).

    ``training=True``: mean and invstd = 1 / sqrt(var + eps) are the batch's own statistics,
    so backward differentiates through them. ``training=False``: they are constants (the
    running estimates), x_hat is an affine map of x and the backward is a plain scaling.
    weight and bias (C,) are optional inputs; ``has_weight``/``has_bias`` say which were passed.
    """

    def __init__(self, mean, invstd, training, has_weight, has_bias):
        self.mean, self.invstd, self.training = mean, invstd, training
        self.has_weight, self.has_bias = has_weight, has_bias

    def forward(self, x, *affine):
        weight = affine[0] if self.has_weight else None
        bias = affine[-1] if self.has_bias else None
        x = self.xp.ascontiguousarray(x)  # the kernels take C-contiguous arrays
        self.x, self.weight = x, weight
        return backend.kernels(x).batch_norm_forward(x, self.mean, self.invstd, weight, bias)

    def backward(self, gy):
        gy = self.xp.ascontiguousarray(gy)  # may arrive as a read-only broadcast view
        gx, gweight, gbias = backend.kernels(gy).batch_norm_backward(
            gy, self.x, self.mean, self.invstd, self.weight, self.training)
        grads = [gx if self.needs_input_grad[0] else None]
        if self.has_weight:
            grads.append(gweight)
        if self.has_bias:
            grads.append(gbias)
        return tuple(grads)


class LocalResponseNorm(Function):
    """b_c = a_c * (k + alpha/size * sum_{c' in window(c)} a_{c'}^2)^-beta, window(c) =
    [c - size//2, c + (size-1)//2] across channels of x (N, C, *), as PyTorch and Caffe."""

    def __init__(self, size, alpha, beta, k):
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x):
        x = self.xp.ascontiguousarray(x)
        y, scale = backend.kernels(x).lrn_forward(x, self.size, self.alpha, self.beta, self.k)
        self.x, self.y, self.scale = x, y, scale
        return y

    def backward(self, gy):
        gy = self.xp.ascontiguousarray(gy)
        return backend.kernels(gy).lrn_backward(gy, self.x, self.y, self.scale, self.size, self.alpha, self.beta)


def _check_vector(v, name, channels, shape, op="batch_norm"):
    if v is not None and tuple(v.shape) != (channels,):
        raise ValueError(f"{op}: {name} has shape {tuple(v.shape)} but the input {shape} has "
                         f"{channels} channels, so it must be ({channels},)")


def _update_running(running, batch_stat, momentum):
    """running = (1 - momentum) * running + momentum * batch, in place (as PyTorch's buffers)."""
    r = running.data
    r *= 1 - momentum
    r += momentum * batch_stat.astype(r.dtype, copy=False)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalisation over the channel axis 1 of input (N, C, *) (2-D, 3-D or 4-D...).

    training: normalise with the batch mean and biased variance over (N, *), and update
    ``running_mean``/``running_var`` in place (if given) with the unbiased variance:
    running = (1 - momentum) * running + momentum * batch.
    eval: normalise with the running estimates.
    """
    shape = tuple(input.shape)
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected an input of shape (N, C, *), got {shape}")
    c = shape[1]
    for name, v in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if v is not None and not isinstance(v, Tensor):
            raise TypeError(f"batch_norm: {name} must be a Tensor or None, not {type(v).__name__}")
        _check_vector(v, name, c, shape)
    x = input.data
    if training:
        count = x.size // c if c else 0
        if count <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                             f"got input of shape {shape}")
        if momentum is None:
            raise ValueError("batch_norm: momentum=None (a cumulative average) needs the number of "
                             "batches seen; nn.BatchNorm*d(momentum=None) tracks it")
        # var is biased: the batch is normalised by its own spread
        mean, var = backend.kernels(x).batch_norm_stats(x)
        if running_mean is not None:
            _update_running(running_mean, mean, momentum)
        if running_var is not None:
            _update_running(running_var, var * (count / (count - 1)), momentum)
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError("batch_norm: running_mean and running_var must be given in evaluation "
                               "mode (training=False)")
        mean = running_mean.data.astype(x.dtype, copy=False)
        var = running_var.data.astype(x.dtype, copy=False)
    invstd = 1 / backend.array_module(x).sqrt(var + eps)
    affine = [t for t in (weight, bias) if t is not None]
    fn = BatchNorm(mean, invstd, training, weight is not None, bias is not None)
    return fn.apply(input, *affine)


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """Normalise each value by the squares of its neighbours across ``size`` channels;
    input (N, C, *) with at least 3 dimensions."""
    if input.ndim < 3:
        raise ValueError(f"local_response_norm: expected an input with 3 or more dimensions "
                         f"(N, C, *), got shape {tuple(input.shape)}")
    if int(size) != size or size < 1:
        raise ValueError(f"local_response_norm: size must be a positive integer, got {size!r}")
    return LocalResponseNorm(int(size), alpha, beta, k).apply(input)
