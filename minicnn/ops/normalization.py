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


class SyncBatchNorm(Function):
    """Batch norm whose statistics are those of the whole batch spread over every process.

    ``sync_batch_norm`` adds up each process's per-channel sums of x and x^2 (and the counts),
    so mean and invstd are as if one process held the whole batch. Backward needs two more
    global sums per channel, of gy and of gy * x_hat (the statistics depend on every process's
    samples): gx = weight * invstd * (gy - sum(gy)/count - x_hat * sum(gy * x_hat)/count). The
    weight and bias gradients stay local (DistributedDataParallel averages them with the rest).
    """

    def __init__(self, mean, invstd, count, has_weight, has_bias, global_sums):
        self.mean, self.invstd, self.count = mean, invstd, count
        self.has_weight, self.has_bias, self.global_sums = has_weight, has_bias, global_sums

    def forward(self, x, *affine):
        self.shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        self.xhat = (x - self.mean.reshape(self.shape)) * self.invstd.reshape(self.shape)
        self.weight = affine[0] if self.has_weight else None
        y = self.xhat if self.weight is None else self.xhat * self.weight.reshape(self.shape)
        return y + affine[-1].reshape(self.shape) if self.has_bias else y

    def backward(self, gy):
        axes = (0,) + tuple(range(2, gy.ndim))
        g_sum, g_dot = self.global_sums(gy.sum(axis=axes, dtype="float64"),
                                        (gy * self.xhat).sum(axis=axes, dtype="float64"))
        scale = self.invstd if self.weight is None else self.invstd * self.weight
        shape, dtype = self.shape, gy.dtype
        gx = scale.reshape(shape) * (gy - (g_sum / self.count).astype(dtype).reshape(shape)
                                     - self.xhat * (g_dot / self.count).astype(dtype).reshape(shape))
        grads = [gx]
        if self.has_weight:
            grads.append((gy * self.xhat).sum(axis=axes))
        if self.has_bias:
            grads.append(gy.sum(axis=axes))
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
    r = running.array
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
    x = input.array
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
        mean = running_mean.array.astype(x.dtype, copy=False)
        var = running_var.array.astype(x.dtype, copy=False)
    invstd = 1 / backend.array_module(x).sqrt(var + eps)
    affine = [t for t in (weight, bias) if t is not None]
    fn = BatchNorm(mean, invstd, training, weight is not None, bias is not None)
    fn.running, fn.eps = (running_mean, running_var), eps  # the source of mean and invstd, for exporters
    return fn.apply(input, *affine)


def sync_batch_norm(input, running_mean, running_var, weight, bias, momentum, eps, all_reduce):
    """Training-mode batch norm with the statistics of every process's batch together;
    ``all_reduce(array)`` sums an array over the processes in place. Updates the running
    estimates (if given) with the global mean and unbiased variance."""
    shape = tuple(input.shape)
    if input.ndim < 2:
        raise ValueError(f"sync_batch_norm: expected an input of shape (N, C, *), got {shape}")
    for name, v in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        _check_vector(v, name, shape[1], shape, "sync_batch_norm")
    x = input.array
    xp, axes = backend.array_module(x), (0,) + tuple(range(2, input.ndim))

    def global_sums(*rows):  # per-channel rows (C,) added up over every process
        sums = xp.stack(rows)
        all_reduce(sums)
        return sums

    s1, s2, count = global_sums(x.sum(axis=axes, dtype=xp.float64), (x * x).sum(axis=axes, dtype=xp.float64),
                                xp.full(shape[1], x.size // max(shape[1], 1), xp.float64))
    count = float(count[0])
    if count <= 1:
        raise ValueError(f"sync_batch_norm: expected more than 1 value per channel over all processes, "
                         f"got input of shape {shape}")
    mean = s1 / count
    var = xp.maximum(s2 / count - mean * mean, 0)  # biased: the batch is normalised by its own spread
    if running_mean is not None:
        _update_running(running_mean, mean, momentum)
    if running_var is not None:
        _update_running(running_var, var * (count / (count - 1)), momentum)
    invstd = (1 / xp.sqrt(var + eps)).astype(x.dtype)
    fn = SyncBatchNorm(mean.astype(x.dtype), invstd, count, weight is not None, bias is not None, global_sums)
    return fn.apply(input, *[t for t in (weight, bias) if t is not None])


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """Normalise each value by the squares of its neighbours across ``size`` channels;
    input (N, C, *) with at least 3 dimensions."""
    if input.ndim < 3:
        raise ValueError(f"local_response_norm: expected an input with 3 or more dimensions "
                         f"(N, C, *), got shape {tuple(input.shape)}")
    if int(size) != size or size < 1:
        raise ValueError(f"local_response_norm: size must be a positive integer, got {size!r}")
    return LocalResponseNorm(int(size), alpha, beta, k).apply(input)
