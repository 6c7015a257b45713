"""RMSprop (Hinton's lecture 6e), with PyTorch's options.

For each parameter p with gradient g::

    g = g + weight_decay * p
    s = alpha * s + (1 - alpha) * g^2            running mean of squared gradients
    a = alpha * a + (1 - alpha) * g              (centered only)
    d = sqrt(s - a^2) if centered else sqrt(s); d = d + eps
    b = momentum * b + g / d;  p = p - lr * b    (momentum > 0)
    p = p - lr * g / d                           (otherwise)
"""
from .. import backend
from .optimizer import Optimizer, check_hyper


class RMSprop(Optimizer):
    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        check_hyper("learning rate", lr)
        check_hyper("epsilon value", eps)
        check_hyper("momentum value", momentum)
        check_hyper("weight_decay value", weight_decay)
        check_hyper("alpha value", alpha)
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _update(self, p, g, group, state):
        xp = backend.array_module(p.array)
        alpha, wd, mom = group["alpha"], group["weight_decay"], group["momentum"]
        if not state:
            state["step"] = 0.0
            state["square_avg"] = xp.zeros_like(p.array)
            if mom > 0:
                state["momentum_buffer"] = xp.zeros_like(p.array)
            if group["centered"]:
                state["grad_avg"] = xp.zeros_like(p.array)
        state["step"] += 1
        if wd != 0:
            g = g + wd * p.array
        s = state["square_avg"]
        s *= alpha
        s += (1 - alpha) * (g * g)
        if group["centered"]:
            a = state["grad_avg"]
            a += (1 - alpha) * (g - a)
            d = xp.sqrt(s - a * a) + group["eps"]
        else:
            d = xp.sqrt(s) + group["eps"]
        if mom > 0:
            b = state["momentum_buffer"]
            b *= mom
            b += g / d
            p.array -= group["lr"] * b
        else:
            p.array -= group["lr"] * (g / d)
