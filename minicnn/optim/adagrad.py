"""Adagrad (Duchi et al. 2011) and Adadelta (Zeiler 2012), with PyTorch's options.

Adagrad, for each parameter p with gradient g, at step t::

    g = g + weight_decay * p
    sum = sum + g^2                              every squared gradient so far
    p = p - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(sum) + eps)

Adadelta::

    g = g + weight_decay * p
    s = rho * s + (1 - rho) * g^2                running mean of squared gradients
    delta = sqrt(u + eps) / sqrt(s + eps) * g    the step, in the units of p
    u = rho * u + (1 - rho) * delta^2            running mean of squared steps
    p = p - lr * delta

``foreach``, ``differentiable`` and ``fused`` (PyTorch's implementation switches) are accepted
and change nothing.
"""
from .. import backend
from .optimizer import Optimizer, check_hyper


class Adagrad(Optimizer):
    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None):
        check_hyper("learning rate", lr)
        check_hyper("lr_decay", lr_decay)
        check_hyper("weight_decay value", weight_decay)
        check_hyper("initial_accumulator_value", initial_accumulator_value)
        check_hyper("epsilon value", eps)
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps,
                                      initial_accumulator_value=initial_accumulator_value, maximize=maximize))

    def _update(self, p, g, group, state):
        xp = backend.array_module(p.array)
        if not state:
            state["step"] = 0.0
            state["sum"] = xp.full_like(p.array, group["initial_accumulator_value"])
        state["step"] += 1
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * p.array
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state["sum"] += g * g
        p.array -= clr * (g / (xp.sqrt(state["sum"]) + group["eps"]))


class Adadelta(Optimizer):
    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *, maximize=False,
                 differentiable=False, capturable=False):
        check_hyper("learning rate", lr)
        check_hyper("rho value", rho, 0.0, 1.0, closed_high=True)
        check_hyper("epsilon value", eps)
        check_hyper("weight_decay value", weight_decay)
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize))

    def _update(self, p, g, group, state):
        xp = backend.array_module(p.array)
        rho, eps = group["rho"], group["eps"]
        if not state:
            state["step"] = 0.0
            state["square_avg"] = xp.zeros_like(p.array)
            state["acc_delta"] = xp.zeros_like(p.array)
        state["step"] += 1
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * p.array
        s, u = state["square_avg"], state["acc_delta"]
        s *= rho
        s += (1 - rho) * (g * g)
        delta = xp.sqrt(u + eps) / xp.sqrt(s + eps) * g
        u *= rho
        u += (1 - rho) * (delta * delta)
        p.array -= group["lr"] * delta
