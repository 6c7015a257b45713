"""Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019).

For each parameter p with gradient g, at step t = 1, 2, ...::

    g = g + weight_decay * p                  (Adam: L2 penalty folded into g)
    p = p * (1 - lr * weight_decay)           (AdamW: decoupled decay instead)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g^2
    v_max = max(v_max, v)                     (amsgrad only; used in place of v below)
    p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
"""
import math

from .. import backend
from .optimizer import Optimizer, check_hyper


class Adam(Optimizer):
    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        check_hyper("learning rate", lr)
        check_hyper("epsilon value", eps)
        check_hyper("beta parameter at index 0", betas[0], 0.0, 1.0)
        check_hyper("beta parameter at index 1", betas[1], 0.0, 1.0)
        check_hyper("weight_decay value", weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

    def _update(self, p, g, group, state):
        xp = backend.array_module(p.array)
        lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if not state:
            state["step"] = 0.0
            state["exp_avg"] = xp.zeros_like(p.array)
            state["exp_avg_sq"] = xp.zeros_like(p.array)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(p.array)
        state["step"] += 1
        t = state["step"]
        fused = getattr(backend.kernels(p.array), "adam_step", None)  # the CPU has a one-pass kernel
        if fused is not None and fused(p.array, g, state["exp_avg"], state["exp_avg_sq"],
                                       state.get("max_exp_avg_sq"), lr, wd, self._decoupled, beta1, beta2, eps, t):
            return
        if wd != 0:
            if self._decoupled:
                p.array *= 1 - lr * wd
            else:
                g = g + wd * p.array
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += (1 - beta1) * (g - m)
        v *= beta2
        v += (1 - beta2) * (g * g)
        if group["amsgrad"]:
            xp.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        denom = xp.sqrt(v) / math.sqrt(1 - beta2 ** t) + eps
        p.array -= (lr / (1 - beta1 ** t)) * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.01): the decay shrinks p directly
    instead of being added to the gradient, so it is not rescaled by Adam's denominator."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
