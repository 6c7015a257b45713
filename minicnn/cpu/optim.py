"""Optimizer updates on the CPU: one fused numba pass per parameter instead of NumPy's
several passes and temporaries, split across threads for big parameters.

Each loop does, per element, the same float operations in the same order as the NumPy code
in ``minicnn/optim`` (scalars already converted to the parameter's dtype, no fused
multiply-adds), so the results are the same to the last bit. CPU-only: the optimizers look
these up with ``getattr(backend.kernels(p), name, None)`` and run their ``xp`` code otherwise.
"""
import math

import numba
import numpy as np

from .. import tuning
from .jit import serial_and_parallel


def _sgd_loop(p, g, buf, lr, wd, momentum, dampening, nesterov, first):
    # g' = g + wd*p; buf = g' (first) or momentum*buf + (1 - dampening)*g';
    # d = g' + momentum*buf (nesterov) or buf (momentum > 0) or g'; p -= lr*d
    for i in numba.prange(p.size):
        d = g[i]
        if wd != 0:
            d = d + wd * p[i]
        if momentum != 0:
            if first:
                b = d
            else:
                b = buf[i] * momentum + dampening * d  # dampening here is (1 - dampening)
            buf[i] = b
            d = d + momentum * b if nesterov else b
        p[i] = p[i] - lr * d


def _adam_loop(p, g, m, v, vmax, lr, wd, decay, beta1c, beta2, beta2c, bias2, eps, step_size, amsgrad):
    # decay = 1 - lr*wd (AdamW), beta1c = 1 - beta1, beta2c = 1 - beta2, bias2 = sqrt(1 - beta2^t),
    # step_size = lr / (1 - beta1^t)
    for i in numba.prange(p.size):
        x = p[i]
        d = g[i]
        if decay != 1:
            x = x * decay
        if wd != 0:
            d = d + wd * x
        mi = m[i] + beta1c * (d - m[i])
        vi = v[i] * beta2 + beta2c * (d * d)
        m[i] = mi
        v[i] = vi
        if amsgrad:
            vi = vmax[i] if vmax[i] >= vi else vi  # a NaN in v wins, as np.maximum
            vmax[i] = vi
        p[i] = x - step_size * (mi / (np.sqrt(vi) / bias2 + eps))


# error_model="numpy": a division by zero gives inf/nan as in NumPy instead of a check that
# raises ZeroDivisionError, which would also keep LLVM from vectorising Adam's loop
_sgd, _sgd_parallel = serial_and_parallel(_sgd_loop, error_model="numpy")
_adam, _adam_parallel = serial_and_parallel(_adam_loop, error_model="numpy")


def _flat(*arrays):
    """The arrays as flat views when all are C-contiguous NumPy arrays of one float dtype and
    shape, else None (the optimizer then runs its NumPy code)."""
    a = arrays[0]
    if not all(isinstance(b, np.ndarray) and b.dtype == a.dtype and b.shape == a.shape
               and b.flags.c_contiguous for b in arrays) or a.dtype.kind != "f" or not a.flags.writeable:
        return None
    return [b.reshape(-1) for b in arrays]


def sgd_step(p, g, buf, lr, weight_decay, momentum, dampening, nesterov, first):
    """One SGD update of ``p`` (and of the momentum buffer ``buf``, when momentum != 0) in place;
    ``first``: the buffer is set to the gradient. Returns False (nothing done) when the arrays
    are not plain contiguous float arrays of one dtype."""
    flat = _flat(p, g, p if buf is None else buf)
    if flat is None:
        return False
    s = p.dtype.type
    fn = _sgd_parallel if p.size >= tuning.PARALLEL_MIN_SIZE else _sgd
    fn(*flat, s(lr), s(weight_decay), s(momentum), s(1 - dampening), bool(nesterov), bool(first))
    return True


def adam_step(p, g, m, v, vmax, lr, weight_decay, decoupled, beta1, beta2, eps, t):
    """One Adam/AdamW update at step ``t`` of ``p``, ``m``, ``v`` (and ``vmax`` when not None:
    amsgrad) in place. Returns False (nothing done) when the arrays do not fit."""
    flat = _flat(p, g, m, v, m if vmax is None else vmax)
    if flat is None:
        return False
    s = p.dtype.type
    decay, wd = (1 - lr * weight_decay, 0) if decoupled else (1, weight_decay)
    fn = _adam_parallel if p.size >= tuning.PARALLEL_MIN_SIZE else _adam
    fn(*flat, s(lr), s(wd), s(decay), s(1 - beta1), s(beta2), s(1 - beta2), s(math.sqrt(1 - beta2 ** t)),
       s(eps), s(lr / (1 - beta1 ** t)), vmax is not None)
    return True
