"""Gradient clipping, as ``torch.nn.utils``.

Both functions replace ``p.grad`` by a clipped copy rather than scaling the
gradient array in place: a gradient array may be shared with another tensor or
be a read-only view, so it is never written to.
"""
import math

from .. import backend
from ..tensor import Tensor


def _with_grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Rescale the gradients so that their joint norm is at most ``max_norm``.

    total = ||(||g_1||, ..., ||g_n||)||_p, the p-norm of all gradients seen as one vector;
    each g_i becomes g_i * min(1, max_norm / (total + 1e-6)). Returns ``total`` (before
    clipping) as a 0-d float32 Tensor.
    """
    params = _with_grads(parameters)
    norm_type = float(norm_type)
    if not params:
        return Tensor(0.0)
    xp = backend.array_module(params[0].grad.array)
    grads = [p.grad.array for p in params]
    if norm_type == math.inf:
        norms = [xp.abs(g).max() if g.size else xp.zeros((), g.dtype) for g in grads]
        total = xp.max(xp.stack(norms))
    else:
        norms = [(xp.abs(g) ** norm_type).sum() ** (1.0 / norm_type) for g in grads]
        total = (xp.stack(norms) ** norm_type).sum() ** (1.0 / norm_type)
    total = total.astype(grads[0].dtype)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is {float(total)}, so they "
            "cannot be clipped; set error_if_nonfinite=False to clip anyway (the result will be nan/inf)"
        )
    coef = max_norm / (float(total) + 1e-6)
    if not coef >= 1.0:  # also true for a nan norm, which then spreads to the gradients as in PyTorch
        for p in params:
            p.grad = Tensor._make(p.grad.array * p.grad.array.dtype.type(coef))
    return Tensor._make(total)


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient element into ``[-clip_value, clip_value]``."""
    clip_value = float(clip_value)
    for p in _with_grads(parameters):
        xp = backend.array_module(p.grad.array)
        p.grad = Tensor._make(xp.clip(p.grad.array, -clip_value, clip_value))
